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


# -- uploads within a budget (issue 29) ---------------------------------------------------
import hypothesis  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from upload_cases import (  # noqa: E402
    live_matroska,
    malformed_uploads,
    non_utf8_title_mp4,
    raw_h264,
)

from mcm_demo.video_io import _Sampler  # noqa: E402


def test_an_mp4_with_a_non_utf8_metadata_byte_decodes(tmp_path):
    clip = load_reference(non_utf8_title_mp4(tmp_path / "tagged.mp4"))
    assert clip.shape == (8, 64, 64, 3)


def test_only_video_containers_are_read_whatever_the_name(tmp_path):
    (tmp_path / "beside.txt").write_text("secret\n")
    (tmp_path / "list.mp4").write_text("ffconcat version 1.0\nfile beside.txt\n")
    (tmp_path / "noise.gif").write_bytes(np.random.default_rng(1).bytes(3000))
    for name in ("list.mp4", "noise.gif"):
        with pytest.raises(UploadError, match="could not be decoded"):
            load_reference(str(tmp_path / name))


def test_every_frame_is_checked_not_just_the_header(tmp_path):
    grows = raw_h264(_moving_square(4, 48, 64)) + raw_h264(_moving_square(4, 96, 96))
    path = live_matroska(grows, tmp_path / "grows.webm")
    assert load_reference(path).shape == (8, 64, 64, 3)  # within the default limits
    with pytest.raises(UploadError, match="96×96; the largest side allowed is 80"):
        load_reference(path, limits=UploadLimits(max_side=80))


def test_a_clip_without_a_duration_is_timed_by_its_frames(tmp_path):
    path = live_matroska(raw_h264(_moving_square(12, 48, 64)), tmp_path / "live.webm")
    with av.open(path) as container:  # the headers state no duration at all
        assert container.duration is None and container.streams.video[0].duration is None
    with pytest.raises(UploadError, match="over 0 s long"):
        load_reference(path, limits=UploadLimits(max_seconds=0.5))


@pytest.mark.parametrize(
    "limits, message",
    [
        (UploadLimits(max_frame_pixels=64 * 64), "megapixels"),
        (UploadLimits(max_total_pixels=96 * 128 * 5), "too many pixels"),
        (UploadLimits(max_decode_seconds=0), "took over 0 s"),
    ],
)
def test_decoding_budgets(tmp_path, limits, message):
    path = _write(_moving_square(), tmp_path / "a.mp4", "mp4", "libx264", "yuv420p")
    with pytest.raises(UploadError, match=message):
        load_reference(path, limits=limits)


class _FakeFrame:
    def __init__(self, i):
        self.i = i

    def to_ndarray(self, format):
        return np.full((6, 10, 3), (self.i // 256, self.i % 256, 0), np.uint8)


@pytest.mark.parametrize("count", [2, 8, 64, 65, 1400])
def test_the_sampler_holds_a_bounded_number_of_frames_spread_evenly(count):
    sampler = _Sampler(num_frames=8, size=4, held=64)
    most_held = 0
    for i in range(count):
        sampler.add(_FakeFrame(i))
        most_held = max(most_held, len(sampler.kept))
    picks = sampler.picks()[:, 0, 0].astype(int) @ np.array([256, 1, 0])
    exact = np.linspace(0, count - 1, 8).round().astype(int)
    assert most_held <= 65 and picks.shape == (8,)
    tolerance = 0 if count <= 64 else sampler.stride
    assert np.all(np.abs(picks - exact) <= tolerance)


def test_seeded_malformed_uploads_give_a_clip_or_a_clear_message(tmp_path):
    """The short version of `scripts/reliability.py fuzz` (which runs >= 1,000)."""
    answers = {}
    for kind, path in malformed_uploads(tmp_path, 120, seed=0):
        try:
            clip = load_reference(path)
        except UploadError as err:
            answers[kind] = str(err)
        else:
            assert clip.shape == (8, 64, 64, 3), kind
    assert {"ffconcat", "audio-only", "directory", "renamed-png", "random"} <= set(answers)


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=30),
    cut=st.integers(1, 10**6),
    ext=st.sampled_from([".mp4", ".webm", ".mov", ".gif"]),
)
def test_mutated_clips_give_a_clip_or_a_clear_message(tmp_path_factory, edits, cut, ext):
    folder = tmp_path_factory.mktemp("mutated")
    data = bytearray(_mutation_base(tmp_path_factory))
    for offset, value in edits:
        data[offset % len(data)] = value
    path = folder / f"clip{ext}"
    path.write_bytes(bytes(data[: max(1, cut % (len(data) + 1))]))
    try:
        assert load_reference(str(path)).shape == (8, 64, 64, 3)
    except UploadError:
        pass


_BASE = {}


def _mutation_base(tmp_path_factory) -> bytes:
    if "mp4" not in _BASE:
        folder = tmp_path_factory.mktemp("base")
        path = _write(_moving_square(8, 48, 64), folder / "a.mp4", "mp4", "libx264", "yuv420p")
        _BASE["mp4"] = open(path, "rb").read()
    return _BASE["mp4"]
