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


def round_robin(refs: list[dict]) -> list[dict]:
    """The references one of each kind in turn, so a run cut short still covers every kind."""
    kinds = list(dict.fromkeys(r["kind"] for r in refs))
    by_kind = [[r for r in refs if r["kind"] == k] for k in kinds]
    return [group[i] for i in range(max(map(len, by_kind))) for group in by_kind if i < len(group)]


def evaluate_real_transfer(
    pipe,
    settings: dict[str, TransferConfig],
    refs,
    student: str,
    evaluator,
    log=print,
    after_each=None,
) -> dict:
    """Per setting and per kind of reference: kind agreement, track fidelity, the prompt's
    shape, colour and background, and the seconds per transfer (median). `after_each(table)`
    gets the table so far after every reference (a long run keeps what it has measured)."""
    rows = {name: [] for name in settings}
    for i, ref in enumerate(refs):
        reading = read_motion(ref["clip"])
        prompts = ROTATION_PROMPTS if ref["motion"] == "spinning" else PROMPTS
        for prompt in prompts:
            for name, cfg in settings.items():
                t0 = time.perf_counter()
                frames, _ = transfer(pipe, prompt, ref["clip"], cfg, student)
                seconds = time.perf_counter() - t0
                clip = to_uint8(frames)
                out = read_motion(clip)
                scores = score_clips(evaluator, clip[None], [_target(prompt)]).accuracy
                rows[name].append(
                    dict(
                        kind=ref["kind"],
                        read=out.kind,
                        agrees=out.kind == ref["motion"],
                        fidelity=track_fidelity(reading.track, out.track) if out.usable else 0.0,
                        seconds=seconds,
                        **{a: scores[a] for a in ("shape", "colour", "background")},
                    )
                )
        log(
            f"{i + 1}/{len(refs)} {ref['name']} (read: {reading.kind}): "
            + ", ".join(f"{n} {r[-2]['read']}/{r[-1]['read']}" for n, r in rows.items())
        )
        if after_each is not None:
            after_each(_table(rows))
    return _table(rows)


def _table(rows: dict) -> dict:
    table = {}
    for name, got in rows.items():
        kinds = list(dict.fromkeys(r["kind"] for r in got))
        table[name] = {kind: _summary([r for r in got if r["kind"] == kind]) for kind in kinds}
        table[name]["all"] = _summary(got)
    return table


def _summary(rows: list[dict]) -> dict:
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("shape", "colour", "background")}
    return {
        "count": len(rows),
        "agreement": float(np.mean([r["agrees"] for r in rows])),
        "track_fidelity": float(np.mean([r["fidelity"] for r in rows])),
        **mean,
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
    """Transfer on the real set in `folder` (`limit` references, one of each kind in turn) for
    `settings`; the JSON is rewritten after every reference."""
    refs = round_robin(load_real_set(folder))[:limit]

    def save(table):
        if json_path:
            with open(json_path, "w") as f:
                json.dump(table, f, indent=1)

    table = evaluate_real_transfer(pipe, settings, refs, student, evaluator, log, save)
    log(format_real_table(table, len(refs)))
    return table
