"""The labelled side-by-side export, built offline from tiny clips."""

import numpy as np
import pytest

from mcm_demo.side_by_side import (
    CAPTION_HEIGHT,
    GAP,
    TITLE_HEIGHT,
    Panel,
    enlarge,
    export_side_by_side,
    font_file,
)
from mcm_demo.video_io import probe, read_video


def test_enlarge_is_nearest_neighbour_to_at_least_the_side():
    frames = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3)
    big = enlarge(frames, min_side=8)  # 3 px → ×3 = 9 px: the smallest whole factor ≥ 8
    assert big.shape == (2, 9, 9, 3)
    assert (big[:, ::3, ::3] == frames).all() and (big[:, 1::3, 2::3] == frames).all()


def test_the_font_ships_with_the_repository():
    assert font_file() is not None and font_file().endswith("DejaVuSans.ttf")


def _clip(colour, frames=8, side=16):
    clip = np.zeros((frames, side, side, 3), np.float32)
    clip[..., :] = colour
    for i in range(frames):  # a moving white square: frames must stay in order
        clip[i, 4:8, i % side : i % side + 2] = 1.0
    return clip


def test_two_tiny_clips_become_one_h264_mp4_and_a_gif(tmp_path):
    panels = [
        Panel(_clip((1.0, 0.0, 0.0)), "LCM", "2 steps · 0.10 s"),
        Panel(_clip((0.0, 0.0, 1.0)), "MCM-webvid", "2 steps · 0.12 s"),
    ]
    out = export_side_by_side(
        panels, '"a square" · seed 0', str(tmp_path / "c.mp4"), str(tmp_path / "c.gif"), fps=8
    )
    info = probe(out.mp4)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8
    side = 256  # 16 px → ×16
    width = 2 * (side + 2 * GAP) + 2 * GAP
    height = TITLE_HEIGHT + side + 2 * GAP + CAPTION_HEIGHT + GAP
    assert (info["width"], info["height"]) == (out.width, out.height) == (width, height)
    gif = probe(out.gif)
    assert gif["frames"] == 8 and (gif["width"], gif["height"]) == (width, height)
    # each panel shows its own clip, enlarged, under its title band
    frame = read_video(out.mp4)[0].astype(int)
    y = GAP + TITLE_HEIGHT + side - 20
    left, right = frame[y, GAP + GAP + 20], frame[y, GAP + side + 3 * GAP + 20]
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60
    assert frame[GAP + 5, width // 2].max() < 40  # the dark band between the titles


def test_a_shorter_panel_holds_its_last_frame(tmp_path):
    panels = [Panel(_clip((1, 1, 0), frames=4), "Reference"), Panel(_clip((0, 1, 0)), "Moved")]
    out = export_side_by_side(panels, "caption", str(tmp_path / "t.mp4"), fps=4)
    assert out.gif is None and probe(out.mp4)["frames"] == 8


def test_no_panels_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no panels"):
        export_side_by_side([], "x", str(tmp_path / "x.mp4"))
