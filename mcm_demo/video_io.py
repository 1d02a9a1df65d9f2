"""Video files in and out: H.264 / yuv420p mp4 that browsers play, and decoding for tests
and uploads. diffusers' `export_to_video` is avoided on purpose: it rescales uint8 input
and falls back to OpenCV's mp4v, which browsers do not play (DESIGN §6).
"""

from __future__ import annotations

import dataclasses
import os
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
    frames: np.ndarray, path: str, fps: float = 8.0, upscale: int = 1, crf: int = 18
) -> str:
    """Encode (F, H, W, 3) frames as H.264 High, yuv420p, with the index at the front.

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
        stream.options = {"crf": str(crf), "preset": "medium"}
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


@dataclasses.dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 30.0
    max_frames: int = 1500
    max_side: int = 4096


class UploadError(ValueError):
    """An uploaded clip that cannot be used, with a message to show as it is."""


def load_reference(
    path: str, num_frames: int = 8, size: int = 64, limits: UploadLimits = UploadLimits()
) -> np.ndarray:
    """An uploaded clip → uint8 (num_frames, size, size, 3): frames sampled evenly over the
    whole clip, the shorter side resized to `size`, centre-cropped. Anything unusable raises
    UploadError with what is wrong and what is accepted."""
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
    try:
        frames = _decode_within_limits(path, limits)
    except UploadError:
        raise
    except Exception as err:  # FFmpeg's errors for truncated, corrupt or mislabelled files
        raise UploadError(
            f"The file could not be decoded as a video ({type(err).__name__}); "
            "it may be corrupt or not a video."
        ) from None
    if len(frames) < 2:
        raise UploadError(f"The clip has {len(frames)} frame(s); motion needs at least 2.")
    picks = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    return np.stack([_resize_centre_crop(frames[i], size) for i in picks])


def _decode_within_limits(path: str, limits: UploadLimits) -> list[np.ndarray]:
    with av.open(path) as container:
        if not container.streams.video:
            raise UploadError("The file has no video stream.")
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if max(w, h) > limits.max_side:
            raise UploadError(
                f"The clip is {w}×{h}; the largest side allowed is {limits.max_side} px."
            )
        seconds = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.time_base
            else (container.duration or 0) / 1e6
        )
        if seconds > limits.max_seconds:
            raise UploadError(
                f"The clip is {seconds:.0f} s long; the limit is {limits.max_seconds:.0f} s."
            )
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) > limits.max_frames:
                raise UploadError(f"The clip has more than {limits.max_frames} frames; trim it.")
        return frames


def _resize_centre_crop(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = size / min(h, w)
    resized = cv2.resize(
        frame,
        (max(size, round(w * scale)), max(size, round(h * scale))),
        interpolation=cv2.INTER_AREA,
    )
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top : top + size, left : left + size]
