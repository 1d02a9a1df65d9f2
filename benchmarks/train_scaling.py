"""Distillation throughput on 1 and 2 processes: how `accelerate launch` scales the MCM loop.

Each configuration runs the real command (`python -m mcm_demo distill`, or `accelerate launch
--multi_gpu --num_processes N -m mcm_demo distill`, which on a machine without CUDA starts
torchrun's processes on gloo) on the embedded teacher with the same per-process batch, and
reads its own log: samples per second over the steps after the warm-up, side by side in one
run. `PxT` is P processes × T threads each.

    python benchmarks/train_scaling.py                        # 1x1, 2x1, 1x2 (about 8 min)
    python benchmarks/train_scaling.py --configs 1x1 2x1 --steps 20 --json scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

STEP_LINE = re.compile(r"step (\d+)/\d+ .* ([\d.]+)s$")


def command(processes: int, flags: list[str]) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "mcm_demo", "distill", *flags]
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    launch += ["--num_processes", str(processes), "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    return [*launch, "-m", "mcm_demo", "distill", *flags]


def run(processes: int, threads: int, args, root: str) -> dict:
    flags = ["--method", args.method, "--variant", args.variant, "--batch", str(args.batch)]
    flags += ["--steps", str(args.steps), "--latents", os.path.join(root, "latents.safetensors")]
    flags += ["--num-clips", str(args.num_clips), "--save-every", str(args.steps)]
    flags += ["--run-dir", os.path.join(root, f"run-{processes}x{threads}")]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        command(processes, flags), env=env, capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"{processes}x{threads} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    times = {int(m[1]): float(m[2]) for m in map(STEP_LINE.search, out.stdout.splitlines()) if m}
    first, last = args.warmup, args.steps
    seconds = times[last] - times[first]
    samples = (last - first) * args.batch * processes
    return {
        "config": f"{processes}x{threads}",
        "processes": processes,
        "threads": threads,
        "samples_per_second": samples / seconds,
        "seconds_per_step": seconds / (last - first),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["1x1", "2x1", "1x2"])
    p.add_argument("--method", default="mcm")
    p.add_argument("--variant", default="laion")
    p.add_argument("--batch", type=int, default=8, help="per process")
    p.add_argument("--steps", type=int, default=40, help="a multiple of 10 (the log's period)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--num-clips", type=int, default=256, help="world clips cached for the run")
    p.add_argument("--json")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as root:
        for config in args.configs:
            processes, threads = map(int, config.split("x"))
            results.append(run(processes, threads, args, root))
            print(
                f"{config}: {results[-1]['samples_per_second']:.2f} samples/s "
                f"({results[-1]['seconds_per_step']:.2f} s a step of {args.batch} per process)",
                flush=True,
            )
    base = results[0]["samples_per_second"]
    for r in results:
        r["ratio"] = r["samples_per_second"] / base
        print(f"{r['config']}: {r['ratio']:.2f}x of {results[0]['config']}")
    report = {"results": results, "args": vars(args), "cpus": os.cpu_count()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
