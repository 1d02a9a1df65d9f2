"""One labelled video of clips side by side, to take a comparison off the page.

Each panel is a clip with a title band above it (what made it, its steps and measured time);
a caption under them all gives the prompt and seed. Frames are enlarged with nearest-neighbour
before composing, so a 64 px clip stays crisp at `MIN_SIDE` px. Written as an H.264 yuv420p mp4
(the same kind of file `video_io.write_mp4` makes) and as a looping GIF for chats and issues.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from .video_io import to_uint8

MIN_SIDE = 256  # a panel's clip is enlarged to at least this many pixels high
FONT_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "assets",
    "fonts",
    "DejaVuSans.ttf",
)
BAND = (17, 17, 17)  # the title and caption bands: dark, so any clip background reads apart
GAP = 4  # pixels of band colour around each panel (twice that between two)
TITLE_HEIGHT = 56
CAPTION_HEIGHT = 48


@dataclasses.dataclass(frozen=True)
class Panel:
    frames: np.ndarray  # (F, H, W, 3): floats in [0, 1] or uint8
    title: str  # what made it, e.g. "MCM-webvid"
    detail: str = ""  # e.g. "4 steps · 0.31 s measured"


def font_file() -> str | None:
    """The shipped DejaVu Sans; None (Pillow's built-in font) where the assets are not there,
    as in an installed wheel."""
    return FONT_FILE if os.path.isfile(FONT_FILE) else None


def enlarge(frames: np.ndarray, min_side: int = MIN_SIDE) -> np.ndarray:
    """uint8 frames enlarged by the smallest whole factor that makes them `min_side` high."""
    frames = to_uint8(frames)
    scale = max(1, math.ceil(min_side / frames.shape[1]))
    return frames.repeat(scale, axis=1).repeat(scale, axis=2)


def _hold_last(frames: np.ndarray, count: int) -> np.ndarray:
    """A shorter clip keeps showing its last frame while the longest one plays on."""
    extra = count - len(frames)
    return np.concatenate([frames, np.repeat(frames[-1:], extra, axis=0)]) if extra else frames


def compose(panels: list[Panel], caption: str, fps: float = 8.0, min_side: int = MIN_SIDE):
    """The panels side by side with their title bands, the caption underneath: a moviepy clip
    of exactly as many frames (at `fps`) as the longest panel."""
    # moviepy takes ~1.3 s to import: only the export pays it, not the page's start-up
    from moviepy import (
        ColorClip,
        CompositeVideoClip,
        ImageSequenceClip,
        TextClip,
        clips_array,
        vfx,
    )

    if not panels:
        raise ValueError("nothing to compose: no panels")
    clips = [enlarge(p.frames, min_side) for p in panels]
    count = max(len(c) for c in clips)
    height = max(c.shape[1] for c in clips)
    duration = count / fps
    font = font_file()
    videos, titles = [], []
    for panel, frames in zip(panels, clips):
        width = frames.shape[2]
        video = ImageSequenceClip(list(_hold_last(frames, count)), fps=fps).with_duration(duration)
        # a smaller clip sits at the top of its cell
        margin = vfx.Margin(left=GAP, right=GAP, bottom=height - frames.shape[1], color=BAND)
        videos.append(video.with_effects([margin]))
        text = panel.title + (f"\n{panel.detail}" if panel.detail else "")
        titles.append(_text(TextClip, text, font, width + 2 * GAP, TITLE_HEIGHT, 17, duration))
    grid = clips_array([titles, videos], bg_color=BAND).with_effects(
        [vfx.Margin(margin_size=GAP, color=BAND)]
    )
    width, grid_height = grid.size
    note = _text(TextClip, caption, font, width - 2 * GAP, CAPTION_HEIGHT, 15, duration)
    # even sides: yuv420p halves the chroma planes
    size = (width + width % 2, grid_height + CAPTION_HEIGHT + GAP)
    size = (size[0], size[1] + size[1] % 2)
    background = ColorClip(size, color=BAND, duration=duration)
    return CompositeVideoClip(
        [background, grid.with_position((0, 0)), note.with_position((GAP, grid_height))],
        size=size,
    ).with_duration(duration)


def _text(TextClip, text, font, width, height, font_size, duration):
    return TextClip(
        font=font,
        text=text,
        font_size=font_size,
        color="white",
        bg_color=BAND,
        size=(width, height),
        method="caption",
        text_align="center",
        duration=duration,
    )


@dataclasses.dataclass(frozen=True)
class Export:
    mp4: str
    gif: str | None
    width: int
    height: int
    frames: int


def export_side_by_side(
    panels: list[Panel],
    caption: str,
    mp4_path: str,
    gif_path: str | None = None,
    fps: float = 8.0,
    min_side: int = MIN_SIDE,
) -> Export:
    """Write the composed panels as an H.264 yuv420p mp4 (index at the front, no audio) and,
    with `gif_path`, a looping GIF of the same frames."""
    clip = compose(panels, caption, fps, min_side)
    os.makedirs(os.path.dirname(os.path.abspath(mp4_path)), exist_ok=True)
    clip.write_videofile(
        mp4_path,
        fps=fps,
        codec="libx264",
        audio=False,
        preset="medium",
        pixel_format="yuv420p",
        ffmpeg_params=["-crf", "18", "-movflags", "+faststart"],
        logger=None,
    )
    if gif_path:
        os.makedirs(os.path.dirname(os.path.abspath(gif_path)), exist_ok=True)
        clip.write_gif(gif_path, fps=fps, loop=0, logger=None)
    frames = max(len(p.frames) for p in panels)
    clip.close()
    return Export(mp4_path, gif_path, clip.size[0], clip.size[1], frames)
