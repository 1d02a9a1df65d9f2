"""The page's *Long video* section: prompt travel, the window stride, and what happens past the
teacher's window.

UI only: the lines and the stride go into the request as they are (`requests.check_request`
reads them), and the pipeline samples clips longer than the teacher's trained length in windows
(FreeNoise).
"""

from __future__ import annotations

from ..pipeline import LIMITS

PAGE_MAX_FRAMES = min(LIMITS.frames[1], 64)  # 8 s at 8 fps, for every teacher

LONG_VIDEO_NOTE = (
    "Clips longer than the teacher was trained on (8 frames embedded, 16 ModelScope and "
    "AnimateDiff) are made in overlapping windows of that length, fused at every step "
    "(FreeNoise), so the cost per frame stays near a short clip's. Prompt travel: one line per "
    "prompt, `FRAME: prompt`, starting at frame 0; the prompt above is then not used. "
    "Window stride: frames between window starts, 1 to the trained window (0: half of it); "
    "smaller means more overlap, smoother window borders, more time (3 of 8: ~1.2× per frame). "
    "Details and measurements: docs/long-video.md."
)

TRAVEL_EXAMPLE = (
    "0: a red circle moving right on a black background\n"
    "32: a blue star moving up on a black background"
)


def long_video_section(gr):
    """The *Long video* accordion; returns its prompt-travel box and its window-stride field
    (inputs of /compare)."""
    with gr.Accordion("Long video", open=False):
        gr.Markdown(LONG_VIDEO_NOTE)
        travel = gr.Textbox(
            label="Prompt travel (optional): FRAME: prompt, one per line",
            placeholder=TRAVEL_EXAMPLE,
            lines=3,
            max_lines=12,
            value="",  # an API caller may leave it out
            elem_id="travel",
        )
        # no minimum or maximum here: the request's check says what the range is (the window
        # is the teacher's), where gradio's bounds check would answer first with its own words
        stride = gr.Number(
            label="Window stride (frames; 0 or empty: half the teacher's window)",
            value=0,  # an API caller may leave it out: today's default
            precision=0,
            elem_id="window-stride",
        )
    return travel, stride
