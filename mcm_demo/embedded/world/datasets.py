"""Batches of the world's data sets, generated on the fly from a seeded stream of scenes."""

from __future__ import annotations

import random

import numpy as np
import torch

from .grammar import Scene, sample_scene
from .render import BACKGROUND_RGB, STYLES, render_clip


def to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, F, H, W, 3) → float (B, 3, F, H, W) in [-1, 1], the models' layout."""
    return torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def object_mask(scene: Scene, seed: int) -> np.ndarray:
    """Where the objects are, from the clean render of the same scene and seed (F, H, W)."""
    clean = render_clip(scene, "laion", seed).astype(np.int16)
    bg = np.array(BACKGROUND_RGB[scene.background], np.int16)
    return (np.abs(clean - bg).max(-1) > 40).astype(np.float32)


class SceneStream:
    """An endless, seeded stream of (scene, render seed) pairs from one split."""

    def __init__(self, seed: int, split: str = "train", two_object_prob: float = 0.3):
        self.rng = random.Random(seed)
        self.split, self.two_object_prob = split, two_object_prob

    def next(self) -> tuple[Scene, int]:
        return sample_scene(self.rng, self.split, self.two_object_prob), self.rng.getrandbits(31)

    def clips(self, count: int, style: str | None = "lq", with_masks: bool = False):
        """`count` clips in `style` (None: a random style per clip) with their scenes."""
        scenes, clips, styles, masks = [], [], [], []
        for _ in range(count):
            scene, seed = self.next()
            st = style or self.rng.choice(STYLES)
            scenes.append(scene)
            styles.append(st)
            clips.append(render_clip(scene, st, seed))
            if with_masks:
                masks.append(object_mask(scene, seed))
        out = (np.stack(clips), scenes, styles)
        return out + (np.stack(masks),) if with_masks else out
