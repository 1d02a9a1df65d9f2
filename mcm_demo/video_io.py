"""Video files in and out: H.264 / yuv420p mp4 that browsers play, and decoding for tests
and uploads. diffusers' `export_to_video` is avoided on purpose: it rescales uint8 input
and falls back to OpenCV's mp4v, which browsers do not play (DESIGN §6).
"""

from __future__ import annotations

import dataclasses
import os
import time
from fractions import Fraction

import av
import cv2
import numpy as np


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (or uint8 as they are) → uint8 (F, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def to_unit_float(frames: np.ndarray) -> np.ndarray:
    """uint8 frames → float32 in [0, 1] (the inverse of `to_uint8`, up to rounding)."""
    return np.ascontiguousarray(frames).astype(np.float32) / 255


DISPLAY_SIDE = 256  # small clips are enlarged to about this many pixels for the browser


def display_upscale(frames: np.ndarray) -> int:
    """The whole-number enlargement that brings a clip's height to about DISPLAY_SIDE."""
    return max(1, DISPLAY_SIDE // frames.shape[1])


def write_mp4(
    frames: np.ndarray,
    path: str,
    fps: float = 8.0,
    upscale: int = 1,
    crf: int = 18,
    preset: str = "medium",
) -> str:
    """Encode (F, H, W, 3) frames as H.264 (High profile at the default `preset`), yuv420p,
    with the index at the front.

    `upscale` enlarges small clips with nearest-neighbour so a 64 px clip is not a blur
    in the browser. Returns `path`.
    """
    frames = to_uint8(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"expected frames of shape (F, H, W, 3), got {frames.shape}")
    if upscale > 1:
        frames = frames.repeat(upscale, axis=1).repeat(upscale, axis=2)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sides
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def probe(path: str) -> dict:
    """Codec, pixel format, size, frame count and rate of a video file's first stream."""
    with av.open(path) as container:
        s = container.streams.video[0]
        frames = sum(1 for _ in container.decode(s))
        return {
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "frames": frames,
            "fps": float(s.average_rate or 0),
        }


def read_video(path: str) -> np.ndarray:
    """All frames of a file as uint8 (F, H, W, 3)."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


# -- uploads ----------------------------------------------------------------------------
UPLOAD_FORMATS = (".mp4", ".webm", ".mov", ".gif")
# The demuxers FFmpeg may pick for an upload, whatever its name says: mp4/mov, matroska/webm and
# gif. Without this list FFmpeg guesses from the content among all its demuxers (an ffconcat
# list named .mp4 read the file beside it; random bytes named .gif decoded as CD+G).
UPLOAD_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,gif"


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 30.0
    max_frames: int = 1500
    max_side: int = 4096
    # a 4K frame either way round: a decoder may hold 16 reference pictures, so the area, not
    # the side, bounds its memory (a 16-reference 4096×4096 clip peaked 361 MiB above idle)
    max_frame_pixels: int = 4096 * 2160
    # the decoding work, whatever the headers say: all frames' pixels together (about 1,000
    # frames of 1080p), and wall time
    max_total_pixels: int = 2 * 1024**3
    max_decode_seconds: float = 60.0
    # decoded frames held while reading, from which the sampled ones are picked (see _Sampler)
    held_frames: int = 64


class UploadError(ValueError):
    """An uploaded clip that cannot be used, with a message to show as it is."""


def load_reference(
    path: str, num_frames: int = 8, size: int = 64, limits: UploadLimits = UploadLimits()
) -> np.ndarray:
    """An uploaded clip → uint8 (num_frames, size, size, 3): frames sampled evenly over the
    whole clip, each centre-cropped to a square and resized to `size`. Decoding holds at most
    `limits.held_frames` small frames and one full one, whatever the clip. Anything unusable
    raises UploadError with what is wrong and what is accepted."""
    if not path or not os.path.isfile(path):
        raise UploadError("No clip was uploaded.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in UPLOAD_FORMATS:
        raise UploadError(
            f"'{ext or os.path.basename(path)}' is not supported; upload "
            f"{', '.join(UPLOAD_FORMATS)}."
        )
    nbytes = os.path.getsize(path)
    if nbytes == 0:
        raise UploadError("The uploaded file is empty.")
    if nbytes > limits.max_bytes:
        raise UploadError(
            f"The clip is {nbytes / 2**20:.0f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB."
        )
    sampler = _Sampler(num_frames, size, limits.held_frames)
    try:
        _decode_within_limits(path, limits, sampler)
    except av.FFmpegError as err:  # FFmpeg's errors for truncated, corrupt or mislabelled files
        raise UploadError(
            f"The file could not be decoded as a video ({type(err).__name__}); it may be "
            f"corrupt, not a video, or have frames over {limits.max_frame_pixels / 1e6:.1f} "
            "megapixels."
        ) from None
    if sampler.count < 2:
        raise UploadError(f"The clip has {sampler.count} frame(s); motion needs at least 2.")
    return sampler.picks()


def _decode_within_limits(path: str, limits: UploadLimits, sampler: _Sampler) -> None:
    """Decode every frame once, checking each against the limits, and hand it to `sampler`."""
    started = time.monotonic()
    options = {"format_whitelist": UPLOAD_DEMUXERS, "protocol_whitelist": "file"}
    # metadata_errors="replace": one non-UTF-8 byte in a tag must not reject a good clip
    with av.open(path, options=options, metadata_errors="replace") as container:
        if not container.streams.video:
            raise UploadError("The file has no video stream.")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg has no decoder for this codec
            raise UploadError("The clip's video codec is not supported; upload H.264, VP9 or gif.")
        _check_side(stream.codec_context.width, stream.codec_context.height, limits)
        seconds = _metadata_seconds(stream, container)
        if seconds is not None and seconds > limits.max_seconds:
            raise _too_long(limits, f"{seconds:.0f} s")
        # The decoder itself refuses pictures over the largest allowed area (a stream may
        # switch size mid-way; headers are only a first check). One thread: a threaded
        # decoder holds a picture per thread.
        stream.codec_context.options = {"max_pixels": str(limits.max_frame_pixels)}
        stream.thread_count = 1
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        first_time, total_pixels = None, 0
        for packet in container.demux(stream):
            _check_clock(started, limits)
            for frame in packet.decode():
                _check_clock(started, limits)
                _check_side(frame.width, frame.height, limits)
                total_pixels += frame.width * frame.height
                if total_pixels > limits.max_total_pixels:
                    raise UploadError(
                        f"The clip has too many pixels to read ({sampler.count + 1} frames of "
                        f"{frame.width}×{frame.height}); upload a shorter or smaller clip."
                    )
                # a clip's length from its frames' timestamps: a stream may carry no duration
                t = frame.time if frame.time is not None else sampler.count / rate
                first_time = t if first_time is None else first_time
                if t - first_time > limits.max_seconds:
                    raise _too_long(limits, f"over {limits.max_seconds:.0f} s")
                if sampler.count >= limits.max_frames:
                    raise UploadError(
                        f"The clip has more than {limits.max_frames} frames; trim it."
                    )
                sampler.add(frame)


def _metadata_seconds(stream, container) -> float | None:
    """The duration the headers state, or None where they state none (unknown is not 0 s)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1e6
    return None


def _too_long(limits: UploadLimits, length: str) -> UploadError:
    return UploadError(f"The clip is {length} long; the limit is {limits.max_seconds:.0f} s.")


def _check_side(w: int, h: int, limits: UploadLimits) -> None:
    if max(w, h) > limits.max_side:
        raise UploadError(f"The clip is {w}×{h}; the largest side allowed is {limits.max_side} px.")
    if w * h > limits.max_frame_pixels:
        raise UploadError(
            f"The clip is {w}×{h}; frames of up to {limits.max_frame_pixels / 1e6:.1f} megapixels "
            "(4096×2160, either way round) are accepted."
        )


def _check_clock(started: float, limits: UploadLimits) -> None:
    if time.monotonic() - started > limits.max_decode_seconds:
        raise UploadError(
            f"Reading the clip took over {limits.max_decode_seconds:.0f} s; upload a shorter or "
            "smaller clip."
        )


class _Sampler:
    """Evenly spaced frames of a clip of unknown length, chosen while it decodes.

    It keeps every `stride`-th frame, centre-cropped and resized at once; when more than `held`
    are kept it drops every other one and doubles the stride. At the end each of the
    `num_frames` evenly spaced indices takes the nearest kept frame: exact for clips of up to
    `held` frames, within one stride beyond (a 1,400-frame clip: within 32 frames, about 1 s).
    """

    def __init__(self, num_frames: int, size: int, held: int):
        self.num_frames, self.size, self.held = num_frames, size, max(held, 2 * num_frames)
        self.count, self.stride = 0, 1
        self.kept: dict[int, np.ndarray] = {}

    def add(self, frame: av.VideoFrame) -> None:
        if self.count % self.stride == 0:  # only kept frames are converted to RGB
            self.kept[self.count] = centre_crop_resize(frame.to_ndarray(format="rgb24"), self.size)
            if len(self.kept) > self.held:
                self.stride *= 2
                self.kept = {i: f for i, f in self.kept.items() if i % self.stride == 0}
        self.count += 1

    def picks(self) -> np.ndarray:
        kept = np.array(sorted(self.kept))
        targets = np.linspace(0, self.count - 1, self.num_frames)
        nearest = kept[np.abs(kept[None, :] - targets[:, None]).argmin(axis=1)]
        return np.stack([self.kept[i] for i in nearest])


def centre_crop_resize(frame: np.ndarray, size: int) -> np.ndarray:
    """Crop first, then resize: a 4096×2 frame becomes a 2×2 square, never a 131,072×64 one."""
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = frame[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)
