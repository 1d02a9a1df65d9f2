"""`python -m mcm_demo generate | eval | train | bench`: everything the app does, from a shell."""
from __future__ import annotations

import argparse
import sys
import time

from .pipeline import PipelineInputError

DEFAULT_PROMPT = "a red circle moving left on a black background"


def _generator(seed: int):
    import torch

    if seed < 0:
        raise PipelineInputError(f"Seed must be 0 or more, got {seed}.")
    return torch.Generator().manual_seed(seed)


def cmd_generate(args) -> int:
    from .catalog import load_pipeline
    from .video_io import write_mp4

    if not args.prompt or not args.prompt.strip():
        raise PipelineInputError("The prompt is empty: pass --prompt 'a red circle moving left on a black background'.")
    if args.steps < 1:
        raise PipelineInputError(f"--steps must be 1 or more, got {args.steps}.")
    pipe = load_pipeline(args.teacher)
    t0 = time.perf_counter()
    frames = pipe(args.prompt, num_inference_steps=args.steps, guidance_scale=args.guidance,
                  sampler=args.sampler, num_frames=args.frames, generator=_generator(args.seed))[0]
    seconds = time.perf_counter() - t0
    write_mp4(frames, args.out, fps=args.fps, upscale=args.upscale)
    print(f"wrote {args.out} ({len(frames)} frames, {args.sampler} {args.steps} steps, {seconds:.2f}s)")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import format_tables, run_sampler_table

    results = run_sampler_table(args.samplers, args.steps, num_clips=args.num_clips, batch=args.batch,
                                guidance=args.guidance, teacher=args.teacher, log=print)
    print(format_tables(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def cmd_bench(args) -> int:
    from .evaluation import bench_steps

    bench_steps(args.steps, args.teacher, repeats=args.repeats, guidance=args.guidance, log=print)
    return 0


def cmd_train(args) -> int:
    from .training import train_component

    train_component(args.what, steps=args.steps, out=args.out, run_dir=args.run_dir, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mcm_demo", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="prompt → mp4")
    g.add_argument("--prompt", default=DEFAULT_PROMPT)
    g.add_argument("--teacher", default="embedded")
    g.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++"])
    g.add_argument("--steps", type=int, default=25)
    g.add_argument("--guidance", type=float, default=5.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--frames", type=int, default=8)
    g.add_argument("--fps", type=float, default=8.0)
    g.add_argument("--upscale", type=int, default=4, help="nearest-neighbour enlargement of the mp4")
    g.add_argument("--out", default="clip.mp4")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("eval", help="Table 1 of the paper on the synthetic world (held-out prompts)")
    e.add_argument("--samplers", nargs="+", default=["ddim", "dpm++"])
    e.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 25, 50])
    e.add_argument("--num-clips", type=int, default=256)
    e.add_argument("--batch", type=int, default=32)
    e.add_argument("--guidance", type=float, default=5.0)
    e.add_argument("--teacher", default="embedded")
    e.add_argument("--json", help="also write the numbers here")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="wall time per step count, measured side by side in one run")
    b.add_argument("--steps", nargs="+", type=int, default=[4, 50])
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--guidance", type=float, default=5.0)
    b.add_argument("--teacher", default="embedded")
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser("train", help="rebuild a shipped checkpoint (seeded, resumable)")
    t.add_argument("what", choices=["teacher", "evaluator", "vae", "vae-decoder"],
                   help="teacher = vae → text encoder + UNet → decoder fine-tune → weights/teacher")
    t.add_argument("--steps", type=int, help="override the default number of steps")
    t.add_argument("--out", help="where to write the checkpoint (default: weights/...)")
    t.add_argument("--run-dir", default="runs", help="resumable training state lives here")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PipelineInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a missing checkpoint and the like: say what, not a traceback
        from .catalog import CheckpointMissing

        if isinstance(err, CheckpointMissing):
            print(f"error: {err}", file=sys.stderr)
            return 3
        raise
