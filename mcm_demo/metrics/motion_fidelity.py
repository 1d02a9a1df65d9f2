"""Motion fidelity (DMT, Yatim et al. 2024) on OpenCV Lucas–Kanade tracklets.

Points are tracked through both clips; a tracklet becomes its per-step displacements. The
correlation of two tracklets is the mean over steps of the cosine between their
displacements, and the score averages, in both directions, each tracklet's best match in the
other clip: 1 when the motions agree, about −1 when they are opposite. CoTracker cannot be
downloaded here, so pyramidal Lucas–Kanade on corner features stands in for it (DESIGN §5).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..video_io import to_uint8

STATIC_PX = 0.05  # a step shorter than this (in the clip's own pixels) counts as standing still


def track_points(frames: np.ndarray, max_points: int = 64, work_size: int = 256) -> np.ndarray:
    """Corner points of the first frame tracked through the clip: (N, F, 2) in pixels of the
    input. Small clips are enlarged first so LK's window sees a shape's outline."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = to_uint8(frames)
    scale = work_size / max(frames.shape[1:3])
    size = (round(frames.shape[2] * scale), round(frames.shape[1] * scale))
    gray = [
        cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2GRAY)
        for f in frames
    ]
    points = cv2.goodFeaturesToTrack(
        gray[0], maxCorners=max_points, qualityLevel=0.05, minDistance=6, blockSize=7
    )
    if points is None:
        return np.zeros((0, len(frames), 2), np.float32)
    track, alive = [points[:, 0]], np.ones(len(points), bool)
    for prev, nxt in zip(gray[:-1], gray[1:]):
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            prev, nxt, track[-1][:, None].astype(np.float32), None, winSize=(21, 21), maxLevel=3
        )
        alive &= status[:, 0] == 1
        track.append(moved[:, 0])
    return (np.stack(track, 1)[alive] / scale).astype(np.float32)


def tracklet_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, F, 2) and (M, F, 2) positions → (N, M) mean cosine of their per-step displacements.
    A step where both stand still agrees (1); one still and one moving is no agreement (0)."""
    da, db = np.diff(a, axis=1), np.diff(b, axis=1)  # (N, S, 2), (M, S, 2)
    na, nb = np.linalg.norm(da, axis=-1), np.linalg.norm(db, axis=-1)
    dot = np.einsum("nsc,msc->nms", da, db)
    denom = na[:, None] * nb[None]
    cos = np.where(denom > 0, dot / np.maximum(denom, 1e-12), 0.0)
    still_a, still_b = (na < STATIC_PX)[:, None], (nb < STATIC_PX)[None]
    cos = np.where(still_a & still_b, 1.0, np.where(still_a | still_b, 0.0, cos))
    return cos.mean(-1)


def motion_fidelity(reference_tracks: np.ndarray, generated_tracks: np.ndarray) -> float:
    """DMT's score from two sets of tracklets; 0 when either clip has nothing to track."""
    if len(reference_tracks) == 0 or len(generated_tracks) == 0:
        return 0.0
    corr = tracklet_correlation(reference_tracks, generated_tracks)
    return float(0.5 * (corr.max(1).mean() + corr.max(0).mean()))


def motion_fidelity_of_clips(reference: np.ndarray, generated: np.ndarray) -> float:
    """Score two clips (F, H, W, 3) of the same frame count."""
    return motion_fidelity(track_points(reference), track_points(generated))
