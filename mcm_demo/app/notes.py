"""The page's short explanations: what each column is, what a speedup is measured against, what
each transfer method does and how long it takes here. Plain text for the handlers and the UI."""

from __future__ import annotations

import threading

from ..catalog import variant_of
from . import service

# What each image set gives an MCM student's frames (the discriminator calls its stills real).
IMAGE_SETS = {
    "webvid": "frames of the low-quality training videos themselves",
    "laion": "clean, sharp stills",
    "anime": "flat colours and ink outlines",
    "real": "shading, texture and shadows",
    "3d-cartoon": "glossy shading and highlights",
}

SPEEDUP_NOTE = (
    f"Speedup = the teacher's {service.BASELINE_STEPS}-step DDIM with classifier-free guidance "
    "(two network passes a step), measured once on this machine, divided by a column's measured "
    "time."
)

# The paper's competitors on AnimateDiff (competitors.py), as their model cards run them.
COMPETITOR_NOTES = {
    "animatelcm": (
        "*AnimateLCM* (paper's competitor): its own consistency-distilled motion module and "
        "spatial LCM LoRA (weight 0.8), LCM sampling with CFG 2, as its model card runs it."
    ),
    "animatediff-lightning": (
        "*AnimateDiff-Lightning* (paper's competitor): a motion module distilled for 1, 2, 4 or 8 "
        "steps, Euler sampling on trailing timesteps, no CFG, as its model card runs it (asked "
        "for 3, 5, 6 or 7 steps through the API, the nearest checkpoint runs, and its column "
        "says which)."
    ),
}

# Measured on a 2-core CPU at the defaults (README, Motion transfer): the estimate shown until
# this server has timed a run of its own.
CPU_SECONDS = {"fastvmt": 4.6, "vmc_step": 0.38, "sampling": 0.6}


def column_note(model: str, teacher_steps: int | None = None) -> str:
    """One line under a column: which model it is and where its look comes from."""
    if model == service.TEACHER_AT_STEPS:
        return (
            "*The teacher itself at the students' steps*: DDIM with classifier-free guidance at "
            "as many steps as the students take — few-step sampling without any distillation."
        )
    if model in COMPETITOR_NOTES:
        return COMPETITOR_NOTES[model]
    if model == service.TEACHER_MODEL:
        n = f"{teacher_steps} " if teacher_steps else ""
        return (
            f"*The teacher itself*: {n}DDIM steps with classifier-free guidance — the model "
            "both students are distilled from, and the slow path they replace."
        )
    if model == "lcm":
        return (
            "*LCM baseline*: consistency-distilled from the teacher on its low-quality training "
            "videos, so it inherits their blur and watermark."
        )
    variant = variant_of(model)
    if variant not in IMAGE_SETS:  # one of yours (`app.py --adapters DIR`), by its folder's name
        return (
            f"*{model}*: your own student, loaded from its adapter folder "
            "(`app.py --adapters`); how it was distilled is in its distill_config.json."
        )
    return (
        f"*MCM with the {variant} image set*: motion distilled from the videos, frame look "
        f"learned from {IMAGE_SETS.get(variant, 'its image set')} (a discriminator on "
        "those stills)."
    )


class RunTimes:
    """The last measured transfer times on this server, for the method notes (a page owns one;
    the numbers are per server, not per visitor)."""

    def __init__(self):
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def record_transfer(self, method: str, info: dict, seconds: float, tune_steps: int) -> None:
        with self._lock:
            if method == "vmc":
                tuned = info.get("tuning_s", 0.0)
                if tuned > 1.0:  # a cached adapter skips tuning: nothing to learn a step's cost
                    self._seconds["vmc_step"] = tuned / max(1, tune_steps)
                self._seconds["sampling"] = info.get("sampling_s", seconds)
            else:
                self._seconds[method] = seconds

    def estimate(self, key: str) -> tuple[float, bool]:
        """(seconds, measured here?)"""
        with self._lock:
            if key in self._seconds:
                return self._seconds[key], True
        return CPU_SECONDS[key], False


def method_note(method: str, tune_steps: int, times: RunTimes | None = None) -> str:
    """What the chosen transfer method does and how long it will take on this machine."""
    times = times or RunTimes()
    if method == "vmc":
        step, here = times.estimate("vmc_step")
        sampling, _ = times.estimate("sampling")
        total = step * int(tune_steps) + sampling
        where = "measured on this server" if here else "as measured on a 2-core CPU"
        return (
            f"**vmc** tunes a small LoRA on the clip's temporal attention for {int(tune_steps)} "
            f"steps so the student learns its motion, then samples: about **{total:.0f} s** "
            f"({step:.2f} s a tuning step, {where}). A clip tuned before is cached, and then "
            "only the sampling is left."
        )
    seconds, here = times.estimate(method)
    where = "measured on this server" if here else "as measured on a 2-core CPU"
    return (
        "**fastvmt** needs no training: it nudges the starting latent so the attention's motion "
        "flow matches the clip's, then the student samples in a few steps: about "
        f"**{seconds:.1f} s** ({where}; a GPU is far quicker)."
    )
