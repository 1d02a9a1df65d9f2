"""`python -m mcm_demo` (or `mcm-demo`): everything the app does, from a shell.

Each subcommand's flags are declared here and map one-to-one onto a library call in
`commands.py`; defaults that belong to the library are read from it.
"""

from __future__ import annotations

import argparse
import sys

from ..catalog import DEFAULT_PROMPT, DEFAULT_WEIGHTS, TEACHERS
from ..eval.tables import EVAL_SEED
from ..pipeline import PipelineInputError
from ..transfer.core import START_LOOKS, TransferConfig
from .cli_data import add_data
from .cli_training import add_ablation, add_distill, add_train
from .commands import (
    cmd_bench,
    cmd_compare,
    cmd_eval,
    cmd_eval_transfer,
    cmd_fetch,
    cmd_generate,
    cmd_transfer,
)


def _add_clip_flags(p) -> None:
    p.add_argument(
        "--frames",
        type=int,
        help="default: the teacher's own (8 embedded, 16 ModelScope/AnimateDiff)",
    )
    p.add_argument(
        "--fps", type=float, help="default: the teacher's own (8 embedded, 7 the others)"
    )


PROMPT_HELP = (
    "the prompt; repeat as FRAME:TEXT for prompt travel (e.g. --prompt '0: a red circle "
    "moving right on a black background' --prompt '32: a blue star moving up on a black "
    "background'), the text embeddings interpolated between the frames"
)


def _add_long_video_flags(p) -> None:
    p.add_argument("--prompt", action="append", help=f"{PROMPT_HELP} (default {DEFAULT_PROMPT!r})")
    p.add_argument(
        "--windows",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sample clips longer than the teacher's trained length (8 embedded, 16 ModelScope "
        "and AnimateDiff) in overlapping windows of it (FreeNoise); --no-windows stretches the "
        "embedded UNet's frame-position table over the whole clip instead",
    )
    p.add_argument(
        "--window-stride",
        type=int,
        help="frames between window starts, 1 to the trained window (default: half a window; "
        "3 of 8 narrows the seams at window borders for ~1.2x the time, docs/long-video.md)",
    )


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="prompt → mp4")
    _add_long_video_flags(p)
    p.add_argument("--teacher", default="embedded")
    p.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++"])
    p.add_argument(
        "--adapter", help="sample a distilled student instead: lcm, mcm-<variant> or name=folder"
    )
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    _add_clip_flags(p)
    p.add_argument(
        "--upscale", type=int, default=4, help="nearest-neighbour enlargement of the mp4"
    )
    p.add_argument("--out", default="clip.mp4")
    p.set_defaults(func=cmd_generate)


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "eval", help="Table 1 of the paper on the synthetic world (held-out prompts)"
    )
    p.add_argument(
        "--samplers",
        nargs="+",
        default=["ddim", "dpm++"],
        help="rows: ddim, dpm++ (the teacher), or students: lcm, mcm-<variant> (weights/) or "
        "name=folder",
    )
    p.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 25, 50])
    p.add_argument("--num-clips", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--teacher", default="embedded")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument(
        "--seed",
        type=int,
        default=EVAL_SEED,
        help="draws the held-out prompts and the noise (default %(default)s, the tables' seed); "
        "pick a "
        "snapshot on one seed, confirm it on another",
    )
    p.add_argument(
        "--fid-variants",
        nargs="+",
        default=["webvid"],
        help="image sets for the FID-like columns (an mcm-<variant> row adds its own)",
    )
    p.add_argument(
        "--fid-images",
        metavar="PATH",
        help="also FID-like against an image set on disk (a folder or shards, as distill "
        "--images reads)",
    )
    p.set_defaults(func=cmd_eval)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="the page's columns timed as the user waits (start → mp4, previews on), side by "
        "side in one run, with the speedup over the teacher's DDIM-50 + CFG and its limit",
    )
    p.add_argument("--steps", nargs="+", type=int, help="default 1 2 4 8 (--sampler: 4 50)")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="interleaved runs per cell (medians); docs/performance.md uses 9, which a "
        "0.1-s cell's share of its limit needs on a machine whose speed drifts",
    )
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--teacher", default="embedded")
    p.add_argument(
        "--models",
        nargs="+",
        help="the students to time (default: LCM and every MCM variant of the teacher); the "
        "teacher's DDIM-50 + CFG is always timed",
    )
    p.add_argument(
        "--frames",
        type=int,
        help="default: the teacher's own (8 embedded, 16 ModelScope/AnimateDiff)",
    )
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument(
        "--sampler",
        action="store_true",
        help="time the teacher's DDIM sampler alone per step count instead",
    )
    p.add_argument(
        "--transfer",
        action="store_true",
        help="bench motion transfer instead: end-to-end seconds per "
        "clip of fastvmt, its dense baseline and vmc",
    )
    p.add_argument(
        "--references", type=int, default=3, help="bench --transfer: held-out reference clips"
    )
    p.set_defaults(func=cmd_bench)


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="the app's side-by-side: two models, one prompt and seed → two mp4s"
    )
    _add_long_video_flags(p)
    p.add_argument("--teacher", default="embedded")
    p.add_argument("--left", default="lcm", help="teacher, lcm or mcm-<variant>")
    p.add_argument("--right", default="mcm-webvid")
    p.add_argument("--steps", type=int, default=4, help="student steps (1-8)")
    p.add_argument(
        "--teacher-steps", type=int, default=25, help="DDIM steps when a column is the teacher"
    )
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    _add_clip_flags(p)
    p.add_argument("--out-dir", default="compare", help="each column's own mp4")
    p.add_argument(
        "--out",
        help="also write both columns as one labelled side-by-side mp4 here (and a GIF beside it)",
    )
    _add_gif_flag(p)
    p.set_defaults(func=cmd_compare)


def _add_gif_flag(p) -> None:
    p.add_argument(
        "--gif",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with the side-by-side mp4, also write a looping GIF of it (<out>.gif)",
    )


def _add_transfer(sub) -> None:
    p = sub.add_parser(
        "transfer", help="motion transfer: a reference clip's motion with the prompt's look"
    )
    p.add_argument("--reference", required=True, help="mp4, webm, mov or gif")
    p.add_argument("--prompt", default="a yellow star on a gray background")
    p.add_argument("--method", choices=["fastvmt", "vmc", "none"], default="fastvmt")
    p.add_argument("--student", default="mcm-webvid", help="lcm or mcm-<variant>")
    p.add_argument("--steps", type=int, default=TransferConfig.steps)
    p.add_argument(
        "--strength",
        type=float,
        default=TransferConfig.strength,
        help="start timestep / T (1 = pure noise; default %(default)s)",
    )
    p.add_argument(
        "--inner-iterations",
        type=int,
        default=TransferConfig.inner_iterations,
        help="fastvmt: latent updates at each guided step (default %(default)s)",
    )
    p.add_argument(
        "--tune-steps",
        type=int,
        default=TransferConfig.tune_steps,
        help="vmc: LoRA tuning steps on the clip (default %(default)s)",
    )
    p.add_argument(
        "--motion-prompt", help="vmc: appearance-invariant prompt (default: derived from --prompt)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--start-look",
        choices=START_LOOKS,
        default=TransferConfig.start_look,
        help="layout: the prompt's object along the motion read from the reference (embedded "
        "teacher; others start from the reference); prompt: the reference recoloured to a "
        "one-step sample of the prompt; reference: as it is (default %(default)s)",
    )
    p.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also write the same seed without transfer (<out>-baseline.mp4)",
    )
    p.add_argument("--out", default="transfer.mp4")
    p.add_argument(
        "--side-by-side",
        metavar="PATH",
        help="also write reference | transferred | no transfer as one labelled mp4 (and a GIF)",
    )
    _add_gif_flag(p)
    p.set_defaults(func=cmd_transfer)


def _add_eval_transfer(sub) -> None:
    p = sub.add_parser(
        "eval-transfer",
        help="motion transfer on held-out synthetic references (fidelity, "
        "motion agreement, prompt accuracy, time per clip)",
    )
    p.add_argument(
        "--settings", nargs="+", default=["none", "start-only", "fastvmt", "fastvmt-dense", "vmc"]
    )
    p.add_argument("--num-clips", type=int, default=32)
    p.add_argument("--student", default="mcm-webvid")
    p.add_argument("--teacher", default="embedded")
    p.add_argument("--steps", type=int, default=TransferConfig.steps)
    p.add_argument("--strength", type=float, default=TransferConfig.strength)
    p.add_argument("--inner-iterations", type=int, default=TransferConfig.inner_iterations)
    p.add_argument(
        "--guided-steps",
        type=int,
        default=TransferConfig.guided_steps,
        help="sampling steps the fastvmt guidance runs in (default %(default)s)",
    )
    p.add_argument("--tune-steps", type=int, default=TransferConfig.tune_steps)
    p.add_argument(
        "--start-look",
        choices=START_LOOKS,
        default=TransferConfig.start_look,
        help="the start of settings that do not set it (default %(default)s)",
    )
    p.add_argument(
        "--references",
        help="a folder of real-footage references (scripts/make_real_references.py) to measure "
        "on instead of the synthetic ones; --num-clips caps how many",
    )
    p.add_argument("--json")
    p.set_defaults(func=cmd_eval_transfer)


def _add_fetch(sub) -> None:
    p = sub.add_parser(
        "fetch", help="download a real teacher and its published MCM adapters (huggingface_hub)"
    )
    p.add_argument("teacher", choices=[t for t, spec in TEACHERS.items() if spec.repos])
    p.add_argument(
        "--variant", nargs="*", default=[], help="published adapters to fetch (webvid, laion, …)"
    )
    p.add_argument("--all", action="store_true", help="every published adapter of this teacher")
    p.add_argument(
        "--competitors",
        action="store_true",
        help="also the paper's competitors (AnimateDiff: AnimateLCM, AnimateDiff-Lightning)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the files and their sizes; download nothing"
    )
    p.set_defaults(func=cmd_fetch)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mcm_demo", description=__doc__)
    p.add_argument(
        "--weights",
        default=str(DEFAULT_WEIGHTS),
        help="the folder of the embedded checkpoints (default: the repository's weights/)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    _add_evaluate(sub)
    _add_bench(sub)
    _add_compare(sub)
    _add_transfer(sub)
    _add_eval_transfer(sub)
    _add_fetch(sub)
    add_train(sub)
    add_distill(sub)
    add_ablation(sub)
    add_data(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PipelineInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a missing checkpoint and the like: say what, not a traceback
        from ..catalog import CheckpointMissing

        if isinstance(err, CheckpointMissing):
            print(f"error: {err}", file=sys.stderr)
            return 3
        raise
