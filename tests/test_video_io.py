import numpy as np
import pytest

from mcm_demo.toyworld import parse_caption, render_clip
from mcm_demo.video_io import probe, read_video, write_mp4


def test_mp4_is_h264_yuv420p_and_decodes_back(tmp_path):
    clip = render_clip(parse_caption("a green star orbiting on a gray background"), "laion", 0)
    path = write_mp4(clip.astype(np.float32) / 255, str(tmp_path / "a.mp4"), fps=8, upscale=2)
    info = probe(path)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"], info["frames"]) == (128, 128, 8)
    back = read_video(path)[:, ::2, ::2].astype(int)
    assert np.abs(back - clip).mean() < 6  # lossy, but the same clip


def test_uint8_frames_are_not_rescaled(tmp_path):
    clip = np.full((4, 16, 16, 3), 200, np.uint8)
    back = read_video(write_mp4(clip, str(tmp_path / "b.mp4")))
    assert abs(back.mean() - 200) < 3


def test_odd_sizes_are_padded_and_bad_shapes_refused(tmp_path):
    assert probe(write_mp4(np.zeros((3, 15, 17, 3)), str(tmp_path / "c.mp4")))["width"] == 18
    with pytest.raises(ValueError):
        write_mp4(np.zeros((3, 16, 16)), str(tmp_path / "d.mp4"))
