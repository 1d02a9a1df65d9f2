"""Decoding one sample as the teacher needs it: N frames at a stride (or a target fps) from a
random start, each centre-cropped and resized to the teacher's side. Frames are decoded one by
one and only the picked ones are kept, so a long clip never sits in memory whole; the upload
checks of `video_io` (demuxer whitelist, frame area, decode time) apply to training data too."""

from __future__ import annotations

import dataclasses
import time

import av
import cv2
import numpy as np

from ..video_io import UPLOAD_DEMUXERS, UploadError, UploadLimits, centre_crop_resize

# Training clips are read unattended: a frame area bound, a decode clock, and no size cap in
# bytes (a 10 s 1080p stock clip is tens of MB and fine).
TRAINING_LIMITS = UploadLimits(max_bytes=2**40, max_seconds=3600.0, max_frames=10**6)


class SampleSkipped(Exception):
    """A sample a run skips and counts; `reason` is one of SKIP_REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


SKIP_REASONS = ("unreadable", "too short", "no caption", "missing file")


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How a clip is sampled: `num_frames` frames `frame_stride` apart, or at `fps` frames a
    second of the source when given (the stride then follows each file's own rate)."""

    num_frames: int = 8
    size: int = 64
    frame_stride: int = 1
    fps: float | None = None

    def stride_for(self, source_fps: float | None) -> int:
        if self.fps and source_fps:
            return max(1, round(source_fps / self.fps))
        return max(1, self.frame_stride)


def decode_clip(
    source, spec: ClipSpec, start_fraction: float = 0.0, limits: UploadLimits = TRAINING_LIMITS
) -> np.ndarray:
    """uint8 (num_frames, size, size, 3) from a path or a binary file object. `start_fraction`
    in [0, 1) picks the window's start among the clip's possible starts (0: the first frame)."""
    try:
        return _decode(source, spec, start_fraction, limits)
    except (av.FFmpegError, UploadError, ValueError, OSError, EOFError) as err:
        raise SampleSkipped("unreadable", f"{type(err).__name__}: {err}"[:200]) from None


def _decode(source, spec: ClipSpec, start_fraction: float, limits: UploadLimits) -> np.ndarray:
    started = time.monotonic()
    options = {"format_whitelist": UPLOAD_DEMUXERS}
    if isinstance(source, str):
        options["protocol_whitelist"] = "file"
    with av.open(source, options=options, metadata_errors="replace") as container:
        if not container.streams.video:
            raise SampleSkipped("unreadable", "no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise SampleSkipped("unreadable", "no decoder for its codec")
        stream.codec_context.options = {"max_pixels": str(limits.max_frame_pixels)}
        stream.thread_count = 1
        stride = spec.stride_for(float(stream.average_rate or 0) or None)
        span = (spec.num_frames - 1) * stride + 1
        total = stream.frames or 0  # 0: the container does not say
        if total and total < span:
            raise SampleSkipped("too short", f"{total} frames, {span} needed")
        start = int(start_fraction * (total - span + 1)) if total else 0
        picked: list[np.ndarray] = []
        index = 0
        for frame in container.decode(stream):
            if time.monotonic() - started > limits.max_decode_seconds:
                raise SampleSkipped("unreadable", "decoding took too long")
            if frame.width * frame.height > limits.max_frame_pixels:
                raise SampleSkipped("unreadable", f"frames of {frame.width}×{frame.height}")
            if index >= start and (index - start) % stride == 0:
                picked.append(centre_crop_resize(frame.to_ndarray(format="rgb24"), spec.size))
                if len(picked) == spec.num_frames:
                    return np.stack(picked)
            index += 1
    raise SampleSkipped("too short", f"{index} frames, {span} needed from frame {start}")


def decode_image(data: bytes, size: int) -> np.ndarray:
    """uint8 (size, size, 3) RGB from an encoded image (JPEG, PNG, WebP)."""
    if len(data) > 64 * 2**20:
        raise SampleSkipped("unreadable", f"an image file of {len(data) / 2**20:.0f} MB")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SampleSkipped("unreadable", "not a decodable image")
    if image.shape[0] * image.shape[1] > TRAINING_LIMITS.max_frame_pixels * 4:
        raise SampleSkipped("unreadable", f"an image of {image.shape[1]}×{image.shape[0]}")
    return centre_crop_resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size)
