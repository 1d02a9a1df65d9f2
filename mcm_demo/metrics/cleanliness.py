"""Two measures the learned evaluator cannot make: a watermark's faint ghost, and outlines.

The evaluator is taught to read blurred low-quality clips, so it calls a faint stamp "no
watermark" and a star with blunt points "a star". These read the pixels instead:

- `watermark_ghost`: the brightness of the stamp's strokes against the background right beside
  them, minus the same measure with the strokes moved 20 px down (a control for whatever else
  the frame holds there), with the object's pixels left out. Clean renders read about 0, the
  low-quality video set about +25 (`docs/cleanliness.md` calibrates it);
- `outline_reading`: the object's mask fitted by every shape's ideal outline at the mask's
  centroid and area, at the best rotation; the shape whose outline overlaps it most (IoU) is
  what the clip shows.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from ..embedded.world import Scene
from ..embedded.world.grammar import SHAPES
from ..embedded.world.render import (
    BACKGROUND_RGB,
    COLOUR_RGB,
    SIZE,
    unit_outline,
    watermark_mask,
)
from ..video_io import to_uint8

# a clip whose ghost reads above this shows the stamp (the calibration in docs/cleanliness.md:
# at most 5% of any clean style's renders above it, every low-quality clip on a background the
# stamp shows on, all but white, above it)
GHOST_THRESHOLD = 10.0
_CONTROL_SHIFT = 20  # px down: below the stamp, still inside the frame
_ROTATIONAL_SYMMETRY = {"circle": 1, "square": 4, "triangle": 3, "star": 5, "cross": 4}
_ANGLE_STEP = math.radians(3.0)
_SUBPIXEL = 4


def _stroke_and_ring(shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    strokes = (watermark_mask() > 0.3).astype(np.uint8)
    if shift:
        strokes = np.roll(strokes, shift, axis=0)
    kernel = np.ones((3, 3), np.uint8)
    near = cv2.dilate(strokes, kernel, iterations=1)
    ring = cv2.dilate(strokes, kernel, iterations=3) & ~near.astype(bool)
    return strokes.astype(bool), ring.astype(bool)


_STAMP = _stroke_and_ring()
_CONTROL = _stroke_and_ring(_CONTROL_SHIFT)


def _hue_saturation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue in degrees and chroma (max − min channel, 0–255) of float RGB pixels."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb / 255.0, np.float32), cv2.COLOR_RGB2HSV)
    return hsv[..., 0], rgb.max(-1) - rgb.min(-1)


def _hue_gap(a, b):
    d = np.abs(np.asarray(a) - b) % 360
    return np.minimum(d, 360 - d)


# every object colour's hue, and brown's (the one background with a hue), in degrees
_HUE = {
    name: float(_hue_saturation(np.array([[rgb]], np.float32))[0][0, 0])
    for name, rgb in {**COLOUR_RGB, "brown": BACKGROUND_RGB["brown"]}.items()
}


def object_masks(clip: np.ndarray, colour: str, background: str) -> np.ndarray:
    """(F, H, W) bool: the pixels of the prompt's object in each uint8 frame. The objects'
    colours are saturated and keep their hue under the styles' shading; the backgrounds are
    grey but for brown, and the stamp is grey (brown where JPEG bleeds the background into it),
    so a pixel is the object's when it is saturated and nearer the object's hue than brown's."""
    rgb = clip.astype(np.float32)
    # per pixel: the clip's frames stacked into one image for OpenCV
    hue, chroma = _hue_saturation(rgb.reshape(-1, *rgb.shape[2:]))
    near = _hue_gap(hue, _HUE[colour])
    mask = (chroma > 45) & (near < 35)
    if background == "brown":
        mask &= near < _hue_gap(hue, _HUE["brown"])
    return mask.reshape(rgb.shape[:3])


def _filled_largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of a mask with its holes filled (a highlight, an ink line)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(mask.shape, np.uint8)
    if contours:
        cv2.drawContours(out, [max(contours, key=cv2.contourArea)], -1, 1, cv2.FILLED)
    return out.astype(bool)


def _luma(clip: np.ndarray) -> np.ndarray:
    return clip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _stamp_contrast(luma: np.ndarray, keep: np.ndarray, strokes, ring) -> float | None:
    s, r = strokes & keep, ring & keep
    if s.sum() < 0.2 * strokes.sum() or r.sum() < 0.2 * ring.sum():
        return None  # the object covers the place: nothing to read in this frame
    return float(luma[s].mean() - luma[r].mean())


def watermark_ghost(clip: np.ndarray, objects: np.ndarray) -> float:
    """How strongly a uint8 clip (F, 64, 64, 3) shows the stamp, in luma levels (0–255), with
    the object's pixels (`objects`, F×H×W) left out; NaN where it covers the stamp throughout."""
    luma = _luma(clip)
    kernel = np.ones((5, 5), np.uint8)
    readings = []
    for y, obj in zip(luma, objects):
        keep = ~cv2.dilate(obj.astype(np.uint8), kernel).astype(bool)
        stamp, control = _stamp_contrast(y, keep, *_STAMP), _stamp_contrast(y, keep, *_CONTROL)
        if stamp is not None and control is not None:
            readings.append(stamp - control)
    return float(np.mean(readings)) if readings else float("nan")


@dataclasses.dataclass(frozen=True)
class OutlineReading:
    shape: str | None  # the best-fitting shape's name (None: no object found)
    iou: dict[str, float]  # shape → IoU of its best fit


def _polygon_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _fit_iou(mask: np.ndarray, shape: str) -> float:
    """IoU of `shape`'s outline at the mask's centroid and area, at its best rotation: a coarse
    sweep of the shape's symmetry period, then a finer look around the best angle."""
    ys, xs = np.nonzero(mask)
    unit = unit_outline(shape)
    radius = math.sqrt(len(xs) / _polygon_area(unit))
    centre = np.array([xs.mean(), ys.mean()])

    def iou(angle: float) -> float:
        c, s = math.cos(angle), math.sin(angle)
        pts = unit @ np.array([[c, s], [-s, c]]) * radius + centre
        canvas = np.zeros((SIZE, SIZE), np.uint8)
        cv2.fillPoly(canvas, [np.round(pts * (1 << _SUBPIXEL)).astype(np.int32)], 1, 8, _SUBPIXEL)
        template = canvas.astype(bool)
        return float((template & mask).sum() / max((template | mask).sum(), 1))

    if shape == "circle":
        return iou(0.0)
    period = 2 * math.pi / _ROTATIONAL_SYMMETRY[shape]
    coarse = {a: iou(a) for a in np.arange(0.0, period, 3 * _ANGLE_STEP)}
    best = max(coarse, key=coarse.get)
    fine = [iou(best + d * _ANGLE_STEP) for d in (-1, 1)]
    return max(coarse[best], *fine)


def outline_reading(frame_mask: np.ndarray, min_area: int = 40) -> OutlineReading:
    """The shape whose ideal outline, fitted at the mask's centroid, area and best rotation,
    overlaps one frame's object mask most."""
    mask = _filled_largest(frame_mask)
    if mask.sum() < min_area:
        return OutlineReading(None, {})
    iou = {shape: _fit_iou(mask, shape) for shape in SHAPES}
    return OutlineReading(max(iou, key=iou.get), iou)


@dataclasses.dataclass
class CleanlinessScores:
    ghost: np.ndarray  # (N,) per clip, NaN where the stamp was covered throughout
    outline_right: np.ndarray  # (N,) bool: most frames read as the asked shape
    outline_iou: np.ndarray  # (N,) mean IoU of the asked shape's best fit
    asked: np.ndarray  # (N,) the asked shape's name

    def summary(self, threshold: float = GHOST_THRESHOLD) -> dict[str, float]:
        ghost = self.ghost[np.isfinite(self.ghost)]
        pointed = self.outline_right[np.isin(self.asked, ("star", "cross"))]
        return {
            "ghost": float(ghost.mean()) if len(ghost) else float("nan"),
            "ghost_share": float((ghost > threshold).mean()) if len(ghost) else float("nan"),
            "outline": float(self.outline_right.mean()),
            "outline_iou": float(self.outline_iou.mean()),
            # the shapes whose points and arms a blurring student loses first (issue 41)
            "outline_star_cross": float(pointed.mean()) if len(pointed) else float("nan"),
        }


def score_cleanliness(clips: np.ndarray, scenes: list[Scene]) -> CleanlinessScores:
    """Ghost and outline of uint8 or [0, 1]-float clips (N, F, 64, 64, 3) of one-object scenes."""
    if clips.dtype != np.uint8:
        clips = to_uint8(clips)
    ghosts, right, ious = [], [], []
    for clip, scene in zip(clips, scenes):
        obj = scene.objects[0]
        masks = object_masks(clip, obj.colour, scene.background)
        ghosts.append(watermark_ghost(clip, masks))
        asked = obj.shape
        readings = [outline_reading(m) for m in masks]
        right.append(np.mean([r.shape == asked for r in readings]) > 0.5)
        ious.append(np.mean([r.iou.get(asked, 0.0) for r in readings]))
    asked = np.array([scene.objects[0].shape for scene in scenes])
    return CleanlinessScores(np.array(ghosts), np.array(right), np.array(ious), asked)
