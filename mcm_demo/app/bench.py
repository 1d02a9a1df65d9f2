"""The app's columns timed as the user waits for them, and how close each is to its limit.

`bench_stream` runs every (model, steps) cell through the page's own column (`run_column`:
`Service.stream` with a preview at every step, each written out as the page shows it, and
the mp4), in one process with the cells interleaved and medians over repeats. The speedup is
the teacher's DDIM-50 + CFG time over the cell's, both from the start to the mp4: the ratio
the page shows.

The **evaluation-count limit** of a cell is the speedup it would have if a student cost only
its UNet calls and the unavoidable fixed costs: (F_teacher + 50 · c2) / (F_student + N · c1),
with c2 and c1 one bare UNet call at batch 2 (CFG) and batch 1, and F the text encoding, the
final VAE decode and the mp4 — each measured in the same run, interleaved with the cells.
"""

from __future__ import annotations

import os
import platform
import tempfile
import threading
import time

import numpy as np
import torch

from ..catalog import DEFAULT_PROMPT, default_device_dtype
from ..video_io import display_upscale, write_mp4
from .handlers import run_column
from .service import (
    BASELINE_STEPS,
    COLUMN_PRESET,
    CPU_THREADS,
    TEACHER_MODEL,
    Request,
    Service,
    use_worker_threads,
)


def _reset_peak_rss() -> None:
    """Linux lets a process reset its resident high-water mark (proc(5), clear_refs "5")."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _parts(svc: Service, teacher: str, frames: int, out_dir: str) -> dict:
    """One timing of each piece the limit is made of, on the bare teacher, on a worker thread
    set up as a generation's is (the threads a UNet call runs on change its cost)."""
    out = {}

    def work():
        use_worker_threads(default_device_dtype()[0])
        with svc.device_lock(default_device_dtype()[0]):
            out.update(_time_parts(svc, teacher, frames, out_dir))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return out


def _time_parts(svc: Service, teacher: str, frames: int, out_dir: str) -> dict:
    pipe = svc.catalog.load_pipeline(teacher)
    svc.catalog.use_student(pipe, teacher, None)
    x = torch.randn(1, pipe.unet.config.in_channels, frames, *(pipe.unet.config.sample_size,) * 2)
    text1 = pipe.encode_prompt([DEFAULT_PROMPT])
    text2 = torch.cat([pipe.encode_prompt([""]), text1])
    clip = pipe.decode_latents(x)[0]
    with torch.no_grad():
        return {
            "unet_batch1": _timed(lambda: pipe.unet(x, torch.tensor([999]), text1)),
            "unet_batch2": _timed(
                lambda: pipe.unet(torch.cat([x, x]), torch.tensor([999, 999]), text2)
            ),
            "text_1": _timed(lambda: pipe.encode_prompt([DEFAULT_PROMPT])),
            "text_2": _timed(lambda: pipe.encode_prompt(["", DEFAULT_PROMPT])),
            "final_decode": _timed(lambda: pipe.decode_latents(x)),
            "mp4": _timed(
                lambda: write_mp4(
                    clip,
                    os.path.join(out_dir, "p.mp4"),
                    8,
                    display_upscale(clip),
                    preset=COLUMN_PRESET,
                )
            ),
        }


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
    """Time every cell side by side (interleaved, medians of `repeats`); print the table the
    page's figures come from and return it as a dict (the `--json` form)."""

    def once(model: str, steps: int, seed: int) -> dict:
        _reset_peak_rss()
        t0, first = time.perf_counter(), None
        column = (None, None, "no result", None)  # (preview, video, status, result)
        req = Request(DEFAULT_PROMPT, model, steps, seed, frames, guidance, teacher)
        # the page's own column: each preview is written out as its filmstrip while the
        # worker goes on, and that work shares the cores with the generation
        for column in run_column(svc, req):
            result = column[3]
            if first is None:
                first = time.perf_counter() - t0  # from the click: hand-offs and lock included
            if result is not None:
                return {
                    "end_to_end": result.seconds,  # the page's figure
                    "caller_wall": time.perf_counter() - t0,  # + the worker thread's hand-offs
                    "first_preview": first,
                    "model_time": result.model_seconds,
                    "previews": result.preview_seconds,
                    "peak_rss_mb": _peak_rss_mb(),
                }
        raise RuntimeError(f"{model} at {steps} steps made no clip: {column[2]}")

    teacher_cell = (TEACHER_MODEL, BASELINE_STEPS)
    # step counts outermost, so consecutive cells are different models and each switches
    # adapters first, as the page's LCM | MCM columns do at every click
    cells = [(m, s) for s in steps_list for m in models if m != TEACHER_MODEL] + [teacher_cell]
    for model in dict.fromkeys(m for m, _ in cells):  # warm-up: load adapters, first-call costs
        once(model, 1, 0)
    runs = {c: [] for c in cells}
    parts = []
    with tempfile.TemporaryDirectory() as out_dir:
        _parts(svc, teacher, frames, out_dir)  # warm-up
        for r in range(repeats):
            for cell in cells:
                runs[cell].append(once(*cell, seed=r))
            parts.append(_parts(svc, teacher, frames, out_dir))
    med = {c: {k: float(np.median([run[k] for run in v])) for k in v[0]} for c, v in runs.items()}
    part = {k: float(np.median([p[k] for p in parts])) for k in parts[0]}
    fixed_student = part["text_1"] + part["final_decode"] + part["mp4"]
    fixed_teacher = part["text_2"] + part["final_decode"] + part["mp4"]
    base = med[teacher_cell]
    for cell, m in med.items():
        m["speedup"] = base["end_to_end"] / m["end_to_end"]
        m["speedup_model_time"] = base["model_time"] / m["model_time"]
        m["limit"] = (
            1.0
            if cell == teacher_cell
            else (fixed_teacher + BASELINE_STEPS * part["unet_batch2"])
            / (fixed_student + cell[1] * part["unet_batch1"])
        )
        m["share_of_limit"] = m["speedup"] / m["limit"]
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads_per_generation": CPU_THREADS,
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    log(
        f"{teacher} teacher, {frames} frames, medians of {repeats} interleaved runs, "
        f"{machine['cores']} cores, {CPU_THREADS} torch thread per generation. End to end = the "
        "start of the request to its mp4, previews at every step (the page's figure)."
    )
    log(
        "| model | steps | first preview s | end to end s | model time s | peak RSS MB | "
        f"speedup vs teacher DDIM-{BASELINE_STEPS} + CFG (end to end) | limit | share of limit "
        "| speedup (model time) |"
    )
    log("|---|---|---|---|---|---|---|---|---|---|")
    for (model, steps), m in med.items():
        first = "—" if m["first_preview"] is None else f"{m['first_preview']:.3f}"
        log(
            f"| {model} | {steps} | {first} | {m['end_to_end']:.3f} | {m['model_time']:.3f} | "
            f"{m['peak_rss_mb']:.0f} | **{m['speedup']:.1f}×** | {m['limit']:.1f}× | "
            f"{m['share_of_limit']:.0%} | {m['speedup_model_time']:.1f}× |"
        )
    log(
        f"Limit parts (medians, same run): UNet call batch 1 {part['unet_batch1']:.4f} s, batch 2 "
        f"{part['unet_batch2']:.4f} s ({part['unet_batch2'] / part['unet_batch1']:.2f}×); text "
        f"{part['text_1']:.4f} / {part['text_2']:.4f} s; final VAE decode "
        f"{part['final_decode']:.4f} s; mp4 {part['mp4']:.4f} s."
    )
    return {
        "machine": machine,
        "teacher": teacher,
        "frames": frames,
        "repeats": repeats,
        "parts": part,
        "cells": {f"{m}@{s}": v for (m, s), v in med.items()},
    }
