"""The reference clip in latent space, and recoloured: to every permutation of its channels (VMC
tunes on them) or to the look of a sample of the prompt (the transfer's default start)."""

from __future__ import annotations

import numpy as np
import torch

from ..pipeline import encode_clips
from ..video_io import to_unit_float


def encode_clip(pipe, frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) → scaled latents (1, C, F, h, w) in float32."""
    return encode_clips(pipe.vae, frames[None])


# the six orders of the RGB channels, each also inverted: every copy moves exactly as the reference
RECOLOURINGS = tuple(
    (order, inverted)
    for inverted in (False, True)
    for order in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2))
)


def recoloured_clips(frames: np.ndarray) -> list[np.ndarray]:
    """The uint8 clip under each of RECOLOURINGS (the identity first)."""
    copies = []
    for order, inverted in RECOLOURINGS:
        clip = frames[..., list(order)]
        copies.append(255 - clip if inverted else clip)
    return copies


def recoloured_latents(pipe, frames: np.ndarray) -> torch.Tensor:
    """recoloured_clips, encoded: (len(RECOLOURINGS), C, F, h, w)."""
    return torch.cat([encode_clip(pipe, clip) for clip in recoloured_clips(frames)])


def _frame_median(x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per frame and channel, the median over the pixels (those with `weight` > 0.5 if given; NaN
    where none has): (B, C, F, H, W) → (B, C, F, 1, 1)."""
    flat = x.flatten(3)
    if weight is not None:
        flat = flat.masked_fill(weight.flatten(3) <= 0.5, float("nan"))
    return flat.nanmedian(-1).values[..., None, None]


def _object_colour(x: torch.Tensor, distance: torch.Tensor, far: float) -> torch.Tensor:
    """Per frame, the median colour of the object's core: its pixels at least 3/4 as far from the
    background as the farthest (the 99th percentile), so neither a blurred rim nor a faint
    watermark tints it; NaN where no pixel is beyond `far`."""
    top = torch.quantile(distance.flatten(3), 0.99, dim=-1)[..., None, None]
    return _frame_median(x, ((distance >= 0.75 * top) & (distance > far)).float())


def _background_and_object(x: torch.Tensor, far: float):
    """Per frame: the background colour, the object colour and each pixel's distance from the
    former."""
    background = _frame_median(x)
    distance = (x - background).norm(dim=1, keepdim=True)
    return background, _object_colour(x, distance, far), distance


def with_look(
    frames: torch.Tensor, look: torch.Tensor, near: float = 0.15, far: float = 0.3
) -> torch.Tensor:
    """The reference `frames` recoloured to `look` (a sample of the prompt), frame by frame: its
    background to the look's background colour and its object to the look's object colour,
    each pixel in proportion to how background- or object-like it is (within `near` of the
    frame's median colour it is background, beyond `far` object); outlines, layout and motion
    stay the reference's. Pixels in [0, 1], (B, 3, F, H, W). A frame where either has no object
    keeps the reference's object colour. Done in pixels, where a flat colour is one value:
    the same swap on VAE latents left 0.69 of transfers in the prompt's colour."""
    background, colour, distance = _background_and_object(frames, far)
    look_background, look_colour, _ = _background_and_object(look, far)
    share = ((far - distance) / (far - near)).clamp(0, 1)  # how background-like each pixel is
    recolour = (look_colour - colour).nan_to_num(0.0)
    return (frames + share * (look_background - background) + (1 - share) * recolour).clamp(0, 1)


def with_prompt_look(pipe, reference: np.ndarray, look_latents: torch.Tensor) -> torch.Tensor:
    """The reference recoloured to the look of a sample of the prompt (`look_latents`, the
    student's one step from the same noise), encoded."""
    with torch.no_grad():
        look = torch.from_numpy(pipe.decode_latents(look_latents)).permute(0, 4, 1, 2, 3)
    frames = torch.from_numpy(to_unit_float(reference)).permute(3, 0, 1, 2)[None]
    recoloured = with_look(frames, look)[0].permute(1, 2, 3, 0).mul(255).numpy()
    return encode_clip(pipe, recoloured)
