"""Reading a reference's motion (transfer/reading.py) and laying the prompt's object along it
(transfer/layout.py), on footage made here from plain geometry: a textured patch moving over a
textured image, pans as moving crops, zooms as resized crops, a roll as a rotated crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mcm_demo.embedded.world import SIZE, ObjectSpec, Scene, render_clip
from mcm_demo.transfer.layout import layout_clip, layout_poses, nearest_names, prompt_look
from mcm_demo.transfer.reading import classify, read_motion, track_fidelity


def _texture(seed: int, size: int) -> np.ndarray:
    """Smooth random colour texture at several scales, like a photo's detail."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    for cells in (4, 8, 16, 32):
        noise = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        img += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC) * (32 / cells) ** 0.5
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 200 + 30).astype(np.uint8)


def _moving_patches(*moves, frames=8, size=64, seed=0):
    """Textured square patches (side, x0, y0, dx, dy per frame) over a still textured image."""
    background = _texture(seed, size)
    clip = []
    for t in range(frames):
        frame = background.copy()
        for i, (side, x0, y0, dx, dy) in enumerate(moves):
            patch = _texture(seed + 1 + i, side) // 2 + 100
            x, y = round(x0 + dx * t), round(y0 + dy * t)
            frame[y : y + side, x : x + side] = patch[: size - y, : size - x]
        clip.append(frame)
    return np.stack(clip)


def _camera(dx=0.0, dy=0.0, zoom=1.0, turn=0.0, frames=8, size=64, seed=3):
    """A camera over a big textured image: the crop moves by (dx, dy) px a frame (content moves
    the other way), is resized by `zoom` a frame and rolled by `turn` degrees a frame."""
    big = _texture(seed, 4 * size)
    c = 2 * size
    clip = []
    for t in range(frames):
        m = cv2.getRotationMatrix2D((c, c), turn * t, zoom**t)
        m[:, 2] -= np.array([dx, dy]) * t * 2
        warped = cv2.warpAffine(big, m, (4 * size, 4 * size), borderMode=cv2.BORDER_REFLECT)
        crop = warped[c - size : c + size, c - size : c + size]
        clip.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(clip)


@pytest.mark.parametrize(
    "move, kind",
    [
        ((3, 0), "right"),
        ((-3, 0), "left"),
        ((0, -3), "up"),
        ((0, 3), "down"),
        ((2.5, 2.5), "down-right"),
        ((-2.5, -2.5), "up-left"),
    ],
)
def test_a_patch_moving_over_a_still_photo_is_an_object_track(move, kind):
    dx, dy = move
    reading = read_motion(_moving_patches((16, 24 - 4 * dx, 24 - 4 * dy, dx, dy)))
    assert reading.source == "object" and reading.kind == kind and reading.objects == 1
    travel = (reading.track[-1, :2] - reading.track[0, :2]) * 64
    assert np.allclose(travel, [7 * dx, 7 * dy], atol=3.0)  # 7 steps of (dx, dy) px
    assert abs(reading.track[-1, 2] - 1) < 0.1 and abs(reading.track[-1, 3]) < 0.15


def test_of_two_moving_objects_the_larger_leads():
    big_right, small_up = (18, 4, 8, 3, 0), (8, 50, 52, 0, -3)
    reading = read_motion(_moving_patches(big_right, small_up))
    assert reading.kind == "right" and reading.objects == 2
    assert "2 moving objects: the larger one leads" in reading.describe()


@pytest.mark.parametrize(
    "camera, kind, phrase",
    [
        (dict(dx=2), "left", "camera pans right"),  # a pan right moves the subject left
        (dict(dx=-2), "right", "camera pans left"),
        (dict(dy=2), "up", "camera pans down"),
        (dict(zoom=1.06), "growing", "camera zooms in"),
        (dict(zoom=1 / 1.06), "shrinking", "camera zooms out"),
        (dict(turn=6), "spinning", "camera rotates"),
    ],
)
def test_where_nothing_moves_against_the_background_the_camera_is_the_track(camera, kind, phrase):
    reading = read_motion(_camera(**camera))
    assert reading.source == "camera" and reading.kind == kind
    assert reading.describe().startswith(phrase)
    if "turn" in camera:  # OpenCV turns counter-clockwise on screen: a negative angle here
        assert reading.track[-1, 3] == pytest.approx(-np.radians(6 * 7), abs=0.2)


@pytest.mark.parametrize(
    "clip, why",
    [
        (np.repeat(_texture(0, 64)[None], 8, 0), "stands still"),
        (np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8), "noise"),
        (_camera(dx=2)[:2], "at least 3"),
        (np.full((8, 64, 64, 3), 90, np.uint8), "nothing stands out"),
    ],
)
def test_a_clip_without_usable_motion_says_why(clip, why):
    reading = read_motion(clip)
    assert not reading.usable and why in reading.message and reading.describe() == reading.message


@pytest.mark.parametrize(
    "motion, kind",
    [
        ("left", "left"),
        ("up", "up"),
        ("diagonal", "down-right"),
        ("bouncing", "up"),
        ("spinning", "spinning"),
        ("growing", "growing"),
        ("shrinking", "shrinking"),
    ],
)
def test_world_clips_on_flat_backgrounds_read_as_their_motion(motion, kind):
    clip = render_clip(Scene("white", (ObjectSpec("star", "red", motion),)), "laion", 1)
    assert read_motion(clip).kind == kind


def test_track_fidelity_is_one_for_the_same_motion_and_zero_for_the_opposite():
    right = read_motion(_moving_patches((16, 12, 24, 3, 0))).track
    left = read_motion(_moving_patches((16, 40, 24, -3, 0))).track
    assert track_fidelity(right, right) == pytest.approx(1.0)
    assert track_fidelity(right, left) == 0.0
    assert track_fidelity(right, np.tile([0.5, 0.5, 1.0, 0.0], (8, 1))) == 0.0


def test_prompt_words_and_the_nearest_world_colours():
    assert prompt_look("A red circle on a white background") == ("circle", "red", "white")
    assert prompt_look("a star") == ("star", None, None)
    clip = render_clip(Scene("brown", (ObjectSpec("square", "cyan", "left"),)), "laion", 0)
    assert nearest_names(clip) == ("brown", "cyan")


@pytest.mark.parametrize("kind", ["right", "up-left", "growing", "shrinking", "spinning"])
def test_the_layout_moves_as_the_track_within_the_frame_at_the_worlds_size(kind):
    track = np.tile([0.5, 0.5, 1.0, 0.0], (8, 1))
    steps = np.arange(8)
    if kind == "right":
        track[:, 0] += 0.005 * steps  # 2.2 px over the clip: brought up to the world's travel
    elif kind == "up-left":
        track[:, :2] -= 0.05 * steps[:, None]  # far beyond the frame: shrunk into it
    elif kind in ("growing", "shrinking"):
        track[:, 2] = 1.02 ** (steps if kind == "growing" else -steps)
    else:
        track[:, 3] = -0.05 * steps
    poses = layout_poses(track, kind, 8)
    assert classify(np.array([[p.x / SIZE, p.y / SIZE, p.scale, p.angle] for p in poses])) == kind
    for p in poses:
        reach = 1.15 * 14 * p.scale
        assert reach <= p.x <= SIZE - reach and reach <= p.y <= SIZE - reach
        assert 0.6 - 1e-6 <= p.scale <= 1.3 + 1e-6
    clip = layout_clip(track, kind, "star", "yellow", "black", 8)
    assert clip.shape == (8, 64, 64, 3) and nearest_names(clip) == ("black", "yellow")
    assert read_motion(clip).kind == kind  # the layout reads back as the reference's motion
