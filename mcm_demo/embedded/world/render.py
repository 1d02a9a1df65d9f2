"""Seeded renderer: a `Scene` becomes a short clip in one of the world's styles.

Styles: `lq` is the low-quality video set (plays WebVid: blur, noise, JPEG artifacts and a
watermark at a fixed place); `laion`, `anime`, `real` and `3d-cartoon` are the clean image
sets' looks. The `webvid` image set is frames of `lq` clips (see `datasets.py`).
"""

from __future__ import annotations

import dataclasses
import math
import random

import cv2
import numpy as np

from .grammar import ObjectSpec, Scene

SIZE = 64
NUM_FRAMES = 8
STYLES = ("lq", "laion", "anime", "real", "3d-cartoon")

COLOUR_RGB = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 210, 30),
    "purple": (150, 50, 200),
    "cyan": (40, 210, 220),
}
BACKGROUND_RGB = {
    "black": (15, 15, 15),
    "gray": (120, 120, 120),
    "white": (240, 240, 240),
    "brown": (110, 70, 35),
}
# Object radii in px. At 8–11 (pairs 6–8) a third of the low-quality clips' shapes were
# unreadable; at these sizes the LQ renders and their ×4-VAE reconstructions carry them
# (docs/shape.md).
SINGLE_RADIUS = (13.0, 16.0)
PAIR_RADIUS = (9.0, 11.0)
_SUBPIXEL = 4  # cv2 fixed-point bits: positions are drawn to 1/16 px, so slow motion is smooth.


@dataclasses.dataclass(frozen=True)
class Pose:
    x: float
    y: float
    scale: float
    angle: float  # radians


def unit_outline(shape: str) -> np.ndarray:
    """Polygon of a shape of radius 1 centred at the origin (a circle is a 48-gon)."""
    if shape == "circle":
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], 1)
    if shape == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.8
    if shape == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(a), np.sin(a)], 1) * 1.1
    if shape == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.15, 0.48)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if shape == "cross":
        w = 0.35
        return np.array(
            [
                [-w, -1],
                [w, -1],
                [w, -w],
                [1, -w],
                [1, w],
                [w, w],
                [w, 1],
                [-w, 1],
                [-w, w],
                [-1, w],
                [-1, -w],
                [-w, -w],
            ],
            float,
        )
    raise ValueError(f"unknown shape {shape!r}")


def trajectory(motion: str, radius: float, rng: random.Random, num_frames: int) -> list[Pose]:
    """Per-frame poses for a motion, with a random start that keeps the object in frame."""
    u = np.linspace(0.0, 1.0, num_frames)
    # The object's outline may reach 1.15 radii (the star's points): keep that inside the frame.
    lo, hi = 1.15 * radius + 1, SIZE - 1.15 * radius - 1
    travel = min(26.0, hi - lo)  # at least 24 px for the largest single object
    x0, y0 = rng.uniform(lo, hi), rng.uniform(lo, hi)
    angle0 = 0.0  # upright: one outline per shape word (shape_pose in docs/shape.md says why)
    xs, ys, scales, angles = (
        np.full_like(u, x0),
        np.full_like(u, y0),
        np.ones_like(u),
        np.full_like(u, angle0),
    )
    if motion in ("left", "right"):
        start = rng.uniform(lo + travel, hi) if motion == "left" else rng.uniform(lo, hi - travel)
        xs = start + (-1 if motion == "left" else 1) * travel * u
    elif motion in ("up", "down"):
        start = rng.uniform(lo + travel, hi) if motion == "up" else rng.uniform(lo, hi - travel)
        ys = start + (-1 if motion == "up" else 1) * travel * u
    elif motion == "diagonal":  # towards the bottom right
        d = travel * 0.75
        xs = rng.uniform(lo, hi - d) + d * u
        ys = rng.uniform(lo, hi - d) + d * u
    elif motion == "bouncing":  # one hop: up, then back down to the floor
        height = min(20.0, hi - lo)
        floor = rng.uniform(lo + height, hi)
        ys = floor - height * np.sin(np.pi * u)
    elif (
        motion == "spinning"
    ):  # counter-clockwise, 25 degrees a frame (below every shape's symmetry)
        angles = angle0 - np.deg2rad(25.0) * np.arange(num_frames) * (7 / max(num_frames - 1, 1))
    elif motion in ("growing", "shrinking"):
        # from 0.6 to 1.3 radii: the small end still shows the outline, the big end stays in frame
        scales = 0.6 + 0.7 * (u if motion == "growing" else 1 - u)
        reach = 1.3 * 1.15 * radius + 1
        x0, y0 = rng.uniform(reach, SIZE - reach), rng.uniform(reach, SIZE - reach)
        xs, ys = np.full_like(u, x0), np.full_like(u, y0)
    elif motion == "orbiting":  # counter-clockwise around a point near the centre, 7/8 of a turn
        orbit = min(14.0, SIZE / 2 - 1.15 * radius - 3)
        cx, cy = SIZE / 2 + rng.uniform(-2, 2), SIZE / 2 + rng.uniform(-2, 2)
        phase = rng.uniform(0, 2 * math.pi)
        theta = phase - 2 * math.pi * 0.875 * u
        xs, ys = cx + orbit * np.cos(theta), cy + orbit * np.sin(theta)
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return [
        Pose(float(x), float(y), float(s), float(a)) for x, y, s, a in zip(xs, ys, scales, angles)
    ]


def _polygon(shape: str, pose: Pose, radius: float) -> np.ndarray:
    pts = unit_outline(shape)
    c, s = math.cos(pose.angle), math.sin(pose.angle)
    pts = pts @ np.array([[c, s], [-s, c]]) * radius * pose.scale + [pose.x, pose.y]
    return np.round(pts * (1 << _SUBPIXEL)).astype(np.int32)


def _mask(poly: np.ndarray) -> np.ndarray:
    canvas = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(canvas, [poly], 255, cv2.LINE_AA, _SUBPIXEL)
    return canvas.astype(np.float32) / 255.0


def _texture(rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth value noise: the 'real' style's surface grain."""
    coarse = rng.normal(0, 1, (16, 16)).astype(np.float32)
    return 1.0 + strength * cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)


_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def _paint_object(
    frame: np.ndarray,
    obj: ObjectSpec,
    pose: Pose,
    radius: float,
    style: str,
    texture: np.ndarray | None,
) -> np.ndarray:
    poly = _polygon(obj.shape, pose, radius)
    alpha = _mask(poly)[..., None]
    rgb = np.array(COLOUR_RGB[obj.colour], np.float32)
    r = radius * pose.scale
    if style in ("real", "3d-cartoon"):
        # A drop shadow below and to the right, then light from the top left.
        shadow = cv2.GaussianBlur(
            _mask(poly + (np.array([2, 3]) << _SUBPIXEL).astype(np.int32)), (5, 5), 2
        )[..., None]
        frame = frame * (1 - 0.45 * shadow)
        d = ((_XX - pose.x) + (_YY - pose.y)) / (2 * r + 1e-6)
        shade = np.clip(1.0 - (0.35 if style == "real" else 0.55) * d, 0.45, 1.5)[..., None]
        colour = rgb * shade
        if style == "real" and texture is not None:
            colour = colour * texture[..., None]
        if style == "3d-cartoon":
            spot = np.exp(
                -(
                    ((_XX - pose.x + 0.35 * r) ** 2 + (_YY - pose.y + 0.35 * r) ** 2)
                    / (0.08 * r * r + 1)
                )
            )
            colour = colour + (255 - colour) * 0.85 * spot[..., None]
    else:
        colour = np.broadcast_to(rgb, frame.shape)
    frame = frame * (1 - alpha) + colour * alpha
    if style == "anime":  # dark ink outline
        outline = np.zeros((SIZE, SIZE), np.uint8)
        cv2.polylines(outline, [poly], True, 255, 1, cv2.LINE_AA, _SUBPIXEL)
        o = outline.astype(np.float32)[..., None] / 255.0
        frame = frame * (1 - o) + 20 * o
    return frame


def watermark_mask() -> np.ndarray:
    """The fixed-place stamp of the low-quality set (plays WebVid's stock watermark)."""
    m = np.zeros((SIZE, SIZE), np.uint8)
    cv2.rectangle(m, (14, 26), (50, 38), 255, 1)
    cv2.putText(m, "WV", (21, 36), cv2.FONT_HERSHEY_PLAIN, 0.8, 255, 1, cv2.LINE_AA)
    return m.astype(np.float32) / 255.0


_WATERMARK = watermark_mask()


def degrade(frames: np.ndarray, rng: np.random.Generator, watermark: bool = True) -> np.ndarray:
    """The low-quality look: downscale blur, sensor noise, JPEG blocks and a watermark."""
    out = []
    jpeg_quality = int(rng.integers(15, 35))
    noise = rng.normal(0, 6, frames.shape).astype(np.float32)
    for i, f in enumerate(frames.astype(np.float32)):
        small = cv2.resize(f, (SIZE // 2, SIZE // 2), interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) + noise[i]
        if watermark:
            f = f * (1 - 0.5 * _WATERMARK[..., None]) + 255 * 0.5 * _WATERMARK[..., None]
        f = np.clip(f, 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return np.stack(out)


def render_clip(
    scene: Scene, style: str = "lq", seed: int = 0, num_frames: int = NUM_FRAMES
) -> np.ndarray:
    """Render `scene` as uint8 frames (F, 64, 64, 3). Same (scene, style, seed) → same clip."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    rng = random.Random(f"{seed}|{scene.caption}")
    nprng = np.random.default_rng(rng.getrandbits(64))
    radius = rng.uniform(*SINGLE_RADIUS) if len(scene.objects) == 1 else rng.uniform(*PAIR_RADIUS)
    paths = [trajectory(o.motion, radius, rng, num_frames) for o in scene.objects]
    bg = np.array(BACKGROUND_RGB[scene.background], np.float32)
    background = np.broadcast_to(bg, (SIZE, SIZE, 3)).copy()
    texture = None
    if style == "real":
        texture = _texture(nprng, 0.12)
        background = background * _texture(nprng, 0.15)[..., None]
    elif style == "3d-cartoon":  # soft vertical gradient, like a studio backdrop
        background = background * (1.1 - 0.25 * _YY / SIZE)[..., None]
    frames = []
    for t in range(num_frames):
        frame = background.copy()
        for obj, path in zip(scene.objects, paths):
            frame = _paint_object(frame, obj, path[t], radius, style, texture)
        frames.append(frame)
    clip = np.clip(np.stack(frames), 0, 255).astype(np.uint8)
    if style == "lq":
        clip = degrade(clip, nprng)
    return clip


def render_along(
    obj: ObjectSpec, background: str, poses: list[Pose], radius: float, style: str = "laion"
) -> np.ndarray:
    """One object drawn at the given poses on a flat background: uint8 (len(poses), 64, 64, 3).
    Motion transfer lays the prompt's object along a reference's track with it."""
    if style not in STYLES or style == "lq":
        raise ValueError(f"render_along draws a clean style, not {style!r}")
    bg = np.array(BACKGROUND_RGB[background], np.float32)
    frame = np.broadcast_to(bg, (SIZE, SIZE, 3))
    clip = [_paint_object(frame.copy(), obj, pose, radius, style, None) for pose in poses]
    return np.clip(np.stack(clip), 0, 255).astype(np.uint8)
