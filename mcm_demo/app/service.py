"""Generation as a stream of events, shared by the app, the CLI and the benchmarks.

A `Request` names a teacher, a model ("teacher", "lcm", "mcm-<variant>"), a prompt and the
knobs; `stream()` checks it, runs it on the device under that device's lock and yields a
`Preview` per sampling step (the decoded denoised estimate) and then one `Result`. Nothing
here imports gradio: the page only maps these events to its components.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import torch

from ..catalog import (
    TEACHERS,
    VARIANTS,
    CheckpointMissing,
    default_device_dtype,
    load_pipeline,
    student_names,
    use_student,
)
from ..pipeline import MAX_PROMPT_CHARS, PipelineInputError
from ..transfer.core import TransferConfig

TEACHER_MODEL = "teacher"
BASELINE_STEPS = 50  # the speedup is always against the teacher's 50-step DDIM with CFG
MAX_PREVIEW_FRAMES = 8
OUTPUT_DIR = os.path.join(tempfile.gettempdir(), "mcm-demo-outputs")


@dataclasses.dataclass(frozen=True)
class Request:
    prompt: str
    model: str = "mcm-webvid"  # "teacher", "lcm" or "mcm-<variant>"
    steps: int = 4  # students: 1–8; the teacher: 1–1000 DDIM steps
    seed: int = 0
    frames: int = 8
    guidance: float = 5.0  # the teacher's CFG; students have guidance distilled in
    teacher: str = "embedded"


@dataclasses.dataclass
class Preview:
    step: int  # 1-based
    total: int
    frames: np.ndarray  # (F, H, W, 3) floats in [0, 1]
    seconds: float  # since sampling started


@dataclasses.dataclass
class Result:
    frames: np.ndarray
    seconds: float  # sampling + final decode, measured; preview decoding not included
    first_preview_seconds: float | None  # from the start of sampling
    preview_seconds: float  # time spent decoding previews
    sampler: str


def model_choices(teacher: str = "embedded") -> list[str]:
    return [TEACHER_MODEL] + student_names(teacher)


def check_request(req: Request) -> Request:
    """Raise PipelineInputError with a message a user can act on; return the request cleaned."""
    if req.teacher not in TEACHERS:
        raise PipelineInputError(
            f"Unknown teacher {req.teacher!r}; choose from {sorted(TEACHERS)}."
        )
    if not isinstance(req.prompt, str) or not req.prompt.strip():
        raise PipelineInputError(
            "The prompt is empty: describe the video, e.g. "
            "'a red circle moving left on a black background'."
        )
    if len(req.prompt) > MAX_PROMPT_CHARS:
        raise PipelineInputError(
            f"The prompt has {len(req.prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}."
        )
    if req.model.startswith("mcm-") and req.model[4:] not in VARIANTS:
        raise PipelineInputError(
            f"Unknown style variant {req.model[4:]!r}; choose from {', '.join(VARIANTS)}."
        )
    if req.model not in model_choices(req.teacher):
        raise PipelineInputError(
            f"{TEACHERS[req.teacher].label} offers {', '.join(model_choices(req.teacher))}; "
            f"not {req.model!r}."
        )
    steps = _whole(req.steps, "Steps")
    if req.model == TEACHER_MODEL and not 1 <= steps <= 1000:
        raise PipelineInputError(f"The teacher samples in 1 to 1000 DDIM steps, got {steps}.")
    if req.model != TEACHER_MODEL and not 1 <= steps <= 8:
        raise PipelineInputError(f"LCM and MCM students sample in 1 to 8 steps, got {steps}.")
    seed = _whole(req.seed, "Seed")
    if not 0 <= seed < 2**63:
        raise PipelineInputError(
            f"Seed must be from 0 to 2^63−1, got {seed} (tick 'randomize seed' for a random one)."
        )
    frames = _whole(req.frames, "Frames")
    if not 2 <= frames <= 32:
        raise PipelineInputError(f"Frames must be from 2 to 32, got {frames}.")
    if not 0 <= float(req.guidance) <= 50:
        raise PipelineInputError(f"Guidance scale must be from 0 to 50, got {req.guidance}.")
    return dataclasses.replace(
        req, steps=steps, seed=seed, frames=frames, guidance=float(req.guidance)
    )


def _whole(value, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PipelineInputError(f"{what} must be a whole number, got {value!r}.") from None
    if not number.is_integer():
        raise PipelineInputError(f"{what} must be a whole number, got {value!r}.")
    return int(number)


# One lock per device: a device runs one generation at a time, the queue holds the rest.
_device_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def device_lock(device: str) -> threading.Lock:
    with _locks_lock:
        return _device_locks.setdefault(device, threading.Lock())


def stream(
    req: Request, device: str | None = None, previews: bool = True
) -> Iterator[Preview | Result]:
    """Check, then generate on a worker thread; yield its per-step previews, then the result.
    Bad input raises PipelineInputError and a missing checkpoint CheckpointMissing, both
    before any work; a failure during sampling raises RuntimeError with the cause."""
    req = check_request(req)
    device, dtype = default_device_dtype(device)
    pipe = load_pipeline(req.teacher, device, dtype)
    events: queue.Queue = queue.Queue()
    clock = {"start": 0.0, "previews": 0.0}

    def on_step(info):  # worker thread: decode the denoised estimate for a preview
        t = time.perf_counter()
        denoised = info["denoised"][:1]
        stride = max(1, denoised.shape[2] // MAX_PREVIEW_FRAMES)
        frames = pipe.decode_latents(denoised[:, :, ::stride])[0]
        clock["previews"] += time.perf_counter() - t
        events.put(Preview(info["i"] + 1, req.steps, frames, time.perf_counter() - clock["start"]))

    def work():
        try:
            with device_lock(device):
                sampler = use_student(
                    pipe, req.teacher, None if req.model == TEACHER_MODEL else req.model
                )
                clock["start"] = time.perf_counter()
                frames = pipe(
                    req.prompt,
                    num_inference_steps=req.steps,
                    guidance_scale=req.guidance,
                    sampler=sampler,
                    num_frames=req.frames,
                    callback=on_step if previews else None,
                    generator=torch.Generator().manual_seed(req.seed),
                )[0]
                seconds = time.perf_counter() - clock["start"] - clock["previews"]
                events.put(Result(frames, seconds, None, clock["previews"], sampler))
        except BaseException as err:  # handed to the caller; the server keeps serving others
            events.put(err)

    threading.Thread(target=work, daemon=True).start()
    first = None
    while True:
        event = events.get()
        if isinstance(event, BaseException):
            if isinstance(event, (PipelineInputError, CheckpointMissing)):
                raise event
            raise RuntimeError(f"generation failed: {type(event).__name__}: {event}") from event
        if isinstance(event, Preview) and first is None:
            first = event.seconds
        if isinstance(event, Result):
            event.first_preview_seconds = first
            yield event
            return
        yield event


def generate(req: Request, device: str | None = None) -> Result:
    """The final result of `stream`, without previews."""
    for event in stream(req, device, previews=False):
        if isinstance(event, Result):
            return event
    raise RuntimeError("generation ended without a result")


_baseline: dict[tuple, float] = {}


def teacher_baseline_seconds(
    teacher: str, frames: int, guidance: float = 5.0, device: str | None = None
) -> float:
    """Wall time of the teacher's 50-step DDIM with CFG, measured once per setting here."""
    device, _ = default_device_dtype(device)
    key = (teacher, frames, guidance, device)
    if key not in _baseline:
        req = Request(
            "a red circle moving left on a black background",
            TEACHER_MODEL,
            BASELINE_STEPS,
            0,
            frames,
            guidance,
            teacher,
        )
        _baseline[key] = generate(req, device).seconds
    return _baseline[key]


def new_output_path(suffix: str = ".mp4", max_age_s: float = 3600) -> str:
    """A unique file per request; files older than an hour are removed as new ones come."""
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    now = time.time()
    for name in os.listdir(OUTPUT_DIR):
        path = os.path.join(OUTPUT_DIR, name)
        try:
            if now - os.path.getmtime(path) > max_age_s:
                os.remove(path)
        except OSError:  # another request removed it first
            pass
    return os.path.join(OUTPUT_DIR, uuid.uuid4().hex + suffix)


# -- motion transfer ------------------------------------------------------------------------
VMC_CACHE_DIR = os.path.join(tempfile.gettempdir(), "mcm-demo-vmc-cache")


@dataclasses.dataclass(frozen=True)
class TransferRequest:
    reference: str  # path of the uploaded clip
    prompt: str
    method: str = "fastvmt"  # "fastvmt", "vmc" or "none"
    student: str = "mcm-webvid"
    # the knobs' defaults are the library's, so the page's sliders and the CLI start where it does
    steps: int = TransferConfig.steps
    strength: float = TransferConfig.strength
    inner_iterations: int = TransferConfig.inner_iterations
    tune_steps: int = TransferConfig.tune_steps
    invariant_prompt: str = ""  # "" = derived from the prompt
    seed: int = 0
    teacher: str = "embedded"
    start_look: str = (
        TransferConfig.start_look
    )  # "reference" or "prompt" (the reference recoloured)


def check_transfer(req: TransferRequest):
    """Validate the knobs (PipelineInputError) and read the clip (UploadError); return both."""
    from ..transfer.core import METHODS, START_LOOKS
    from ..video_io import load_reference

    if req.method not in METHODS:
        raise PipelineInputError(
            f"Unknown method {req.method!r}; choose from {', '.join(METHODS)}."
        )
    if req.start_look not in START_LOOKS:
        raise PipelineInputError(
            f"Unknown start {req.start_look!r}; choose from {', '.join(START_LOOKS)}."
        )
    checked = check_request(
        Request(req.prompt, req.student, req.steps, req.seed, 8, 1.0, req.teacher)
    )
    if req.student == TEACHER_MODEL:
        raise PipelineInputError(
            "Motion transfer samples with a few-step student: choose LCM or an MCM variant."
        )
    if not 0.05 <= float(req.strength) <= 1.0:
        raise PipelineInputError(f"Strength must be from 0.05 to 1, got {req.strength}.")
    if not 1 <= _whole(req.inner_iterations, "Inner iterations") <= 200:
        raise PipelineInputError(
            f"Inner iterations must be from 1 to 200, got {req.inner_iterations}."
        )
    if not 1 <= _whole(req.tune_steps, "Tuning steps") <= 1000:
        raise PipelineInputError(f"Tuning steps must be from 1 to 1000, got {req.tune_steps}.")
    if len(req.invariant_prompt or "") > MAX_PROMPT_CHARS:
        raise PipelineInputError(f"The motion prompt is longer than {MAX_PROMPT_CHARS} characters.")
    pipe = load_pipeline(req.teacher)
    reference = load_reference(
        req.reference, num_frames=8, size=pipe.unet.config.sample_size * pipe.vae_scale_factor
    )
    cfg = TransferConfig(
        method=req.method,
        steps=checked.steps,
        strength=float(req.strength),
        seed=checked.seed,
        inner_iterations=int(req.inner_iterations),
        tune_steps=int(req.tune_steps),
        invariant_prompt=req.invariant_prompt.strip() or None,
        start_look=req.start_look,
    )
    return pipe, reference, cfg


def run_transfer(req: TransferRequest, baseline: bool = True, progress=None) -> dict:
    """Transfer the clip's motion (and, with `baseline`, the same seed without it) under the
    device lock. Returns the reference frames, the results, their measured seconds and their
    motion fidelity to the reference."""
    from ..metrics.motion_fidelity import motion_fidelity_of_clips
    from ..transfer.core import transfer

    pipe, reference, cfg = check_transfer(req)
    device = str(pipe.unet.device)
    out = {"reference": reference}
    with device_lock(device):
        use_student(pipe, req.teacher, req.student)
        t0 = time.perf_counter()
        out["transferred"], out["info"] = transfer(
            pipe,
            req.prompt,
            reference,
            cfg,
            req.student,
            cache_dir=VMC_CACHE_DIR,
            progress=progress,
        )
        out["transferred_seconds"] = time.perf_counter() - t0
        if baseline:
            t0 = time.perf_counter()
            out["baseline"], _ = transfer(
                pipe, req.prompt, reference, dataclasses.replace(cfg, method="none"), req.student
            )
            out["baseline_seconds"] = time.perf_counter() - t0
    # motion fidelity to the reference (CPU tracking: outside the device lock)
    for k in ("transferred", "baseline") if baseline else ("transferred",):
        out[f"{k}_fidelity"] = motion_fidelity_of_clips(reference, out[k])
    return out
