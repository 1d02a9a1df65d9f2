"""The page's handlers: plain functions of a `Service` and the controls' values, so tests and
API clients call them without a browser.

Only UI code lives here; the work is a `service.Service`'s (no gradio below this module).
Every handler takes the service the page was built with.
"""

from __future__ import annotations

import dataclasses
import random

import cv2
import numpy as np

from .. import competitors
from ..catalog import (
    DEFAULT_PROMPT,
    TEACHERS,
    VARIANTS,
    CheckpointMissing,
    clip_defaults,
    fetch_command,
    variant_of,
)
from ..pipeline import PipelineInputError, check_range, whole_number
from ..video_io import to_uint8
from . import service
from .exports import (
    SideBySide,
    column_panel,
    comparison_caption,
    write_side_by_side,
)
from .requests import travel_caption
from .service import FPS_RANGE, Service, as_number

# The page's examples: (prompt, style variant, steps, seed). At 4 steps, seeds 0-3, the
# evaluator reads shape, colour, motion and background right in every clip of both columns
# (LCM and the MCM variant named); what the columns differ in is what the variant's image set
# brings: no watermark (laion), the anime style.
EXAMPLE_RUNS = [
    [DEFAULT_PROMPT, "webvid", 4, 0],
    ["a blue star moving right on a white background", "laion", 4, 0],
    ["a yellow star moving right on a gray background", "webvid", 4, 0],
    ["a red square shrinking on a white background", "anime", 4, 0],
]
EXAMPLES = [run[0] for run in EXAMPLE_RUNS]
MAX_QUEUE = 32


def model_label(model: str, steps: int | None = None) -> str:
    """A column's name; `steps` (a run's) names the teacher's DDIM-N and the checkpoint a
    competitor runs where it was not published for `steps`."""
    if model == service.TEACHER_AT_STEPS and not steps:
        return "Teacher (DDIM at the students' steps, CFG)"
    if model in service.TEACHERS_OWN:
        return f"Teacher (DDIM-{steps}, CFG)" if steps else "Teacher (DDIM, CFG)"
    if model in competitors.COMPETITORS:
        return competitors.label(model, steps)
    if model == "lcm":
        return "LCM"
    variant = variant_of(model)
    return f"MCM-{variant}" if variant in VARIANTS else model  # yours: by its folder's name


def model_dropdown_choices(teacher: str, catalog=None) -> list[tuple[str, str]]:
    return [(model_label(m), m) for m in service.model_choices(teacher, catalog)]


def filmstrip(frames: np.ndarray, scale: int = 3, max_width: int = 1536) -> np.ndarray:
    """(F, H, W, 3) floats → one uint8 image with the frames side by side, enlarged."""
    strip = np.concatenate(list(frames), axis=1)
    scale = max(1, min(scale, max_width // strip.shape[1]))
    strip = strip.repeat(scale, 0).repeat(scale, 1)
    return to_uint8(strip)


def filmstrip_file(frames: np.ndarray) -> str:
    """The filmstrip written once as a WebP (as Gradio writes arrays; a PNG is 20× bigger) in
    the private output folder; its path.

    A column's preview stays in every later yield of `compare`, and Gradio saves an array
    output to its cache again at each yield, rewriting the same file in place while a client
    may be downloading it (the server then logs "Too little data for declared Content-Length").
    A path is copied to the cache once."""
    path = service.new_output_path(".webp")
    strip = cv2.cvtColor(filmstrip(frames), cv2.COLOR_RGB2BGR)
    cv2.imwrite(path, strip, [cv2.IMWRITE_WEBP_QUALITY, 90])
    return path


def teacher_status(svc: Service, teacher: str) -> str:
    """What the chosen teacher has on this machine, and the command for what it lacks."""
    t = TEACHERS[teacher]
    missing = svc.catalog.missing(teacher)
    absent_repos = [m for m in missing if m in t.repos]
    if absent_repos or "teacher" in missing:
        how = f"`{fetch_command(teacher)}`" if t.repos else "`python -m mcm_demo train teacher`"
        return (
            f"⚠️ {t.label}: {', '.join(absent_repos) or 'the teacher'} is not on this machine; "
            f"get it with {how} (needs internet once). The embedded teacher keeps working "
            "meanwhile."
        )
    if not missing:
        return f"{t.label}: teacher and all students available."
    how = (
        f"`{fetch_command(teacher, '<variant>')}`"
        if teacher != "embedded"
        else "`python -m mcm_demo distill …` (weights/README.md)"
    )
    return f"{t.label}: missing {', '.join(missing)}; get them with {how}."


@dataclasses.dataclass(frozen=True)
class TeacherPage:
    """What the page shows for a teacher: its column choices and defaults, its availability,
    and its own clip length and rate (the frame slider follows the teacher)."""

    choices: list
    left: str
    right: str
    status: str
    frames: int
    fps: float


def teacher_switch(svc: Service, teacher: str, variant: str) -> TeacherPage:
    """The page after the user picks `teacher`: LCM | MCM-<variant> where the teacher has them;
    on AnimateDiff, which has no LCM of ours, AnimateLCM (the paper's competitor) on the left;
    where neither exists (ModelScope), the teacher itself at the students' steps, and the
    status says so."""
    students = svc.catalog.students(teacher)  # competitors and yours (app.py --adapters) too
    left = next((m for m in ("lcm", "animatelcm") if m in students), service.TEACHER_AT_STEPS)
    fallback = students[0] if students else service.TEACHER_MODEL
    right = f"mcm-{variant}" if f"mcm-{variant}" in students else fallback
    status = teacher_status(svc, teacher)
    if left == service.TEACHER_AT_STEPS:
        status += (
            f" No public LCM exists for {TEACHERS[teacher].label}: the left column runs the "
            "teacher itself at the students' number of steps (DDIM with CFG)."
        )
    frames, fps = clip_defaults(teacher)
    return TeacherPage(
        model_dropdown_choices(teacher, svc.catalog), left, right, status, frames, fps
    )


def page_stride(value):
    """The *Window stride* field as a request's `window_stride`: 0 or empty (None, "") is None,
    half the teacher's window; anything else goes on as sent, for `check_request` to judge."""
    return None if value is None or value == "" or value == 0 else value


def _column_request(
    prompt,
    model,
    steps,
    teacher_steps,
    seed,
    frames,
    guidance,
    teacher,
    fps=8.0,
    travel="",
    window_stride=None,
) -> service.Request:
    return service.Request(
        prompt,
        model,
        teacher_steps if model == service.TEACHER_MODEL else steps,
        seed,
        frames,
        guidance,
        teacher,
        fps,
        travel or "",
        window_stride=page_stride(window_stride),
    )


def run_column(svc: Service, req: service.Request, progress=None):
    """Yield (preview, video, status, result) for one column; problems become a ⚠️ status.
    `result` (the finished `service.Result`, with its measured seconds) comes with the final
    video only. `progress(i, n, label)` hears of every sampling step."""
    label = model_label(req.model, req.steps)
    try:
        for event in svc.stream(req):
            if isinstance(event, service.Preview):
                if progress is not None:
                    progress(event.step, event.total, label)
                yield (
                    filmstrip_file(event.frames),
                    None,
                    f"**{label}** · step {event.step}/{event.total} (denoised estimate)",
                    None,
                )
            else:
                first = (
                    f", first preview at {event.first_preview_seconds:.2f} s"
                    if event.first_preview_seconds is not None
                    else ""
                )
                yield (
                    filmstrip_file(event.frames),
                    event.video,
                    f"**{label}** · {req.steps} step{'s' * (req.steps > 1)}: "
                    f"**{event.seconds:.2f} s** from the start to the mp4, previews included "
                    f"(measured{first})",
                    event,
                )
                return
    except (PipelineInputError, CheckpointMissing, RuntimeError) as err:
        yield None, None, f"⚠️ {err}", None


def column_result(svc: Service, req: service.Request) -> service.Result:
    """A column run to its end as the page runs it (every preview written out): its result.
    What the column would show as a ⚠️ status is raised as a RuntimeError instead."""
    column = (None, None, "no result", None)  # (preview, video, status, result)
    for column in run_column(svc, req):
        if column[3] is not None:
            return column[3]
    raise RuntimeError(column[2].removeprefix("⚠️ "))


def page_baseline_seconds(
    svc: Service, teacher: str, frames: int, guidance: float, window_stride=None
) -> float:
    """The teacher's DDIM-50 + CFG time the page divides by: run through its own column (every
    preview written out, as the columns it is compared with) and windowed as they were,
    measured once per setting. The stride counts only past the teacher's window."""
    stride = page_stride(window_stride)
    if stride is not None and frames > clip_defaults(teacher)[0]:
        stride = whole_number(stride, "The window stride")
    else:  # within one window no stride applies: one baseline for them all
        stride = None
    return svc.teacher_baseline_seconds(
        teacher, frames, guidance, run=lambda req: column_result(svc, req), window_stride=stride
    )


def compare(
    svc: Service,
    prompt,
    teacher,
    variant,
    steps,
    seed,
    randomize,
    frames,
    fps,
    left,
    right,
    teacher_steps,
    guidance,
    progress=None,
    speedup: bool = True,
    travel: str = "",
    window_stride=None,
):
    """The page's one handler: stream the left column, then the right, then the speedups.

    Yields (seed, left preview, left video, left status, right preview, right video,
    right status, summary, side by side): the last is a `SideBySide` of the finished columns
    for `export_comparison`, once both are done (None before). `progress(fraction, desc=…)`
    hears of every step, as Gradio's `gr.Progress` does. Without `speedup` the teacher's
    baseline is not measured (the cached examples: it would add seconds to start-up).
    `travel` and `window_stride` are the *Long video* section's (None or 0: half a window).
    """
    if randomize:
        seed = random.randrange(2**31)
    # Every yield carries the whole state (Gradio sends only what changed), so the last one is
    # the complete answer for API clients too.
    outputs = [seed, None, None, "", None, None, "", "Generating…", None]
    yield tuple(outputs)
    if variant not in VARIANTS:
        message = f"⚠️ Unknown style variant {variant!r}; choose from {', '.join(VARIANTS)}."
        outputs[3] = outputs[6] = outputs[7] = message
        yield tuple(outputs)
        return
    try:  # the one knob no request checks: it only sets the mp4's rate
        fps = check_range(as_number(fps, "Frames per second"), (1, 60), FPS_RANGE)
    except PipelineInputError as err:
        outputs[3] = outputs[6] = outputs[7] = f"⚠️ {err}"
        yield tuple(outputs)
        return
    timings, panels = {}, []
    for side, model in ((0, left), (1, right)):
        req = _column_request(
            prompt,
            model,
            steps,
            teacher_steps,
            seed,
            frames,
            guidance,
            teacher,
            fps,
            travel,
            window_stride,
        )

        def on_step(i, n, label, side=side):
            if progress is not None:  # each column is half of the run
                progress((side + i / n) / 2, desc=f"{label}: step {i}/{n}")

        for preview, video, status, result in run_column(svc, req, on_step):
            outputs[1 + 3 * side : 4 + 3 * side] = [preview, video, status]
            yield tuple(outputs)
            if result is not None:
                label = model_label(model, req.steps)
                timings[label] = result.seconds
                panels.append(column_panel(label, result.frames, req.steps, result.seconds))
    if panels:
        outputs[8] = SideBySide(
            tuple(panels),
            comparison_caption(travel_caption(travel) or prompt, seed, teacher),
            float(fps),
        )
    if not timings:
        outputs[7] = "Nothing was generated: see the messages above."
        yield tuple(outputs)
        return
    if not speedup:
        outputs[7] = (
            "Press Generate for the speedups: the teacher's "
            f"{service.BASELINE_STEPS}-step time is measured once on this machine."
        )
        yield tuple(outputs)
        return
    outputs[7] = (
        f"Measuring the teacher's {service.BASELINE_STEPS}-step DDIM + CFG once on this machine…"
    )
    if progress is not None:
        progress(None, desc=outputs[7])
    yield tuple(outputs)
    try:
        base = page_baseline_seconds(svc, teacher, int(frames), float(guidance), window_stride)
    except (PipelineInputError, CheckpointMissing, RuntimeError) as err:
        outputs[7] = f"⚠️ no speedup: {err}"
    else:
        ratios = ", ".join(f"{name} **{base / s:.1f}×**" for name, s in timings.items())
        outputs[7] = (
            f"Speedup over the teacher's {service.BASELINE_STEPS}-step DDIM + CFG, each from the "
            f"start to its mp4 with previews ({base:.2f} s, measured on this machine): {ratios}"
        )
    yield tuple(outputs)


def export_comparison(job: SideBySide | None):
    """The finished comparison as one labelled mp4 and GIF: (mp4, gif, status). Runs after
    the columns are done (the page chains it), so it never holds them up; its time is shown."""
    if job is None:
        return None, None, ""
    mp4 = service.new_output_path("-side-by-side.mp4")
    try:
        export, seconds = write_side_by_side(job, mp4, mp4.removesuffix(".mp4") + ".gif")
    except (OSError, ValueError, RuntimeError) as err:  # ffmpeg's failures are OSErrors
        return None, None, f"⚠️ the side-by-side export failed: {err}"
    return (
        export.mp4,
        export.gif,
        f"Side by side, labelled: {export.width}×{export.height} px, {export.frames} frames "
        f"(mp4 and GIF), built in {seconds:.2f} s once the clips were done (measured).",
    )
