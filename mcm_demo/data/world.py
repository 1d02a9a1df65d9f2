"""The synthetic world as a data source: the video set the shipped students are distilled on
and the image sets their discriminators call real, drawn in the order the in-memory recipe
draws them, so a set exported to disk holds exactly those samples."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..embedded.world import render_clip, variant_style
from ..embedded.world.datasets import SceneStream
from ..embedded.world.grammar import COLOURS, SHAPES, sample_scene


def world_clips(count: int, seed: int, batch: int = 64):
    """(clips uint8 (B, F, H, W, 3), captions) chunks of the low-quality video set: the clips
    `train.teacher.cache_latents(vae, count, seed, …)` encodes, in its order."""
    stream = SceneStream(seed, split="train", two_object_prob=0.3)
    for start in range(0, count, batch):
        clips, scenes, _ = stream.clips(min(batch, count - start), style="lq")
        yield clips, [s.caption for s in scenes]


def world_stills(variant: str, seed: int):
    """An endless stream of (still uint8 (H, W, 3), caption) of the variant's image set."""
    style = variant_style(variant)
    rng = random.Random(seed)
    while True:
        scene = sample_scene(rng, split="train")
        clip = render_clip(scene, style, rng.randrange(1 << 30))
        yield clip[rng.randrange(len(clip))], scene.caption


def to_model_images(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 stills (H, W, 3) → (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def world_image_source(variant: str, seed: int):
    """Random stills of the variant's image set with their captions, rendered on the fly:
    draw(count, generator) → (images (N, 3, H, W) in [-1, 1], captions)."""
    stills = world_stills(variant, seed)

    def draw(count: int, generator: torch.Generator):
        images, captions = zip(*(next(stills) for _ in range(count)))
        return to_model_images(list(images)), list(captions)

    return draw


def mismatched_captions(captions: list[str], word: str = "shape") -> list[str]:
    """A wrong caption for each still, for a matching-aware discriminator: a caption naming one
    of the world's shapes (word="shape") or colours (word="colour") has one of them (the first
    in `SHAPES` or `COLOURS`) replaced by the next, the one word the discriminator must then
    check; any other caption is the next still's (an own image set's captions have no
    grammar)."""
    words = {"shape": SHAPES, "colour": COLOURS}.get(word)
    if words is None:
        raise ValueError(f"a mismatched caption changes the shape or the colour, not {word!r}")
    out = []
    for i, caption in enumerate(captions):
        padded = f" {caption} "
        found = next((w for w in words if f" {w} " in padded), None)
        if found is not None:
            swapped = words[(words.index(found) + 1) % len(words)]
            out.append(padded.replace(f" {found} ", f" {swapped} ", 1).strip())
        else:
            out.append(captions[(i + 1) % len(captions)])
    return out
