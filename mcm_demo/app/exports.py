"""A comparison or a motion transfer as one labelled side-by-side video: the panels, their
labels and the caption, the same on the page and from the CLI (`side_by_side` draws them)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..catalog import TEACHERS
from ..side_by_side import Export, Panel, export_side_by_side


@dataclasses.dataclass(frozen=True)
class SideBySide:
    """What an export needs, kept by the page between the comparison and its export."""

    panels: tuple[Panel, ...]
    caption: str
    fps: float = 8.0


def steps_text(steps: int) -> str:
    return f"{steps} step{'s' * (steps != 1)}"


def column_panel(label: str, frames: np.ndarray, steps: int, seconds: float) -> Panel:
    """One column of a comparison: its model, step count and measured wall time."""
    return Panel(frames, label, f"{steps_text(steps)} · {seconds:.2f} s measured")


def comparison_caption(prompt: str, seed: int, teacher: str = "embedded") -> str:
    which = "" if teacher == "embedded" else f" · {TEACHERS[teacher].label}"
    return f'"{prompt}" · seed {seed}{which}'


def transfer_side_by_side(
    out: dict, prompt: str, method: str, student_label: str, steps: int, seed: int
) -> SideBySide:
    """reference | transferred | the same seed without transfer, from `Service.run_transfer`."""
    panels = [Panel(out["reference"], "Reference", "the motion to follow")]
    panels.append(
        Panel(
            out["transferred"],
            f"{method} transfer · {student_label}",
            f"{steps_text(steps)} · {out['transferred_seconds']:.2f} s · "
            f"motion fidelity {out['transferred_fidelity']:.2f}",
        )
    )
    if "baseline" in out:
        panels.append(
            Panel(
                out["baseline"],
                "Same seed, no transfer",
                f"{out['baseline_seconds']:.2f} s · motion fidelity {out['baseline_fidelity']:.2f}",
            )
        )
    return SideBySide(tuple(panels), f'"{prompt}" · seed {seed}')


def write_side_by_side(
    job: SideBySide, mp4_path: str, gif_path: str | None = None
) -> tuple[Export, float]:
    """Write the mp4 (and GIF); returns the files and the seconds it took, measured."""
    t0 = time.perf_counter()
    export = export_side_by_side(list(job.panels), job.caption, mp4_path, gif_path, job.fps)
    return export, time.perf_counter() - t0
