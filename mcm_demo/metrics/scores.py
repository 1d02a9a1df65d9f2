"""Scores on generated clips: the paper's metrics, played by the world's evaluator.

- attribute accuracy (shape, colour, motion, background) plays CLIPSIM: does the clip show
  what the prompt says? Read exactly, because prompts come from the grammar;
- the Fréchet distance of video features against held-out real clips plays FVD;
- the Fréchet distance of frame features against an image set plays FID;
- watermark rate and sharpness measure the low-quality look MCM should shed.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch
from scipy import linalg

from ..embedded.world import Scene, render_clip, variant_style
from ..embedded.world.grammar import heldout_scenes
from ..video_io import to_uint8
from .evaluator import HEADS, ToyEvaluator, multi_hot

ATTRIBUTES = ("shape", "colour", "motion", "background")


@dataclasses.dataclass
class ClipScores:
    accuracy: dict[str, float]  # attribute → mean accuracy over clips
    watermark_rate: float  # fraction of clips where the detector sees the stamp
    sharpness: float  # mean variance of the Laplacian, on 0..255 grey frames
    video_features: np.ndarray  # (N, D) for the FVD-like distance
    frame_features: np.ndarray  # (N·F, D) for the FID-like distance

    @property
    def alignment(self) -> float:
        """Mean of shape, colour and motion accuracy: the CLIPSIM stand-in."""
        return float(np.mean([self.accuracy[k] for k in ("shape", "colour", "motion")]))


def sharpness(clips_uint8: np.ndarray) -> float:
    grey = clips_uint8.reshape(-1, *clips_uint8.shape[-3:]).mean(-1).astype(np.float32)
    return float(np.mean([cv2.Laplacian(g, cv2.CV_32F).var() for g in grey]))


def set_accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per clip: of the k values the prompt names, how many are among the top-k predictions."""
    k = target.sum(1).long()
    order = logits.argsort(1, descending=True)
    hits = []
    for i in range(len(logits)):
        top = order[i, : int(k[i])]
        hits.append(target[i, top].sum() / k[i])
    return torch.stack(hits)


@torch.no_grad()
def score_clips(
    evaluator: ToyEvaluator, clips: np.ndarray, scenes: list[Scene], batch: int = 64
) -> ClipScores:
    """Score uint8 or [0,1]-float clips (N, F, 64, 64, 3) against the scenes they should show."""
    if clips.dtype != np.uint8:
        clips = to_uint8(clips)
    outs = []
    for start in range(0, len(clips), batch):
        x = (
            torch.from_numpy(clips[start : start + batch])
            .permute(0, 4, 1, 2, 3)
            .float()
            .div(127.5)
            .sub(1)
        )
        outs.append(evaluator(x))
    out = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    accuracy = {
        a: float(set_accuracy(out[a], multi_hot(scenes, a)).mean())
        for a in ATTRIBUTES
        if a in HEADS
    }
    watermark = torch.sigmoid(out["frame_watermark"][..., 0]).mean(1) > 0.5
    return ClipScores(
        accuracy,
        float(watermark.float().mean()),
        sharpness(clips),
        out["video_features"].numpy(),
        out["frame_features"].flatten(0, 1).numpy(),
    )


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., 2017)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the FID code does
        eps = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean.real))


def reference_clips(
    count: int = 512, seed: int = 10_000, style: str = "lq"
) -> tuple[np.ndarray, list[Scene]]:
    """Real clips of held-out prompts with seeds no generator saw: FVD's reference set."""
    scenes = heldout_scenes(count, seed=seed)
    return np.stack([render_clip(s, style, seed + i) for i, s in enumerate(scenes)]), scenes


def image_set(variant: str, count: int = 512, seed: int = 20_000) -> tuple[np.ndarray, list[Scene]]:
    """Stills of an image-set variant, as one-frame clips cut from renders of held-out prompts."""
    clips, scenes = reference_clips(count, seed, variant_style(variant))
    rng = np.random.default_rng(seed)
    return clips[np.arange(count), rng.integers(0, clips.shape[1], count)], scenes


@torch.no_grad()
def frame_features(evaluator: ToyEvaluator, images: np.ndarray, batch: int = 256) -> np.ndarray:
    feats = []
    for start in range(0, len(images), batch):
        x = (
            torch.from_numpy(images[start : start + batch])
            .permute(0, 3, 1, 2)
            .float()
            .div(127.5)
            .sub(1)
        )
        feats.append(evaluator.frame_branch(evaluator.frame_encoder(x)))
    return torch.cat(feats).numpy()
