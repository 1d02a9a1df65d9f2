"""Motion transfer measured on references made from real photographs (a folder written by
scripts/make_real_references.py: mp4 clips and references.json naming each one's kind and the
motion its subject should show).

Each reference is decoded as an upload is, transferred under every setting with two prompts,
and the output's motion is read back with the same reader as the reference's: the kind
agrees when the output moves as the reference's subject should (a pan to the right: the
object moving left), and the track fidelity compares the two tracks (reading.track_fidelity).
The evaluator reads the output's shape, colour and background against the prompt. Settings
run interleaved per reference, so machine drift hits all alike.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from ..embedded.world.grammar import ObjectSpec, Scene
from ..metrics.scores import score_clips
from ..transfer.core import TransferConfig, transfer
from ..transfer.layout import prompt_look
from ..transfer.reading import read_motion, track_fidelity
from ..video_io import load_reference, to_uint8

# two prompts a reference; a rotation asks for a square (a spinning circle looks still)
PROMPTS = ("a red circle on a white background", "a yellow star on a black background")
ROTATION_PROMPTS = ("a red square on a white background", "a yellow star on a black background")


def load_real_set(folder: str, size: int = 64, frames: int = 8) -> list[dict]:
    """The references of `folder` as the app decodes uploads: name, kind, motion, clip."""
    manifest = os.path.join(folder, "references.json")
    if not os.path.isfile(manifest):
        raise ValueError(
            f"no references.json in {folder}; write the set with "
            "scripts/make_real_references.py --out FOLDER"
        )
    with open(manifest) as f:
        refs = json.load(f)
    return [
        {**r, "clip": load_reference(os.path.join(folder, r["file"]), frames, size)} for r in refs
    ]


def _target(prompt: str) -> Scene:
    shape, colour, background = prompt_look(prompt)
    return Scene(background, (ObjectSpec(shape, colour, "left"),))  # motion is read, not scored


def evaluate_real_transfer(
    pipe, settings: dict[str, TransferConfig], refs, student: str, evaluator, log=print
) -> dict:
    """Per setting and per kind of reference: kind agreement, track fidelity, the prompt's
    shape, colour and background, and the seconds per transfer (median)."""
    rows = {name: [] for name in settings}
    for i, ref in enumerate(refs):
        reading = read_motion(ref["clip"])
        prompts = ROTATION_PROMPTS if ref["motion"] == "spinning" else PROMPTS
        for prompt in prompts:
            for name, cfg in settings.items():
                t0 = time.perf_counter()
                frames, _ = transfer(pipe, prompt, ref["clip"], cfg, student)
                seconds = time.perf_counter() - t0
                out = read_motion(to_uint8(frames))
                rows[name].append(
                    dict(
                        kind=ref["kind"],
                        read=out.kind,
                        agrees=out.kind == ref["motion"],
                        fidelity=track_fidelity(reading.track, out.track) if out.usable else 0.0,
                        clip=to_uint8(frames),
                        target=_target(prompt),
                        seconds=seconds,
                    )
                )
        log(
            f"{i + 1}/{len(refs)} {ref['name']} (read: {reading.kind}): "
            + ", ".join(
                f"{n} {'ok' if r[-1]['agrees'] else r[-1]['kind']}" for n, r in rows.items()
            )
        )
    table = {}
    for name, got in rows.items():
        kinds = list(dict.fromkeys(r["kind"] for r in got))
        table[name] = {
            kind: _summary([r for r in got if r["kind"] == kind], evaluator) for kind in kinds
        }
        table[name]["all"] = _summary(got, evaluator)
    return table


def _summary(rows: list[dict], evaluator) -> dict:
    s = score_clips(evaluator, np.stack([r["clip"] for r in rows]), [r["target"] for r in rows])
    return {
        "count": len(rows),
        "agreement": float(np.mean([r["agrees"] for r in rows])),
        "track_fidelity": float(np.mean([r["fidelity"] for r in rows])),
        "shape": s.accuracy["shape"],
        "colour": s.accuracy["colour"],
        "background": s.accuracy["background"],
        "seconds": float(np.median([r["seconds"] for r in rows])),
    }


def format_real_table(table: dict, count: int) -> str:
    lines = [
        f"{count} references from real photographs, 2 prompts each.",
        "| setting | kind | transfers | kind agrees ↑ | track fidelity ↑ | shape | colour | "
        "background | s / transfer (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, kinds in table.items():
        for kind, r in kinds.items():
            label = f"**{kind}**" if kind == "all" else kind
            lines.append(
                f"| {name} | {label} | {r['count']} | {r['agreement']:.3f} | "
                f"{r['track_fidelity']:.3f} | {r['shape']:.3f} | {r['colour']:.3f} | "
                f"{r['background']:.3f} | {r['seconds']:.2f} |"
            )
    return "\n".join(lines)


def real_transfer_table(
    pipe, settings, folder: str, student: str, evaluator, json_path=None, log=print, limit=None
) -> dict:
    """Transfer on the real set in `folder` (the first `limit` references) for `settings`."""
    refs = load_real_set(folder)[:limit]
    table = evaluate_real_transfer(pipe, settings, refs, student, evaluator, log=log)
    log(format_real_table(table, len(refs)))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(table, f, indent=1)
    return table
