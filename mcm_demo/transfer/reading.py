"""Read the motion of any footage into a track the embedded model can follow.

Per pair of frames, dense optical flow (DIS) and a robust similarity fit to it
(RANSAC, `cv2.estimateAffinePartial2D`) give the camera's motion: what most of the textured
frame does. Flow that the camera's motion does not explain marks moving regions; the largest
one leads, and a similarity fitted to the flow inside it moves its centre, scale and angle
on to the next frame. Where nothing moves against the background, the camera's motion is
the track, as the content moves in the frame: a pan to the right moves the subject left, a
zoom in grows it, a roll spins it. A clip with neither (static, too short, noise) is read as
having no usable motion, with the reason.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from ..video_io import to_uint8

WORK_SIZE = 128  # flow is computed at this side: a 64 px clip is enlarged so windows see shapes
MOVING_PX = 0.6  # flow unexplained by the camera beyond this (work pixels) is an object's
# a first frame with more than FLAT of its pixels within NEAR (RGB) of its median colour, and a
# median |Laplacian| under SMOOTH there, is objects on a flat background
FLAT, NEAR, SMOOTH = 0.3, 20.0, 4.0
APART = 40.0  # on a flat background, a pixel this far from its colour (RGB) is an object's
MIN_REGION = 0.004  # a moving region smaller than this share of the frame is noise
# a motion is there when it beats these: net travel (share of the frame), |log scale|, |radians|
TRAVEL, ZOOM, TURN = 0.06, 0.12, 0.3
DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


@dataclasses.dataclass
class MotionReading:
    """What a clip's motion was read as. `track` is (F, 4): x, y (shares of the frame's width
    and height), scale (1 at the first frame) and angle (radians, clockwise on screen, 0 at the
    first frame) of the subject. `source` is "object", "camera" or "none"; `message` says why
    a clip has no usable motion."""

    source: str
    track: np.ndarray
    kind: str  # "right", "up-left", …, "growing", "shrinking", "spinning", or "still"
    objects: int = 0
    camera: str = ""  # for a camera track: "camera pans left", "camera zooms in", …
    message: str = ""
    # per pair, the leader's box (x0, y0, x1, y1, shares of the frame) or None where unseen
    regions: list = dataclasses.field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.source != "none"

    def describe(self) -> str:
        """One line for the page: what will be transferred."""
        if not self.usable:
            return self.message
        what = _kind_phrase(self.kind)
        d = np.hypot(*(self.track[:, :2] - self.track[0, :2]).T)
        if self.kind in DIRECTIONS and d[-1] < 0.5 * d.max():
            what += " and back"  # a bounce, an orbit: the layout follows the whole path
        if self.source == "camera":
            return f"{self.camera}: the subject {what}"
        lead = f" ({self.objects} moving objects: the larger one leads)" if self.objects > 1 else ""
        return f"the moving object {what}{lead}"


def _kind_phrase(kind: str) -> str:
    if kind in ("growing", "shrinking", "spinning"):
        return "spins" if kind == "spinning" else f"is {kind}"
    return f"moves {kind.replace('-', ' and ') if '-' in kind else kind}"


def _gray(frames: np.ndarray) -> list[np.ndarray]:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = to_uint8(frames)
    h, w = frames.shape[1:3]
    scale = WORK_SIZE / max(h, w)
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    gray = np.stack(
        [
            cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
            for f in frames
        ]
    ).astype(np.float32)
    # stretched to the full range over the clip: flow on a low-contrast photo is far off otherwise
    lo, hi = np.percentile(gray, [1, 99])
    return list(np.clip((gray - lo) * 255 / max(hi - lo, 1.0), 0, 255).astype(np.uint8))


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(a, b, None)


def _fit(points: np.ndarray, flow_at: np.ndarray):
    """Similarity (2×3) taking `points` to `points + flow_at`, fitted robustly, and the share of
    inliers; identity and 0 where it cannot be fitted."""
    if len(points) < 6:
        return np.eye(2, 3), 0.0
    m, inliers = cv2.estimateAffinePartial2D(
        points.astype(np.float32),
        (points + flow_at).astype(np.float32),
        method=cv2.RANSAC,
        ransacReprojThreshold=0.5,
        maxIters=500,
        refineIters=10,
    )
    if m is None:
        return np.eye(2, 3), 0.0
    return m, float(inliers.mean())


def _grid(shape, step: int = 2) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0] : step, 0 : shape[1] : step]
    return np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)


def _similarity_parts(m: np.ndarray) -> tuple[float, float]:
    """Scale and angle (radians, clockwise on screen) of a 2×3 similarity."""
    return math.hypot(m[0, 0], m[1, 0]), math.atan2(m[1, 0], m[0, 0])


def _regions(moving: np.ndarray):
    """Moving regions, largest first: (area, mask, centroid (x, y))."""
    mask = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = MIN_REGION * moving.size
    found = [
        (int(stats[i, cv2.CC_STAT_AREA]), labels == i, centroids[i])
        for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= min_area
    ]
    return sorted(found, key=lambda r: -r[0])


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return np.array([xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h])


def classify(track: np.ndarray) -> str:
    """The track's kind: the strongest of its travel (one of 8 directions, towards its farthest
    point from the start: the top of a bounce), its zoom and its turn, each against its own
    threshold; "still" when none passes."""
    d = track[:, :2] - track[0, :2]
    log_scale = np.log(np.maximum(track[:, 2], 1e-6) / max(track[0, 2], 1e-6))
    turn = track[:, 3] - track[0, 3]
    far, big, most = (int(np.argmax(np.abs(v))) for v in (np.hypot(*d.T), log_scale, turn))
    travel, zoom, spin = (
        math.hypot(*d[far]) / TRAVEL,
        abs(log_scale[big]) / ZOOM,
        abs(turn[most]) / TURN,
    )
    best = max(travel, zoom, spin)
    if best < 1:
        return "still"
    if best == zoom:
        return "growing" if log_scale[big] > 0 else "shrinking"
    if best == spin:
        return "spinning"
    sector = round(math.degrees(math.atan2(d[far, 1], d[far, 0])) / 45) % 8  # y points down
    return DIRECTIONS[sector]


def _camera_phrase(kind: str) -> str:
    """How the camera moved for the content to move as `kind` says."""
    if kind == "growing":
        return "camera zooms in"
    if kind == "shrinking":
        return "camera zooms out"
    if kind == "spinning":
        return "camera rotates"
    opposite = DIRECTIONS[(DIRECTIONS.index(kind) + 4) % 8]
    return f"camera pans {opposite.replace('-', ' and ')}"


def _none(frames: int, message: str) -> MotionReading:
    track = np.tile(np.array([0.5, 0.5, 1.0, 0.0]), (max(frames, 1), 1))
    return MotionReading("none", track, "still", message=message)


def _flat_background(frame: np.ndarray) -> bool:
    """Whether a frame (uint8 RGB) is objects on a flat background: a good share of it near its
    median colour, and smooth there (a generated clip's faint grain is not texture; grass is)."""
    pixels = frame.astype(np.float32)
    near = np.linalg.norm(pixels - np.median(pixels.reshape(-1, 3), 0), axis=-1) < NEAR
    detail = np.abs(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_32F))
    return near.mean() > FLAT and float(np.median(detail[near])) < SMOOTH


def read_motion(frames: np.ndarray) -> MotionReading:
    """The subject's track in a clip (F, H, W, 3): the largest region that moves against the
    background, or else the camera's motion as the content moves; see the module's note."""
    if len(frames) < 3:
        return _none(
            len(frames), f"The clip has {len(frames)} frame(s): motion needs at least 3 to read."
        )
    gray = _gray(frames)
    h, w = gray[0].shape
    grid = _grid((h, w))
    if _flat_background(frames[0]):
        return _flat_reading(frames, gray)
    size = np.array([w, h], np.float64)
    cameras, pairs, inlier_shares, noisy = [], [], [], 0
    for a, b in zip(gray[:-1], gray[1:]):
        flow = _flow(a, b)
        gradient = cv2.magnitude(cv2.Sobel(a, cv2.CV_32F, 1, 0), cv2.Sobel(a, cv2.CV_32F, 0, 1))
        g = gradient[grid[:, 1].astype(int), grid[:, 0].astype(int)]
        textured = grid[g > max(np.percentile(g, 50), 8.0)]
        at = flow[textured[:, 1].astype(int), textured[:, 0].astype(int)]
        camera, share = _fit(textured, at)
        cameras.append(camera)
        inlier_shares.append(share)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        camera_flow = np.stack(
            [
                camera[0, 0] * xs + camera[0, 1] * ys + camera[0, 2] - xs,
                camera[1, 0] * xs + camera[1, 1] * ys + camera[1, 2] - ys,
            ],
            -1,
        )
        # flow errs in proportion to the motion (a zoom's or roll's edges), and most at the
        # border, where content enters: neither counts as an object
        residual = np.linalg.norm(flow - camera_flow, axis=-1)
        moving = residual > MOVING_PX + 0.3 * np.linalg.norm(camera_flow, axis=-1)
        # content enters at the border as far as the camera moves it there
        border = np.concatenate(
            [camera_flow[0], camera_flow[-1], camera_flow[:, 0], camera_flow[:, -1]]
        )
        edge = max(2, round(0.05 * min(h, w) + 1.5 * np.linalg.norm(border, axis=-1).max()))
        moving[:edge], moving[-edge:], moving[:, :edge], moving[:, -edge:] = (
            False,
            False,
            False,
            False,
        )
        if moving.mean() > 0.5:  # most of the frame disagrees with any one motion: noise
            noisy += 1
        pairs.append((flow, residual, _regions(moving)))
    if noisy > len(pairs) / 2 or np.median(inlier_shares) < 0.2:
        return _none(
            len(frames),
            "No usable motion: the clip looks like noise (no region moves consistently).",
        )
    objects = [len(regions) for *_, regions in pairs]
    with_object = sum(n > 0 for n in objects)
    if with_object >= max(2, len(pairs) / 2):
        return _object_reading(pairs, size, len(frames), objects)
    return _camera_reading(cameras, size, len(frames))


def _step(flow, residual, region) -> dict:
    """One moving region's motion to the next frame: a similarity fitted to the flow inside it."""
    area, mask, centre = region
    ys, xs = np.nonzero(mask)
    m, _ = _fit(np.stack([xs, ys], 1).astype(np.float32), flow[ys, xs])
    scale, turn = _similarity_parts(m)
    # flow spreads past an object's edge: its box is where the flow differs most
    core = mask & (residual > 0.5 * np.percentile(residual[mask], 90))
    return dict(
        area=area,
        at=np.array(centre, np.float64),
        to=np.array([m[0] @ [*centre, 1.0], m[1] @ [*centre, 1.0]]),
        scale=scale,
        turn=turn,
        box=_box(core if core.any() else mask),
    )


def _nearest(steps: list[dict], point: np.ndarray, key: str) -> dict | None:
    """The step whose `key` point is nearest to `point`, in units of its size."""
    if not steps:
        return None
    return min(steps, key=lambda s: np.linalg.norm(s[key] - point) / math.sqrt(s["area"]))


def _object_reading(pairs, size: np.ndarray, frames: int, objects: list[int]) -> MotionReading:
    """Follow the largest moving region (the largest seen in any pair: the larger of two objects)
    forwards and backwards from where it is seen, from pair to pair to the region nearest to
    where it went (came from)."""
    steps = [[_step(flow, residual, r) for r in regions] for flow, residual, regions in pairs]
    k = max(range(len(steps)), key=lambda i: max((s["area"] for s in steps[i]), default=0))
    chain = [None] * len(steps)
    chain[k] = max(steps[k], key=lambda s: s["area"])
    for i in range(k + 1, len(steps)):  # forwards: from where the last one went
        last = next(c for c in reversed(chain[:i]) if c is not None)
        chain[i] = _nearest(steps[i], last["to"], "at")
    for i in range(k - 1, -1, -1):  # backwards: the one that went where the next one is
        after = next(c for c in chain[i + 1 :] if c is not None)
        chain[i] = _nearest(steps[i], after["at"], "to")
    first = next(c for c in chain if c is not None)
    centre, scale, angle = first["at"], 1.0, 0.0
    track = [(*(centre / size), scale, angle)]
    for c in chain:
        if c is not None:
            centre, scale, angle = c["to"], scale * c["scale"], angle + c["turn"]
        track.append((*(centre / size), scale, angle))
    track = np.array(track[:frames])
    count = int(np.median([n for n in objects if n > 0]))
    kind = classify(track)
    if kind == "still":
        return _none(frames, "No usable motion: what moves in the clip barely moves.")
    boxes = [None if c is None else c["box"] for c in chain]
    return MotionReading("object", track, kind, objects=count, regions=boxes)


def _flat_reading(frames: np.ndarray, gray: list[np.ndarray]) -> MotionReading:
    """On a flat background the objects are what differs from it (flow spreads into a flat
    background, so it cannot say what moves): the largest object is followed from frame to
    frame (the one nearest to where the flow inside it went), its centre and size from its
    mask, its turn from a similarity fitted to the flow inside it."""
    h, w = gray[0].shape
    size = np.array([w, h], np.float64)
    colour = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    colour = colour.astype(np.float32)
    background = np.median(colour.reshape(len(frames), -1, 3), 1)[:, None, None]
    apart = np.linalg.norm(colour - background, axis=-1) > APART
    regions = [_regions(a) for a in apart]
    if not regions[0]:
        return _none(len(frames), "No usable motion: nothing stands out of the background.")
    area, mask, centre = regions[0][0]
    area0, angle = area, 0.0
    track, boxes = [(*(centre / size), 1.0, 0.0)], []
    for t, (a, b) in enumerate(zip(gray[:-1], gray[1:])):
        flow = _flow(a, b)
        ys, xs = np.nonzero(mask)
        moved = np.array(centre) + np.median(flow[ys, xs], 0)
        m, _ = _fit(np.stack([xs, ys], 1).astype(np.float32), flow[ys, xs])
        angle += _similarity_parts(m)[1]
        boxes.append(_box(mask))
        if regions[t + 1]:
            distance = [np.linalg.norm(c - moved) / math.sqrt(n) for n, _, c in regions[t + 1]]
            area, mask, centre = regions[t + 1][int(np.argmin(distance))]
        track.append((*(np.array(centre) / size), math.sqrt(area / area0), angle))
    track = np.array(track)
    kind = classify(track)
    if kind == "still":
        return _none(len(frames), "No usable motion: what is in the clip does not move.")
    count = int(np.median([len(r) for r in regions]))
    return MotionReading("object", track, kind, objects=count, regions=boxes)


def _camera_reading(cameras, size: np.ndarray, frames: int) -> MotionReading:
    """The content's motion under the camera: the frame centre carried through each pair's
    similarity."""
    centre, scale, angle = size / 2, 1.0, 0.0
    track = [(0.5, 0.5, 1.0, 0.0)]
    for m in cameras:
        s, turn = _similarity_parts(m)
        centre = np.array([m[0] @ [*centre, 1.0], m[1] @ [*centre, 1.0]])
        scale, angle = scale * s, angle + turn
        track.append((*(centre / size), scale, angle))
    track = np.array(track)
    kind = classify(track)
    if kind == "still":
        return _none(
            frames, "No usable motion: nothing moves in the clip and the camera stands still."
        )
    return MotionReading("camera", track, kind, camera=_camera_phrase(kind))


def track_fidelity(reference: np.ndarray, generated: np.ndarray) -> float:
    """How alike two tracks (F, 4) move: the cosine of their motions from the first frame, with
    travel, log-scale and angle each in units of its threshold (so a zoom counts as much as a
    pan); 0 when either stands still."""

    def motion(track):
        t = np.asarray(track, np.float64)
        parts = [
            (t[:, 0] - t[0, 0]) / TRAVEL,
            (t[:, 1] - t[0, 1]) / TRAVEL,
            np.log(np.maximum(t[:, 2], 1e-6) / max(t[0, 2], 1e-6)) / ZOOM,
            (t[:, 3] - t[0, 3]) / TURN,
        ]
        return np.stack(parts, 1).ravel()

    a, b = motion(reference), motion(generated)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(max(0.0, a @ b / denom)) if denom > 1e-9 else 0.0
