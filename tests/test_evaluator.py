"""The shipped evaluator reads what real clips show, and reads motion from frame order."""

import numpy as np
import pytest

from mcm_demo.catalog import Catalog
from mcm_demo.metrics.scores import frechet_distance, reference_clips, score_clips


@pytest.fixture(scope="module")
def evaluator():
    return Catalog().load_evaluator()


@pytest.fixture(scope="module")
def heldout():
    return reference_clips(128, seed=777)


@pytest.fixture(scope="module")
def heldout_scores(evaluator, heldout):
    return score_clips(evaluator, *heldout)


def test_reads_attributes_of_heldout_real_clips(heldout_scores):
    scores = heldout_scores
    for attribute in ("shape", "colour", "motion", "background"):
        assert scores.accuracy[attribute] >= 0.95, (attribute, scores.accuracy)
    assert scores.watermark_rate > 0.95  # the low-quality set is stamped


def test_clean_styles_read_as_unwatermarked(evaluator):
    clips, scenes = reference_clips(64, seed=778, style="laion")
    scores = score_clips(evaluator, clips, scenes)
    assert scores.watermark_rate < 0.05 and scores.accuracy["colour"] >= 0.95


def test_motion_needs_frame_order(evaluator, heldout, heldout_scores):
    clips, scenes = heldout
    rng = np.random.default_rng(0)
    shuffled = np.stack([c[rng.permutation(len(c))] for c in clips])
    ordered, mixed = heldout_scores, score_clips(evaluator, shuffled, scenes)
    assert mixed.accuracy["motion"] < 0.5 < ordered.accuracy["motion"]
    assert mixed.accuracy["colour"] >= 0.95  # appearance does not depend on order


def test_frechet_distance_separates_sets(evaluator, heldout, heldout_scores):
    clips, scenes = heldout
    other, other_scenes = reference_clips(128, seed=999)
    same = frechet_distance(
        heldout_scores.video_features, score_clips(evaluator, other, other_scenes).video_features
    )
    blurred = (clips.astype(np.float32) * 0.5 + 64).astype(np.uint8)  # washed-out clips
    far = frechet_distance(
        heldout_scores.video_features, score_clips(evaluator, blurred, scenes).video_features
    )
    assert 0 <= same < far
