import numpy as np
import pytest

from mcm_demo.embedded.world import parse_caption, render_clip
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


# -- uploads ------------------------------------------------------------------------------
from fractions import Fraction  # noqa: E402

import av  # noqa: E402

from mcm_demo.video_io import UploadError, UploadLimits, load_reference  # noqa: E402


def _write(frames, path, container_format, codec, pix_fmt, fps=10):
    if (
        container_format == "gif"
    ):  # as browsers and phones make them (PyAV's GIF muxer wants a palette)
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(
            str(path), save_all=True, append_images=images[1:], duration=1000 // fps, loop=0
        )
        return str(path)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt)
            ):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def _moving_square(num_frames=20, h=96, w=128):
    frames = np.zeros((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        frames[i, 40:56, 10 + 4 * i : 26 + 4 * i] = (250, 60, 60)
    return frames


@pytest.mark.parametrize(
    "name, fmt, codec, pix_fmt",
    [
        ("a.mp4", "mp4", "libx264", "yuv420p"),
        ("a.webm", "webm", "libvpx-vp9", "yuv420p"),
        ("a.mov", "mov", "libx264", "yuv420p"),
        ("a.gif", "gif", "gif", "pal8"),
    ],
)
def test_each_container_decodes_to_sampled_cropped_frames(tmp_path, name, fmt, codec, pix_fmt):
    path = _write(_moving_square(), tmp_path / name, fmt, codec, pix_fmt)
    clip = load_reference(path, num_frames=8, size=64)
    assert clip.shape == (8, 64, 64, 3) and clip.dtype == np.uint8
    red = clip[..., 0].astype(int) - clip[..., 2]
    xs = [np.nonzero(red[i].max(0) > 100)[0].mean() for i in (0, 7)]
    assert xs[1] - xs[0] > 20  # the square moves right across the sampled frames


@pytest.mark.parametrize(
    "make, limits, message",
    [
        (lambda p: p.write_bytes(b""), UploadLimits(), "empty"),
        (
            lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)),
            UploadLimits(),
            "could not be decoded",
        ),
        (
            lambda p: p.write_bytes(
                open(
                    _write(_moving_square(), p.parent / "ok.mp4", "mp4", "libx264", "yuv420p"), "rb"
                ).read()[:1500]
            ),
            UploadLimits(),
            "could not be decoded|no video stream",
        ),
        (
            lambda p: _write(_moving_square(), p, "mp4", "libx264", "yuv420p"),
            UploadLimits(max_seconds=1),
            "s long",
        ),
        (
            lambda p: _write(_moving_square(), p, "mp4", "libx264", "yuv420p"),
            UploadLimits(max_frames=10),
            "more than 10",
        ),
        (
            lambda p: _write(_moving_square(), p, "mp4", "libx264", "yuv420p"),
            UploadLimits(max_side=100),
            "largest side",
        ),
        (
            lambda p: _write(_moving_square(), p, "mp4", "libx264", "yuv420p"),
            UploadLimits(max_bytes=100),
            "limit is",
        ),
        (
            lambda p: _write(_moving_square(1), p, "mp4", "libx264", "yuv420p"),
            UploadLimits(),
            "at least 2",
        ),
    ],
)
def test_unusable_uploads_get_a_clear_message(tmp_path, make, limits, message):
    path = tmp_path / "clip.mp4"
    make(path)
    with pytest.raises(UploadError, match=message):
        load_reference(str(path), limits=limits)


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "clip.avi").write_bytes(b"RIFF")
    with pytest.raises(UploadError, match="not supported"):
        load_reference(str(tmp_path / "clip.avi"))
    with pytest.raises(UploadError, match="No clip"):
        load_reference(None)
