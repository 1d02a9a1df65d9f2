"""Wall time of the teacher's sampler per step count, measured side by side in one run."""

from __future__ import annotations

import time

import numpy as np
import torch

from ..catalog import DEFAULT_PROMPT


def bench_steps(pipe, steps_list, repeats: int = 3, guidance: float = 5.0, log=print) -> dict:
    """Wall time of one clip per step count, interleaved so drift hits every setting alike."""
    prompt = DEFAULT_PROMPT
    pipe(prompt, num_inference_steps=2, guidance_scale=guidance)  # warm-up
    times = {s: [] for s in steps_list}
    for r in range(repeats):
        for s in steps_list:
            t0 = time.perf_counter()
            pipe(
                prompt,
                num_inference_steps=s,
                guidance_scale=guidance,
                generator=torch.Generator().manual_seed(r),
            )
            times[s].append(time.perf_counter() - t0)
    med = {s: float(np.median(v)) for s, v in times.items()}
    slowest = max(steps_list)
    for s in steps_list:
        log(
            f"{s:3d} steps (DDIM, CFG {guidance}): median {med[s]:.3f}s over {repeats} runs; "
            f"{slowest}-step time / this = {med[slowest] / med[s]:.1f}x"
        )
    return med
