"""Measure what the page's side-by-side export and cached examples cost (docs/export.md).

    python scripts/measure_page.py export --runs 4          # comparison, then its export
    python scripts/measure_page.py startup --examples warm  # none | eager | warm
    python scripts/measure_page.py speedups --steps 1 2 4   # the speedups the page displays

`export` runs the page's handler as a click does (both columns, the speedup), then the export
that the page chains after it, and prints both times. `startup` builds and launches the page
and prints how long the launch took; `eager` is Gradio's own caching (all examples inside the
launch), `warm` is app.py's (launch, then `warm_examples` in the background). `speedups`
clicks Generate (the handler) for LCM | MCM-webvid at each step count, nine times (seeds
0–8), and prints the speedups the page shows and their median (the teacher's baseline
measured once, at the first click, as a server does), to set beside `python -m mcm_demo
bench` (docs/performance.md).
"""

import argparse
import os
import re
import tempfile
import time

import numpy as np

from mcm_demo.app import service, ui
from mcm_demo.app.handlers import EXAMPLES, page_baseline_seconds


def measure_export(runs: int) -> None:
    svc = service.Service()
    page_baseline_seconds(svc, "embedded", 8, 5.0)  # measured once per server, not per click
    for seed in range(runs):
        t0 = time.perf_counter()
        args = (EXAMPLES[0], "embedded", "webvid", 4, seed, False, 8, 8, "lcm", "mcm-webvid")
        *_, job = list(ui.compare(svc, *args, 25, 5.0))[-1]
        t1 = time.perf_counter()
        mp4, gif, _ = ui.export_comparison(job)
        t2 = time.perf_counter()
        kb = [os.path.getsize(path) / 1e3 for path in (mp4, gif)]
        print(
            f"seed {seed}: columns + speedup {t1 - t0:.2f} s, then export {t2 - t1:.2f} s "
            f"({kb[0]:.0f} kB mp4, {kb[1]:.0f} kB GIF)"
        )


def measure_speedups(steps_list, clicks: int) -> None:
    svc = service.Service()
    # a server has made its examples by then (app.py): students loaded, baseline measured
    list(
        ui.compare(
            svc, EXAMPLES[0], "embedded", "webvid", 1, 0, False, 8, 8, "lcm", "mcm-webvid", 25, 5.0
        )
    )
    shown = {steps: [] for steps in steps_list}  # per click: {column label: speedup shown}
    for seed in range(clicks):  # step counts interleaved, as the bench's cells are
        for steps in steps_list:
            args = (EXAMPLES[0], "embedded", "webvid", steps, seed, False, 8, 8)
            summary = list(ui.compare(svc, *args, "lcm", "mcm-webvid", 25, 5.0))[-1][7]
            shown[steps].append(dict(re.findall(r"(\S+) \*\*([\d.]+)×\*\*", summary)))
    print(summary.split(":")[0] + ":")
    for steps, per_click in shown.items():
        for label in per_click[0]:
            figures = [float(click[label]) for click in per_click]
            print(
                f"{steps} steps, {label}: median {np.median(figures):.1f}× over {clicks} clicks "
                f"({', '.join(f'{x:.1f}' for x in figures)})"
            )


def measure_startup(examples: str) -> None:
    os.environ["GRADIO_EXAMPLES_CACHE"] = tempfile.mkdtemp(prefix="mcm-demo-examples-")
    t0 = time.perf_counter()
    demo = ui.build_demo(cache_examples=examples != "none")
    if examples == "eager":
        demo.mcm_examples.cache_examples, demo.mcm_examples.cache_mode = True, "eager"
    t1 = time.perf_counter()
    demo.launch(prevent_thread_lock=True, quiet=True, css=ui.PAGE_CSS)
    t2 = time.perf_counter()
    print(f"examples={examples}: build {t1 - t0:.2f} s, launch {t2 - t1:.2f} s")
    if examples == "warm":
        ui.warm_examples(demo).join()
        t3 = time.perf_counter()
        print(f"all {len(EXAMPLES)} examples made {t3 - t2:.2f} s after the launch")
        demo.mcm_examples.load_from_cache(1)
        print(f"a click on a made example: {1000 * (time.perf_counter() - t3):.0f} ms")
    demo.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("export").add_argument("--runs", type=int, default=4)
    sub.add_parser("startup").add_argument(
        "--examples", choices=["none", "eager", "warm"], default="warm"
    )
    speedups = sub.add_parser("speedups")
    speedups.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4])
    speedups.add_argument("--clicks", type=int, default=9, help="clicks per step count")
    args = p.parse_args()
    if args.what == "export":
        measure_export(args.runs)
    elif args.what == "speedups":
        measure_speedups(args.steps, args.clicks)
    else:
        measure_startup(args.examples)


if __name__ == "__main__":
    main()
