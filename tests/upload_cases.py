"""Upload files for the decoding tests and the reliability command's fuzz run: a few valid clips
of every accepted container, and malformed files made from them by a seeded generator.

Not a test module: `tests/test_video_io.py` and `scripts/reliability.py` import it.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction

import av
import numpy as np

from mcm_demo.video_io import UPLOAD_FORMATS


def moving_square(num_frames=20, h=96, w=128) -> np.ndarray:
    frames = np.zeros((num_frames, h, w, 3), np.uint8)
    for i in range(num_frames):
        frames[i, h // 3 : h // 3 + 16, 10 + 4 * i : 26 + 4 * i] = (250, 60, 60)
    return frames


def write_clip(frames, path, container_format, codec="libx264", pix_fmt="yuv420p", fps=10, **kw):
    """Frames → a file in `container_format`; gif as browsers and phones make them (PIL)."""
    path = str(path)
    if container_format == "gif":  # PyAV's GIF muxer wants a palette
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
        return path
    with av.open(path, "w", format=container_format, options=kw.get("options", {})) as out:
        if kw.get("title"):
            out.metadata["title"] = kw["title"]
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            video_frame = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt)
            for packet in stream.encode(video_frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def raw_h264(frames, fps=10) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def live_matroska(h264: bytes, path, fps=10) -> str:
    """Raw H.264 remuxed into a matroska stream without a duration (as live recorders write
    it); the stream keeps whatever size changes the raw one has."""
    source = av.open(io.BytesIO(h264), format="h264")
    with av.open(str(path), "w", format="matroska", options={"live": "1"}) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        packets = (p for p in source.demux(source.streams.video[0]) if p.size)
        for i, packet in enumerate(packets):
            packet.stream, packet.time_base = stream, Fraction(1, 1000)
            packet.pts = packet.dts = i * 1000 // fps
            out.mux(packet)
    source.close()
    return str(path)


def non_utf8_title_mp4(path) -> str:
    """A valid mp4 whose title tag holds one byte that is not UTF-8."""
    write_clip(moving_square(), path, "mp4", title="MCMTAGXX")
    data = open(path, "rb").read()
    assert data.count(b"MCMTAGXX") == 1
    open(path, "wb").write(data.replace(b"MCMTAGXX", b"MCMTAG\xffX"))
    return str(path)


def audio_only_mp4(path) -> str:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def valid_clips(folder) -> dict[str, str]:
    """One small valid clip per accepted container (and the odd ones users send)."""
    folder = str(folder)
    square = moving_square(12, 48, 64)
    clips = {
        "mp4": write_clip(square, os.path.join(folder, "ok.mp4"), "mp4"),
        "mov": write_clip(square, os.path.join(folder, "ok.mov"), "mov"),
        "webm": write_clip(square, os.path.join(folder, "ok.webm"), "webm", "libvpx-vp9"),
        "gif": write_clip(square, os.path.join(folder, "ok.gif"), "gif"),
        "live": live_matroska(raw_h264(square), os.path.join(folder, "live.webm")),
        "non-utf8": non_utf8_title_mp4(os.path.join(folder, "tagged.mp4")),
    }
    return clips


def malformed_uploads(folder, count: int, seed: int = 0):
    """Yield (kind, path) for `count` malformed or odd files, made by a seeded generator: random
    bytes under every accepted extension, truncated, byte-mutated and spliced clips, renamed
    images, empty and text files, directories, ffconcat lists, audio-only, zero- and one-frame
    clips, and the valid clips themselves."""
    folder = str(folder)
    rng = np.random.default_rng(seed)
    seeds = valid_clips(folder)
    specials = _special_files(folder)
    originals = [open(p, "rb").read() for p in seeds.values()]
    kinds = ["random", "truncated", "mutated", "spliced", "special", "valid"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        ext = UPLOAD_FORMATS[rng.integers(len(UPLOAD_FORMATS))]
        path = os.path.join(folder, f"fuzz-{i:05d}{ext}")
        data = originals[rng.integers(len(originals))]
        if kind == "random":
            data = rng.bytes(int(rng.integers(1, 20_000)))
        elif kind == "truncated":
            data = data[: int(rng.integers(1, len(data)))]
        elif kind == "mutated":
            data = bytearray(data)
            for _ in range(int(rng.integers(1, 40))):
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
            data = bytes(data)
        elif kind == "spliced":
            other = originals[rng.integers(len(originals))]
            cut = int(rng.integers(1, len(data)))
            data = data[:cut] + other[int(rng.integers(len(other))) :]
        elif kind == "special":
            yield specials[i // len(kinds) % len(specials)]
            continue
        else:
            name = list(seeds)[i // len(kinds) % len(seeds)]
            yield f"valid-{name}", seeds[name]
            continue
        with open(path, "wb") as f:
            f.write(data)
        yield kind, path


def _special_files(folder) -> list[tuple[str, str]]:
    from PIL import Image

    def at(name):
        return os.path.join(folder, name)

    square = moving_square(1, 48, 64)
    Image.fromarray(square[0]).save(at("image.png"))
    os.rename(at("image.png"), at("image-png.mp4"))
    Image.fromarray(square[0]).save(at("image.jpg"))
    os.rename(at("image.jpg"), at("image-jpg.gif"))
    open(at("empty.mp4"), "wb").close()
    open(at("text.webm"), "w").write("not a video\n" * 50)
    os.makedirs(at("folder.mp4"), exist_ok=True)
    open(at("beside.txt"), "w").write("secret\n")
    open(at("concat.mp4"), "w").write("ffconcat version 1.0\nfile beside.txt\n")
    with av.open(at("zero.mp4"), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()  # the header, then no frame at all
    return [
        ("renamed-png", at("image-png.mp4")),
        ("renamed-jpg", at("image-jpg.gif")),
        ("empty", at("empty.mp4")),
        ("text", at("text.webm")),
        ("directory", at("folder.mp4")),
        ("ffconcat", at("concat.mp4")),
        ("audio-only", audio_only_mp4(at("audio.mp4"))),
        ("zero-frames", at("zero.mp4")),
        ("one-frame", write_clip(square, at("one.mp4"), "mp4")),
        (
            "size-switch",
            live_matroska(raw_h264(square) + raw_h264(moving_square(2, 96, 96)), at("switch.webm")),
        ),
    ]
