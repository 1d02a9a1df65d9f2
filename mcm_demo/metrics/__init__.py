"""Evaluators of the synthetic world (see `evaluator.py`) and the scores built on them."""

from .evaluator import ToyEvaluator
from .scores import ClipScores, frechet_distance, score_clips, sharpness

__all__ = ["ToyEvaluator", "ClipScores", "frechet_distance", "score_clips", "sharpness"]
