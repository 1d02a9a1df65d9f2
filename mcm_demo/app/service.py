"""Generation as a stream of events, shared by the app, the CLI and the benchmarks.

A `Request` names a teacher, a model ("teacher", "lcm", "mcm-<variant>"), a prompt and the
knobs; `check_request` is the one validator (limits from `pipeline.LIMITS`). A `Service` owns
the catalogue (one cached pipeline per teacher), one lock per device and the measured
baselines: `Service.stream()` runs a request under its device's lock and yields a `Preview`
per sampling step (the denoised estimate through the pipeline's cheap preview decoder) and
then one `Result` with the mp4 written. Its `seconds` is the wall time a user waits, from the
start to the mp4, previews included, for every model alike: the teacher's baseline is
measured the same way, so the page's speedups compare the same code. Nothing here imports
gradio: the page only maps these events to its components.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import numpy as np
import torch

from .. import competitors
from ..catalog import (
    DEFAULT_PROMPT,
    Catalog,
    CheckpointMissing,
    default_device_dtype,
    device_key,
)
from ..metrics.motion_fidelity import motion_fidelity_of_clips
from ..pipeline import (
    PipelineInputError,
    check_prompt,
    check_range,
    long_clip_windowing,
    whole_number,
)
from ..transfer import METHODS, START_LOOKS, TransferConfig, transfer
from ..video_io import UploadError, UploadLimits, display_upscale, load_reference, write_mp4
from .requests import (  # noqa: F401  (the service's vocabulary, named from here too)
    FPS_RANGE,
    TEACHER_AT_STEPS,
    TEACHER_MODEL,
    TEACHERS_OWN,
    Request,
    _text,
    as_number,
    check_request,
    model_choices,
    pipeline_prompt,
)
from .scratch import PrivateFolder

BASELINE_STEPS = 50  # the speedup is always against the teacher's 50-step DDIM with CFG
MAX_PREVIEW_FRAMES = 8
# Intra-op threads of a generation on the CPU. Each request runs on a worker thread, and there a
# 2-thread OpenMP team made a UNet call 2–3× slower than on the main thread (its team competes
# with the idle ones of other threads), while one thread matched the main thread's two: the
# UNet at 64 px is too small to share (docs/performance.md). Teacher and students alike.
CPU_THREADS = 1
# x264's fastest preset: a column's 8 frames encode 3.5× faster than at "medium" (0.04 against
# 0.15 s on a busy core) into an mp4 that is still only ~60 kB (docs/performance.md)
COLUMN_PRESET = "ultrafast"
# The process's private output folder: each mp4 is served (Gradio copies it into its own cache)
# long before an hour has passed; the count bounds the folder under any load.
OUTPUTS = PrivateFolder("mcm-demo-outputs-", max_age_s=3600, max_entries=500)
MAX_BASELINES = 32  # measured teacher baselines kept (per teacher, frames, guidance, device)
MAX_REFERENCES = 16  # decoded reference clips kept, by content hash


@dataclasses.dataclass
class Preview:
    step: int  # 1-based
    total: int
    frames: np.ndarray  # (F, H, W, 3) floats in [0, 1]
    seconds: float  # since the request started (its device lock held)


@dataclasses.dataclass
class Result:
    frames: np.ndarray
    seconds: float  # what the user waits: start (device lock held) → mp4 written, previews in
    first_preview_seconds: float | None  # from the same start
    preview_seconds: float  # of `seconds`, spent decoding previews
    sampler: str
    video: str | None = None  # the mp4 (in the private output folder), when one was asked for
    model_seconds: float = 0.0  # of `seconds`, sampling and the final VAE decode alone


def use_worker_threads(device: str) -> None:
    """The thread settings a generation runs with, on the thread that runs it."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads(CPU_THREADS)


def new_output_path(suffix: str = ".mp4") -> str:
    """A unique file per request in the process's private output folder (swept by age and
    count on a timer, removed at exit)."""
    return OUTPUTS.new_path(suffix)


# -- motion transfer ------------------------------------------------------------------------
MAX_TUNED_ADAPTERS = 8  # a long-running server keeps the newest tuned clips attached, not all
# tuned VMC adapters saved per clip: private, the newest kept (twice the attached ones)
ADAPTER_CACHE = PrivateFolder("mcm-demo-adapters-", max_age_s=24 * 3600, max_entries=16)
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
    start_look: str = TransferConfig.start_look  # "layout", "prompt" (recoloured) or "reference"


def check_transfer_request(req: TransferRequest) -> TransferConfig:
    """Validate the knobs (PipelineInputError); return the transfer's config."""
    for value, what in (
        (req.method, "The method"),
        (req.start_look, "The start"),
        (req.student, "The student"),
        (req.invariant_prompt or "", "The motion prompt"),
    ):
        _text(value, what)
    if req.reference is not None and not isinstance(req.reference, (str, os.PathLike)):
        raise PipelineInputError(f"The reference must be an uploaded file, got {req.reference!r}.")
    if req.method not in METHODS:
        raise PipelineInputError(
            f"Unknown method {req.method!r}; choose from {', '.join(METHODS)}."
        )
    if req.start_look not in START_LOOKS:
        raise PipelineInputError(
            f"Unknown start {req.start_look!r}; choose from {', '.join(START_LOOKS)}."
        )
    if req.student in TEACHERS_OWN:
        raise PipelineInputError(
            "Motion transfer samples with a few-step student: choose LCM or an MCM variant."
        )
    checked = check_request(
        Request(req.prompt, req.student, req.steps, req.seed, 8, 1.0, req.teacher)
    )
    strength = check_range(
        as_number(req.strength, "Strength"), (0.05, 1.0), "Strength must be from {lo} to {hi}"
    )
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
    time; the queue holds the rest; a pipeline is loaded onto a device only under its lock), the
    teacher's measured baselines and the decoded reference clips (both bounded, both locked)
    and the tuned VMC adapters."""

    def __init__(self, catalog: Catalog | None = None):
        self.catalog = catalog or Catalog()
        self._device_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._baselines: OrderedDict[tuple, float] = OrderedDict()
        self._baselines_lock = threading.Lock()  # held through a measurement: one at a time
        self._references: OrderedDict[tuple, np.ndarray | str] = OrderedDict()
        self._decode_lock = threading.Lock()  # one upload decoded at a time: bounded memory
        self._tuned: dict[int, list[str]] = {}  # per pipeline: tuned adapters, oldest first

    def device_lock(self, device: str) -> threading.Lock:
        """The one lock of `device`, whatever it is called ("cuda", "cuda:0", a torch.device)."""
        with self._locks_lock:
            return self._device_locks.setdefault(device_key(device), threading.Lock())

    def stream(
        self, req: Request, device: str | None = None, previews: bool = True, video: bool = True
    ) -> Iterator[Preview | Result]:
        """Check, then load and generate on a worker thread under the device's lock; yield its
        per-step previews, then the result (with the mp4 written, if `video`). Bad input raises
        PipelineInputError before any work and a missing checkpoint CheckpointMissing; a
        failure during sampling raises RuntimeError with the cause."""
        req = check_request(req, self.catalog)
        device, dtype = default_device_dtype(device)
        events: queue.Queue = queue.Queue()

        def work():
            try:
                use_worker_threads(device)
                with self.device_lock(device):
                    events.put(self._generate(req, device, dtype, previews, video, events.put))
            except BaseException as err:  # handed to the caller; the server keeps serving others
                events.put(err)

        threading.Thread(target=work, daemon=True).start()
        while True:
            event = events.get()
            if isinstance(event, BaseException):
                if isinstance(event, (PipelineInputError, CheckpointMissing)):
                    raise event
                raise RuntimeError(f"generation failed: {type(event).__name__}: {event}") from event
            yield event
            if isinstance(event, Result):
                return

    def _generate(self, req: Request, device, dtype, previews: bool, video: bool, emit) -> Result:
        """One request, timed as the user waits for it (the caller holds the device lock)."""
        start = time.perf_counter()
        clock = {"previews": 0.0, "first": None}
        # a competitor is a pipeline of its own (its motion module), sampled as its card says
        rival = competitors.COMPETITORS.get(req.model)
        checkpoint = rival and competitors.checkpoint(req.model, req.steps)
        pipe = self.catalog.load_pipeline(req.teacher, device, dtype, checkpoint)
        preview_decoder = self.catalog.preview_decoder(pipe, req.teacher)

        def on_step(info):  # the denoised estimate through the cheap decoder
            t = time.perf_counter()
            denoised = info["denoised"][:1]
            stride = max(1, denoised.shape[2] // MAX_PREVIEW_FRAMES)
            frames = preview_decoder(denoised[:, :, ::stride])[0]
            now = time.perf_counter()
            clock["previews"] += now - t
            clock["first"] = clock["first"] or now - start
            emit(Preview(info["i"] + 1, req.steps, frames, now - start))

        if rival:
            run = {"guidance_scale": req.guidance, **rival.run()}
        else:
            student = None if req.model in TEACHERS_OWN else req.model
            sampler = self.catalog.use_student(pipe, req.teacher, student)
            run = {"guidance_scale": req.guidance, "sampler": sampler}
        sampling = time.perf_counter()
        frames = pipe(
            pipeline_prompt(req),
            num_inference_steps=req.steps,
            num_frames=req.frames,
            **run,
            windowing=(
                long_clip_windowing(pipe.unet, req.frames, req.window_stride)
                if req.windows
                else False
            ),
            callback=on_step if previews else None,
            generator=torch.Generator().manual_seed(req.seed),
        )[0]
        model_seconds = time.perf_counter() - sampling - clock["previews"]
        path = None
        if video:
            path = write_mp4(
                frames, new_output_path(), req.fps, display_upscale(frames), preset=COLUMN_PRESET
            )
        return Result(
            frames,
            time.perf_counter() - start,
            clock["first"],
            clock["previews"],
            run["sampler"],
            path,
            model_seconds,
        )

    def generate(
        self, req: Request, device: str | None = None, previews: bool = False, video: bool = False
    ) -> Result:
        """The final result of `stream` (by default without previews or an mp4)."""
        for event in self.stream(req, device, previews, video):
            if isinstance(event, Result):
                return event
        raise RuntimeError("generation ended without a result")

    def clip_size(self, teacher: str = "embedded") -> int:
        """The side in pixels of the clips `teacher` makes (and of the references it reads);
        read from its configs, nothing loaded."""
        return self.catalog.clip_size(teacher)

    def reference_clip(
        self, path, teacher: str = "embedded", limits: UploadLimits = UploadLimits()
    ) -> np.ndarray:
        """An uploaded clip as `teacher` reads it (load_reference), decoded once per content:
        the upload preview's result (or its UploadError) is what the transfer then uses."""
        size = self.clip_size(teacher)
        if (
            not path
            or not os.path.isfile(path)
            or not 0 < os.path.getsize(path) <= limits.max_bytes
        ):
            return load_reference(path, TRANSFER_FRAMES, size, limits)  # its message, at once
        key = (_content_hash(path), TRANSFER_FRAMES, size, limits)
        with self._decode_lock:
            if key not in self._references:
                try:
                    self._references[key] = load_reference(path, TRANSFER_FRAMES, size, limits)
                except UploadError as err:
                    self._references[key] = str(err)
                while len(self._references) > MAX_REFERENCES:
                    self._references.popitem(last=False)
            self._references.move_to_end(key)
            clip = self._references[key]
        if isinstance(clip, str):
            raise UploadError(clip)
        return clip

    def teacher_baseline_seconds(
        self,
        teacher: str,
        frames: int,
        guidance: float = 5.0,
        device: str | None = None,
        run: Callable[[Request], Result] | None = None,
        window_stride: int | None = None,
    ) -> float:
        """Wall time of the teacher's 50-step DDIM with CFG as a column runs it (previews and
        mp4 included), measured once per setting here (the newest MAX_BASELINES kept). `run`
        is how the caller's columns run a request to its result (the page's also writes every
        preview out), so the baseline pays what the columns pay; by default, `generate` with
        previews and the mp4."""
        device, _ = default_device_dtype(device)
        key = (teacher, frames, guidance, device_key(device), window_stride)
        run = run or (lambda req: self.generate(req, device, True, True))
        with self._baselines_lock:
            if key not in self._baselines:
                req = Request(
                    DEFAULT_PROMPT,
                    TEACHER_MODEL,
                    BASELINE_STEPS,
                    0,
                    frames,
                    guidance,
                    teacher,
                    window_stride=window_stride,
                )
                self._baselines[key] = run(req).seconds
                while len(self._baselines) > MAX_BASELINES:
                    self._baselines.popitem(last=False)
            self._baselines.move_to_end(key)
            return self._baselines[key]

    def run_transfer(self, req: TransferRequest, baseline: bool = True, progress=None) -> dict:
        """Transfer the clip's motion (and, with `baseline`, the same seed without it) under the
        device lock. Returns the reference frames, the results, their measured seconds and
        their motion fidelity to the reference. Bad knobs raise PipelineInputError, a bad clip
        UploadError."""
        cfg = check_transfer_request(req)
        reference = self.reference_clip(req.reference, req.teacher)  # CPU: outside the lock
        out = {"reference": reference}
        device, dtype = default_device_dtype()
        with self.device_lock(device):
            pipe = self.catalog.load_pipeline(req.teacher, device, dtype)
            self.catalog.use_student(pipe, req.teacher, req.student)
            t0 = time.perf_counter()
            out["transferred"], out["info"] = transfer(
                pipe,
                req.prompt,
                reference,
                cfg,
                req.student,
                cache_dir=ADAPTER_CACHE.path,
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


def _content_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
