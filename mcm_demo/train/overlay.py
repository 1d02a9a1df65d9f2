"""Where a video set carries a fixed overlay (a stock watermark, a channel logo): the box
`distill --adv-whole-box auto` gives the whole-frame discriminator head to judge.

An overlay sits at the same place in every clip while the scenes behind it change, so the
per-pixel median of the frames' gradients keeps its edges and averages the scenes' away
(Dekel et al., "On the Effectiveness of Visible Watermarks", CVPR 2017, estimate a
watermark's outline this way). The box is the bounding box of the strongest connected
patch of that median gradient, padded a little.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .discriminator import frames_at_size

# A pixel is part of the overlay where the median gradient reaches this share of its peak.
EDGE_SHARE = 0.25
# The peak (Sobel's units: a step of s luma levels reads 4 s) below which a set has no
# overlay: the world's clean image sets peak at 0–26 (real's and 3d-cartoon's lighting falls
# the same way in every still), its video set's stamp at ~300 (docs/cleanliness.md, "A head
# on the stamp's box").
MIN_PEAK = 80.0
PAD = 2


def median_gradient(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) or (N, H, W) frames in luma levels → (H, W): the magnitude of the
    per-pixel median of their Sobel gradients."""
    gray = frames.mean(-1) if frames.ndim == 4 else frames
    gray = gray.astype(np.float32)
    gx = np.stack([cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3) for f in gray])
    gy = np.stack([cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3) for f in gray])
    magnitude = np.hypot(np.median(gx, 0), np.median(gy, 0))
    magnitude[[0, -1], :] = magnitude[:, [0, -1]] = 0  # the frame's own edge is no overlay
    return magnitude


def overlay_box(frames: np.ndarray, pad: int = PAD) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the fixed overlay in `frames` (N, H, W[, 3], luma
    levels 0–255, frames of many different clips), or None where there is none."""
    magnitude = median_gradient(frames)
    peak = float(magnitude.max())
    if peak < MIN_PEAK:
        return None
    edges = (magnitude >= EDGE_SHARE * peak).astype(np.uint8)
    # the overlay's strokes are near each other: join them, then keep the largest patch
    joined = cv2.dilate(edges, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    rows, cols = np.nonzero((labels == largest) & (edges > 0))
    h, w = magnitude.shape
    return (
        max(0, int(rows.min()) - pad),
        min(h, int(rows.max()) + 1 + pad),
        max(0, int(cols.min()) - pad),
        min(w, int(cols.max()) + 1 + pad),
    )


@torch.no_grad()
def video_set_overlay_box(
    videos, vae, batch: int, clips: int = 256
) -> tuple[int, int, int, int] | None:
    """`overlay_box` of one frame from each of `clips` training clips of `videos` (a batch
    source, `train.clips.video_batches`, read `batch` clips at a time as the run reads it),
    decoded by the VAE the student's frames go through, at the size the whole-frame head
    judges them (`WholeFrameHead` scales a frame to the VAE's `sample_size`, then crops)."""
    generator = torch.Generator().manual_seed(0)
    frames = []
    while sum(len(f) for f in frames) < clips:
        latents, _ = videos.next(batch)
        pick = torch.randint(0, latents.shape[2], (len(latents),), generator=generator)
        picked = latents[torch.arange(len(latents)), :, pick]
        images = vae.decode(picked.to(vae.dtype) / vae.config.scaling_factor).sample.float()
        images = frames_at_size(images, vae.config.sample_size)
        frames.append(((images.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).cpu())
    return overlay_box(torch.cat(frames)[:clips].numpy())
