"""Video files in and out: H.264 / yuv420p mp4 that browsers play, and decoding for tests
and uploads. diffusers' `export_to_video` is avoided on purpose: it rescales uint8 input
and falls back to OpenCV's mp4v, which browsers do not play (DESIGN §6).
"""
from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (or uint8 as they are) → uint8 (F, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def write_mp4(frames: np.ndarray, path: str, fps: float = 8.0, upscale: int = 1, crf: int = 18) -> str:
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
        return {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt,
                "width": s.codec_context.width, "height": s.codec_context.height,
                "frames": frames, "fps": float(s.average_rate or 0)}


def read_video(path: str) -> np.ndarray:
    """All frames of a file as uint8 (F, H, W, 3)."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
