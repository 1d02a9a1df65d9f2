"""Generation as a stream of events, shared by the app, the CLI and the benchmarks.

A `Request` names a teacher, a model ("teacher", "lcm", "mcm-<variant>"), a prompt and the
knobs; `check_request` is the one validator (limits from `pipeline.LIMITS`). A `Service` owns
the catalogue (one cached pipeline per teacher), one lock per device and the measured
baselines: `Service.stream()` runs a request under its device's lock and yields a `Preview`
per sampling step (the decoded denoised estimate) and then one `Result`. Nothing here
imports gradio: the page only maps these events to its components.
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
    DEFAULT_PROMPT,
    TEACHERS,
    VARIANTS,
    Catalog,
    CheckpointMissing,
    default_device_dtype,
    student_names,
    variant_of,
)
from ..metrics.motion_fidelity import motion_fidelity_of_clips
from ..pipeline import (
    LIMITS,
    PipelineInputError,
    check_prompt,
    check_range,
    check_seed,
    whole_number,
)
from ..transfer import METHODS, START_LOOKS, TransferConfig, transfer
from ..video_io import load_reference

TEACHER_MODEL = "teacher"
BASELINE_STEPS = 50  # the speedup is always against the teacher's 50-step DDIM with CFG
MAX_PREVIEW_FRAMES = 8
OUTPUT_DIR = os.path.join(tempfile.gettempdir(), "mcm-demo-outputs")


@dataclasses.dataclass(frozen=True)
class Request:
    prompt: str
    model: str = "mcm-webvid"  # "teacher", "lcm" or "mcm-<variant>"
    steps: int = 4  # students and the teacher: LIMITS.student_steps / LIMITS.teacher_steps
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
    check_prompt(req.prompt)
    variant = variant_of(req.model)
    if variant is not None and variant not in VARIANTS:
        raise PipelineInputError(
            f"Unknown style variant {variant!r}; choose from {', '.join(VARIANTS)}."
        )
    if req.model not in model_choices(req.teacher):
        raise PipelineInputError(
            f"{TEACHERS[req.teacher].label} offers {', '.join(model_choices(req.teacher))}; "
            f"not {req.model!r}."
        )
    teacher = req.model == TEACHER_MODEL
    steps = check_range(
        whole_number(req.steps, "Steps"),
        LIMITS.teacher_steps if teacher else LIMITS.student_steps,
        "The teacher samples in {lo} to {hi} DDIM steps"
        if teacher
        else "LCM and MCM students sample in {lo} to {hi} steps",
    )
    seed = check_seed(req.seed)
    frames = check_range(
        whole_number(req.frames, "Frames"), LIMITS.frames, "Frames must be from {lo} to {hi}"
    )
    guidance = check_range(
        float(req.guidance), LIMITS.guidance, "Guidance scale must be from {lo} to {hi}"
    )
    return dataclasses.replace(req, steps=steps, seed=seed, frames=frames, guidance=guidance)


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
MAX_TUNED_ADAPTERS = 8  # a long-running server keeps the newest tuned clips attached, not all
TRANSFER_FRAMES = 8  # a reference clip is sampled evenly to this many frames


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
    start_look: str = TransferConfig.start_look  # "prompt" (recoloured) or "reference"


def check_transfer_request(req: TransferRequest) -> TransferConfig:
    """Validate the knobs (PipelineInputError); return the transfer's config."""
    if req.method not in METHODS:
        raise PipelineInputError(
            f"Unknown method {req.method!r}; choose from {', '.join(METHODS)}."
        )
    if req.start_look not in START_LOOKS:
        raise PipelineInputError(
            f"Unknown start {req.start_look!r}; choose from {', '.join(START_LOOKS)}."
        )
    if req.student == TEACHER_MODEL:
        raise PipelineInputError(
            "Motion transfer samples with a few-step student: choose LCM or an MCM variant."
        )
    checked = check_request(
        Request(req.prompt, req.student, req.steps, req.seed, 8, 1.0, req.teacher)
    )
    strength = check_range(float(req.strength), (0.05, 1.0), "Strength must be from {lo} to {hi}")
    inner = check_range(
        whole_number(req.inner_iterations, "Inner iterations"),
        (1, 200),
        "Inner iterations must be from {lo} to {hi}",
    )
    tune = check_range(
        whole_number(req.tune_steps, "Tuning steps"),
        (1, 1000),
        "Tuning steps must be from {lo} to {hi}",
    )
    if req.invariant_prompt:
        check_prompt(req.invariant_prompt, "The motion prompt")
    return TransferConfig(
        method=req.method,
        steps=checked.steps,
        strength=strength,
        seed=checked.seed,
        inner_iterations=inner,
        tune_steps=tune,
        invariant_prompt=(req.invariant_prompt or "").strip() or None,
        start_look=req.start_look,
    )


class Service:
    """What the app owns: the catalogue, one lock per device (a device runs one generation at a
    time; the queue holds the rest), the teacher's measured baselines and the tuned VMC adapters."""

    def __init__(self, catalog: Catalog | None = None):
        self.catalog = catalog or Catalog()
        self._device_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._baselines: dict[tuple, float] = {}
        self._tuned: dict[int, list[str]] = {}  # per pipeline: tuned adapters, oldest first

    def device_lock(self, device: str) -> threading.Lock:
        with self._locks_lock:
            return self._device_locks.setdefault(device, threading.Lock())

    def stream(
        self, req: Request, device: str | None = None, previews: bool = True
    ) -> Iterator[Preview | Result]:
        """Check, then generate on a worker thread; yield its per-step previews, then the result.
        Bad input raises PipelineInputError and a missing checkpoint CheckpointMissing, both
        before any work; a failure during sampling raises RuntimeError with the cause."""
        req = check_request(req)
        device, dtype = default_device_dtype(device)
        pipe = self.catalog.load_pipeline(req.teacher, device, dtype)
        events: queue.Queue = queue.Queue()
        clock = {"start": 0.0, "previews": 0.0}

        def on_step(info):  # worker thread: decode the denoised estimate for a preview
            t = time.perf_counter()
            denoised = info["denoised"][:1]
            stride = max(1, denoised.shape[2] // MAX_PREVIEW_FRAMES)
            frames = pipe.decode_latents(denoised[:, :, ::stride])[0]
            clock["previews"] += time.perf_counter() - t
            events.put(
                Preview(info["i"] + 1, req.steps, frames, time.perf_counter() - clock["start"])
            )

        def work():
            try:
                with self.device_lock(device):
                    student = None if req.model == TEACHER_MODEL else req.model
                    sampler = self.catalog.use_student(pipe, req.teacher, student)
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

    def generate(self, req: Request, device: str | None = None) -> Result:
        """The final result of `stream`, without previews."""
        for event in self.stream(req, device, previews=False):
            if isinstance(event, Result):
                return event
        raise RuntimeError("generation ended without a result")

    def clip_size(self, teacher: str = "embedded") -> int:
        """The side in pixels of the clips `teacher` makes (and of the references it reads)."""
        pipe = self.catalog.load_pipeline(teacher)
        return pipe.unet.config.sample_size * pipe.vae_scale_factor

    def teacher_baseline_seconds(
        self, teacher: str, frames: int, guidance: float = 5.0, device: str | None = None
    ) -> float:
        """Wall time of the teacher's 50-step DDIM with CFG, measured once per setting here."""
        device, _ = default_device_dtype(device)
        key = (teacher, frames, guidance, device)
        if key not in self._baselines:
            req = Request(
                DEFAULT_PROMPT, TEACHER_MODEL, BASELINE_STEPS, 0, frames, guidance, teacher
            )
            self._baselines[key] = self.generate(req, device).seconds
        return self._baselines[key]

    def run_transfer(self, req: TransferRequest, baseline: bool = True, progress=None) -> dict:
        """Transfer the clip's motion (and, with `baseline`, the same seed without it) under the
        device lock. Returns the reference frames, the results, their measured seconds and
        their motion fidelity to the reference. Bad knobs raise PipelineInputError, a bad clip
        UploadError."""
        cfg = check_transfer_request(req)
        pipe = self.catalog.load_pipeline(req.teacher)
        size = self.clip_size(req.teacher)
        reference = load_reference(req.reference, num_frames=TRANSFER_FRAMES, size=size)
        out = {"reference": reference}
        with self.device_lock(str(pipe.unet.device)):
            self.catalog.use_student(pipe, req.teacher, req.student)
            t0 = time.perf_counter()
            out["transferred"], out["info"] = transfer(
                pipe,
                req.prompt,
                reference,
                cfg,
                req.student,
                cache_dir=VMC_CACHE_DIR,
                progress=progress,
                tuned=self._tuned.setdefault(id(pipe), []),
                max_tuned=MAX_TUNED_ADAPTERS,
            )
            out["transferred_seconds"] = time.perf_counter() - t0
            if baseline:
                t0 = time.perf_counter()
                none = dataclasses.replace(cfg, method="none")
                out["baseline"], _ = transfer(pipe, req.prompt, reference, none, req.student)
                out["baseline_seconds"] = time.perf_counter() - t0
        # motion fidelity to the reference (CPU tracking: outside the device lock)
        for k in ("transferred", "baseline") if baseline else ("transferred",):
            out[f"{k}_fidelity"] = motion_fidelity_of_clips(reference, out[k])
        return out
