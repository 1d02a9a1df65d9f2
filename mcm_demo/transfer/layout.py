"""The embedded teacher's start: the prompt's object on the prompt's background, laid along the
track read from the reference (reading.py). A clip of the world the model was trained on, so
the start carries the reference's motion and nothing of its pixels."""

from __future__ import annotations

import math
import re

import numpy as np

from ..embedded.world import BACKGROUNDS, COLOURS, SHAPES, SIZE, ObjectSpec, Pose, render_along
from ..embedded.world.render import BACKGROUND_RGB, COLOUR_RGB

RADIUS = 14.0  # px: the middle of the world's single-object radii
# the world's clips move this much over a clip; a reference's smaller motion is brought up to it
MIN_TRAVEL = 22.0  # px
WORLD_ZOOM = math.log(1.3 / 0.6)  # growing/shrinking spans 0.6 to 1.3 radii
WORLD_TURN = math.radians(25.0) * 7  # spinning turns 25 degrees a frame over 8 frames
MAX_GAIN = 4.0  # a reference's motion is amplified at most this much (8 for turns)


def prompt_look(prompt: str) -> tuple[str | None, str | None, str | None]:
    """The world's shape, colour and background words in a prompt (None for each missing)."""
    words = re.findall(r"[a-z]+", prompt.lower())
    shape = next((w for w in words if w in SHAPES), None)
    colour = next((w for w in words if w in COLOURS), None)
    match = re.search(r"\bon an? (\w+) background", prompt.lower())
    background = match.group(1) if match and match.group(1) in BACKGROUNDS else None
    return shape, colour, background


def nearest_names(frames: np.ndarray) -> tuple[str, str]:
    """The world's background and object colour names nearest to a clip's (uint8 (F, H, W, 3)):
    its median colour, and the median of the pixels farthest from it."""
    pixels = frames.reshape(-1, 3).astype(np.float32)
    median = np.median(pixels, 0)
    distance = np.linalg.norm(pixels - median, axis=1)
    core = pixels[distance >= np.percentile(distance, 97)]
    object_rgb = np.median(core, 0)

    def nearest(rgb, table):
        return min(table, key=lambda n: float(np.linalg.norm(np.array(table[n]) - rgb)))

    return nearest(median, BACKGROUND_RGB), nearest(object_rgb, COLOUR_RGB)


def _resample(track: np.ndarray, frames: int) -> np.ndarray:
    if len(track) == frames:
        return track
    at = np.linspace(0, len(track) - 1, frames)
    return np.stack([np.interp(at, np.arange(len(track)), track[:, i]) for i in range(4)], 1)


def _gain(total: float, wanted: float, cap: float) -> float:
    return 1.0 if abs(total) < 1e-9 or abs(total) >= wanted else min(wanted / abs(total), cap)


def layout_poses(track: np.ndarray, kind: str, frames: int, radius: float = RADIUS) -> list[Pose]:
    """Poses in the world's frame that move as `track` does (reading.MotionReading.track): the
    leading motion brought up to the size the world's clips show (a 3 px drift on a 64 px clip is
    a still for the model), everything kept inside the frame."""
    track = _resample(np.asarray(track, np.float64), frames)
    d = (track[:, :2] - track[0, :2]) * SIZE
    log_scale = np.log(np.maximum(track[:, 2], 1e-6) / max(track[0, 2], 1e-6))
    angle = track[:, 3] - track[0, 3]
    if kind in ("growing", "shrinking"):
        log_scale = log_scale * _gain(log_scale[-1], WORLD_ZOOM, MAX_GAIN)
    elif kind == "spinning":
        angle = angle * _gain(angle[-1], WORLD_TURN, 2 * MAX_GAIN)
    elif kind != "still":
        d = d * _gain(np.linalg.norm(d, axis=1).max(), MIN_TRAVEL, MAX_GAIN)
    # scales within the world's 0.6..1.3 radii, centred on their middle
    lo, hi = math.log(0.6), math.log(1.3)
    log_scale = log_scale - (log_scale.max() + log_scale.min()) / 2 + (lo + hi) / 2
    scale = np.exp(np.clip(log_scale, lo, hi))
    reach = 1.15 * radius * scale + 1  # a star's points reach 1.15 radii
    room = SIZE - 2 * reach.max()
    span = d.max(0) - d.min(0)
    if span.max() > room:  # the path does not fit: shrink it about its start
        d = d * room / span.max()
    start = np.array(track[0, :2]) * SIZE
    low = np.max(reach[:, None] - d, 0)
    high = np.min(SIZE - reach[:, None] - d, 0)
    start = np.clip(start, low, np.maximum(low, high))
    xy = start + d
    return [Pose(float(x), float(y), float(s), float(a)) for (x, y), s, a in zip(xy, scale, angle)]


def layout_clip(
    track: np.ndarray, kind: str, shape: str, colour: str, background: str, frames: int
) -> np.ndarray:
    """The prompt's object on its background along the track: uint8 (frames, 64, 64, 3)."""
    poses = layout_poses(track, kind, frames)
    return render_along(ObjectSpec(shape, colour, "left"), background, poses, RADIUS)
