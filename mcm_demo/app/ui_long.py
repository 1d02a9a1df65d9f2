"""The page's *Long video* section: prompt travel, and what happens past the teacher's window.

UI only: the lines go into the request as they are (`requests.check_request` reads them), and
the pipeline samples clips longer than the teacher's trained length in windows (FreeNoise).
"""

from __future__ import annotations

from ..pipeline import LIMITS

PAGE_MAX_FRAMES = min(LIMITS.frames[1], 64)  # 8 s at 8 fps, for every teacher

LONG_VIDEO_NOTE = (
    "Clips longer than the teacher was trained on (8 frames embedded, 16 ModelScope and "
    "AnimateDiff) are made in overlapping windows of that length, fused at every step "
    "(FreeNoise), so the cost per frame stays near a short clip's. Prompt travel: one line per "
    "prompt, `FRAME: prompt`, starting at frame 0; the prompt above is then not used. "
    "Details and measurements: docs/long-video.md."
)

TRAVEL_EXAMPLE = (
    "0: a red circle moving right on a black background\n"
    "32: a blue star moving up on a black background"
)


def long_video_section(gr):
    """The *Long video* accordion; returns its prompt-travel box (an input of /compare)."""
    with gr.Accordion("Long video", open=False):
        gr.Markdown(LONG_VIDEO_NOTE)
        return gr.Textbox(
            label="Prompt travel (optional): FRAME: prompt, one per line",
            placeholder=TRAVEL_EXAMPLE,
            lines=3,
            max_lines=12,
            value="",  # an API caller may leave it out
            elem_id="travel",
        )
