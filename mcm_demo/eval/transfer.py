"""Motion transfer measured on the synthetic world: held-out references whose motion the
prompt does not name.

Each case renders a held-out scene as the reference and asks for a different shape, colour
and background with no motion words. A good transfer keeps the reference's motion (motion
fidelity, and the evaluator's motion class agreeing with the reference's) while shape and
colour follow the prompt. Settings run interleaved per case, so machine drift hits all alike.
"""

from __future__ import annotations

import random
import time

import numpy as np

from ..embedded.world.grammar import BACKGROUNDS, COLOURS, SHAPES, ObjectSpec, Scene, heldout_scenes
from ..embedded.world.render import render_clip
from ..metrics.motion_fidelity import motion_fidelity_of_clips
from ..metrics.scores import score_clips
from ..transfer.core import TransferConfig, transfer

CASE_SEED = 2024


def transfer_cases(count: int, seed: int = CASE_SEED) -> list[tuple[np.ndarray, str, Scene]]:
    """(reference clip, prompt, the scene the output should show) for `count` held-out
    references."""
    rng = random.Random(seed)
    cases = []
    for i, ref in enumerate(heldout_scenes(count, seed=seed)):
        obj = ref.objects[0]
        shape = rng.choice(
            [
                s
                for s in SHAPES
                if s != obj.shape and not (s == "circle" and obj.motion == "spinning")
            ]
        )
        colour = rng.choice([c for c in COLOURS if c != obj.colour])
        background = rng.choice([b for b in BACKGROUNDS if b != ref.background])
        prompt = f"a {colour} {shape} on a {background} background"
        cases.append(
            (
                render_clip(ref, "laion", seed + i),
                prompt,
                Scene(background, (ObjectSpec(shape, colour, obj.motion),)),
            )
        )
    return cases


def evaluate_transfer(
    pipe, settings: dict[str, TransferConfig], cases, student: str, evaluator, log=print
) -> dict:
    """Per setting: motion fidelity, motion-class agreement with the reference, shape and colour
    accuracy against the prompt, and the measured seconds per clip (guidance/tuning included)."""
    outputs = {name: [] for name in settings}
    fidelity = {name: [] for name in settings}
    seconds = {name: [] for name in settings}
    guidance = {name: [] for name in settings}
    for i, (reference, prompt, _) in enumerate(cases):
        for name, cfg in settings.items():
            t0 = time.perf_counter()
            frames, info = transfer(pipe, prompt, reference, cfg, student)
            seconds[name].append(time.perf_counter() - t0)
            guidance[name].append(info["guidance_s"])
            outputs[name].append(frames)
            fidelity[name].append(motion_fidelity_of_clips(reference, frames))
        if (i + 1) % 8 == 0:
            log(
                f"{i + 1}/{len(cases)} cases: "
                + ", ".join(f"{n} MF {np.mean(v):.3f}" for n, v in fidelity.items())
            )
    targets = [case[2] for case in cases]
    table = {}
    for name in settings:
        s = score_clips(evaluator, np.stack(outputs[name]), targets)
        table[name] = {
            "motion_fidelity": float(np.mean(fidelity[name])),
            "motion_agreement": s.accuracy["motion"],
            "shape": s.accuracy["shape"],
            "colour": s.accuracy["colour"],
            "background": s.accuracy["background"],
            "seconds_per_clip": float(np.median(seconds[name])),
            "guidance_seconds": float(np.median(guidance[name])),
        }
    return table


def format_transfer_table(table: dict, count: int) -> str:
    lines = [
        f"{count} held-out references; the prompt names shape, colour and background, not the "
        "motion.",
        "| setting | motion fidelity ↑ | motion class = reference ↑ | shape acc | colour acc | "
        "background acc | "
        "s / clip (median) | of which latent guidance s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in table.items():
        lines.append(
            f"| {name} | {r['motion_fidelity']:.3f} | {r['motion_agreement']:.3f} | "
            f"{r['shape']:.3f} | "
            f"{r['colour']:.3f} | {r['background']:.3f} | {r['seconds_per_clip']:.2f} | "
            f"{r['guidance_seconds']:.2f} |"
        )
    return "\n".join(lines)


TRANSFER_SETTINGS = {  # name → TransferConfig overrides (the must-show rows of the transfer issue)
    "none": dict(method="none"),
    "start-only": dict(method="fastvmt", inner_iterations=0),  # the motion-preserving start alone
    "fastvmt": dict(method="fastvmt"),  # local window + gradient reuse
    "fastvmt-dense": dict(
        method="fastvmt", window=None, reuse_every=1
    ),  # dense, a backward every iteration
    "vmc": dict(method="vmc"),
    # the previous default start: the reference recoloured to a one-step sample's look
    "fastvmt-recoloured": dict(method="fastvmt", start_look="prompt"),
    "vmc-recoloured": dict(method="vmc", start_look="prompt"),
}


def transfer_table(
    pipe,
    names,
    num_clips: int,
    student: str,
    evaluator,
    json_path: str | None = None,
    log=print,
    references: str | None = None,
    **knobs,
) -> dict:
    """Motion transfer on held-out references for the named settings (`pipe` runs `student`);
    logs the table, and the speedup when both fastvmt rows ran. With `references` (a folder
    of scripts/make_real_references.py), on those real-footage references instead."""
    unknown = [n for n in names if n not in TRANSFER_SETTINGS]
    if unknown:
        raise ValueError(
            f"unknown setting {unknown[0]!r}; choose from {', '.join(TRANSFER_SETTINGS)}"
        )
    settings = {n: TransferConfig(**{**knobs, **TRANSFER_SETTINGS[n]}) for n in names}
    if references:
        from .transfer_real import real_transfer_table

        return real_transfer_table(
            pipe, settings, references, student, evaluator, json_path, log, limit=num_clips
        )
    table = evaluate_transfer(
        pipe, settings, transfer_cases(num_clips), student, evaluator, log=log
    )
    log(format_transfer_table(table, num_clips))
    if "fastvmt" in table and "fastvmt-dense" in table:
        fast, dense = table["fastvmt"], table["fastvmt-dense"]
        log(
            f"fastvmt (window + gradient reuse) vs dense every-iteration: "
            f"{dense['guidance_seconds'] / max(fast['guidance_seconds'], 1e-9):.2f}x faster "
            "latent guidance, "
            f"{dense['seconds_per_clip'] / fast['seconds_per_clip']:.2f}x per clip end to end, "
            "motion fidelity "
            f"{fast['motion_fidelity']:.3f} vs {dense['motion_fidelity']:.3f} "
            f"({(fast['motion_fidelity'] / dense['motion_fidelity'] - 1) * 100:+.1f}%), measured "
            "side by side"
        )
    if json_path:
        import json

        with open(json_path, "w") as f:
            json.dump(table, f, indent=1)
    return table
