"""What a generation request is and the one validator of it (`check_request`): limits from
`pipeline.LIMITS`, the teacher's own frames and fps where a request names none. The service,
the CLI and the page all check through here."""

from __future__ import annotations

import dataclasses

from ..catalog import TEACHERS, VARIANTS, Catalog, clip_defaults, student_names, variant_of
from ..pipeline import (
    LIMITS,
    PipelineInputError,
    check_prompt,
    check_range,
    check_seed,
    whole_number,
)
from ..windows import check_prompt_schedule, parse_prompt_schedule

TEACHER_MODEL = "teacher"
# The teacher at the students' step count (DDIM + CFG): the paper's few-step DDIM row, and the
# left column where a teacher has no LCM baseline (none is public for ModelScopeT2V).
TEACHER_AT_STEPS = "teacher-at-steps"
TEACHERS_OWN = (TEACHER_MODEL, TEACHER_AT_STEPS)
FPS_RANGE = "Frames per second must be from {lo} to {hi}"


@dataclasses.dataclass(frozen=True)
class Request:
    prompt: str
    model: str = "mcm-webvid"  # TEACHERS_OWN, "lcm", "mcm-<variant>" or a competitor
    steps: int = 4  # students and the teacher: LIMITS.student_steps / LIMITS.teacher_steps
    seed: int = 0
    frames: int | None = None  # None: the teacher's own (catalog.clip_defaults)
    guidance: float = 5.0  # the teacher's CFG; students have guidance distilled in
    teacher: str = "embedded"
    fps: float | None = None  # the mp4's frame rate; None: the teacher's own
    travel: str = ""  # prompt travel: "FRAME: prompt" lines (docs/long-video.md); "" = none
    windows: bool = True  # past the teacher's trained length, sample in windows (FreeNoise)
    window_stride: int | None = None  # frames between window starts; None: half a window


def model_choices(teacher: str = "embedded", catalog: Catalog | None = None) -> list[str]:
    """The teacher and its students (the paper's competitors and yours too, given the catalogue
    that lists them)."""
    return list(TEACHERS_OWN) + (catalog.students(teacher) if catalog else student_names(teacher))


def as_number(value, what: str) -> float:
    """`value` as a float, or PipelineInputError (an API client may send None or "abc")."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PipelineInputError(f"{what} must be a number, got {value!r}.")
    try:
        return float(value)
    except ValueError:
        raise PipelineInputError(f"{what} must be a number, got {value!r}.") from None


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise PipelineInputError(f"{what} must be text, got {value!r}.")
    return value


def check_request(req: Request, catalog: Catalog | None = None) -> Request:
    """Raise PipelineInputError with a message a user can act on; return the request cleaned.
    Every field's type is checked first: API clients send anything."""
    _text(req.teacher, "The teacher")
    _text(req.model, "The model")
    if req.teacher not in TEACHERS:
        raise PipelineInputError(
            f"Unknown teacher {req.teacher!r}; choose from {sorted(TEACHERS)}."
        )
    check_prompt(req.prompt)
    choices = model_choices(req.teacher, catalog)
    variant = variant_of(req.model)
    if variant is not None and variant not in VARIANTS and req.model not in choices:
        raise PipelineInputError(
            f"Unknown style variant {variant!r}; choose from {', '.join(VARIANTS)}."
        )
    if req.model not in choices:
        raise PipelineInputError(
            f"{TEACHERS[req.teacher].label} offers {', '.join(choices)}; not {req.model!r}."
        )
    teacher = req.model in TEACHERS_OWN
    steps = check_range(
        whole_number(req.steps, "Steps"),
        LIMITS.teacher_steps if teacher else LIMITS.student_steps,
        "The teacher samples in {lo} to {hi} DDIM steps"
        if teacher
        else "LCM and MCM students sample in {lo} to {hi} steps",
    )
    seed = check_seed(req.seed)
    default_frames, default_fps = clip_defaults(req.teacher)
    frames = check_range(
        whole_number(default_frames if req.frames is None else req.frames, "Frames"),
        LIMITS.frames,
        "Frames must be from {lo} to {hi}",
    )
    guidance = check_range(
        as_number(req.guidance, "Guidance scale"),
        LIMITS.guidance,
        "Guidance scale must be from {lo} to {hi}",
    )
    fps = default_fps if req.fps is None else req.fps
    fps = check_range(as_number(fps, "Frames per second"), (1, 60), FPS_RANGE)
    travel = _text(req.travel or "", "Prompt travel")
    if travel.strip():
        try:
            schedule = check_prompt_schedule(parse_prompt_schedule(travel), frames)
        except ValueError as err:
            raise PipelineInputError(str(err)) from None
        for text in schedule.values():
            check_prompt(text, "A prompt-travel line")
    stride = req.window_stride
    if stride is not None:  # the teacher's own frame count is its trained window
        stride = check_range(
            whole_number(stride, "The window stride"),
            (1, default_frames),
            "The window stride must be from {lo} to {hi} frames (the teacher's trained window)",
        )
    return dataclasses.replace(
        req,
        steps=steps,
        seed=seed,
        frames=frames,
        guidance=guidance,
        fps=fps,
        travel=travel,
        window_stride=stride,
    )


def travel_caption(travel: str) -> str:
    """Prompt-travel lines as one caption ("0: … → 32: …"); "" for none or unreadable ones."""
    try:
        schedule = parse_prompt_schedule(travel or "")
    except ValueError:
        return ""
    return " → ".join(f"{frame}: {text}" for frame, text in schedule.items())


def pipeline_prompt(req: Request) -> str | dict[int, str]:
    """What the pipeline is given: the prompt, or with prompt travel {frame: prompt}."""
    return parse_prompt_schedule(req.travel) if req.travel.strip() else req.prompt
