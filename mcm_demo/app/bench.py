"""The app's columns timed end to end: first preview, result, speedup over the teacher."""

from __future__ import annotations

import time

import numpy as np

from ..catalog import DEFAULT_PROMPT
from .service import BASELINE_STEPS, TEACHER_MODEL, Preview, Request, Result, Service


def bench_stream(
    svc: Service,
    models,
    steps_list,
    teacher: str = "embedded",
    repeats: int = 3,
    guidance: float = 5.0,
    frames: int = 8,
    log=print,
) -> dict:
    """The app's timings, measured side by side in one run (settings interleaved, medians):
    time to the first preview and end to end with per-step previews, as a column runs them,
    and the model time without preview decoding, against the teacher's 50-step DDIM + CFG."""
    prompt = DEFAULT_PROMPT

    def once(model: str, steps: int, seed: int) -> tuple[float, float, float]:
        t0, first = time.perf_counter(), None
        for event in svc.stream(Request(prompt, model, steps, seed, frames, guidance, teacher)):
            if isinstance(event, Preview) and first is None:
                first = time.perf_counter() - t0
            if isinstance(event, Result):
                return first, time.perf_counter() - t0, event.seconds
        raise RuntimeError("no result")

    cells = [(m, s) for m in models for s in steps_list] + [(TEACHER_MODEL, BASELINE_STEPS)]
    for model in dict.fromkeys(m for m, _ in cells):  # warm-up: load adapters, first-call costs
        once(model, 1, 0)
    runs = {c: [] for c in cells}
    for r in range(repeats):
        for cell in cells:
            runs[cell].append(once(*cell, seed=r))
    med = {
        c: tuple(float(np.median([run[i] for run in v])) for i in range(3)) for c, v in runs.items()
    }
    base = med[(TEACHER_MODEL, BASELINE_STEPS)]
    log(
        f"{teacher} teacher, {frames} frames, medians of {repeats} interleaved runs; previews "
        "decoded every step"
    )
    log(
        "| model | steps | first preview s | end to end s | model time s | speedup vs teacher "
        "DDIM-50 + CFG |"
    )
    log("|---|---|---|---|---|---|")
    for (model, steps), (first, e2e, model_s) in med.items():
        log(
            f"| {model} | {steps} | {first:.3f} | {e2e:.3f} | {model_s:.3f} | "
            f"{base[2] / model_s:.1f}× (model time), {base[1] / e2e:.1f}× (end to end) |"
        )
    return {
        f"{m}@{s}": dict(zip(("first_preview", "end_to_end", "model_time"), v))
        for (m, s), v in med.items()
    }
