"""The teacher's acceptance numbers: does a sample follow its held-out prompt?

    python scripts/check_teacher.py [weights/teacher] [--clips 256] [--steps 50] [--guidance 5]

Held-out prompts (EVAL_SEED), one clip each, DDIM with CFG; prints per-attribute accuracy,
the watermark rate and, with --caption-probe, how much the prediction follows a swapped
caption.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mcm_demo.catalog import load_evaluator  # noqa: E402
from mcm_demo.evaluation import EVAL_SEED, generate_clips  # noqa: E402
from mcm_demo.metrics.scores import score_clips  # noqa: E402
from mcm_demo.pipeline import TextToVideoPipeline  # noqa: E402
from mcm_demo.toyworld.grammar import heldout_scenes  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folder", nargs="?", default="weights/teacher")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--sampler", default="ddim")
    args = p.parse_args()
    pipe = TextToVideoPipeline.from_pretrained(args.folder)
    scenes = heldout_scenes(args.clips, seed=EVAL_SEED)
    t0 = time.time()
    clips = generate_clips(pipe, scenes, args.steps, args.sampler, args.guidance, batch=32)
    s = score_clips(load_evaluator(), clips, scenes)
    print(f"{args.folder}: {args.clips} held-out clips, {args.sampler} {args.steps} steps, CFG {args.guidance} "
          f"({time.time() - t0:.0f}s)")
    print({k: round(v, 3) for k, v in s.accuracy.items()}, f"watermark {s.watermark_rate:.3f}",
          f"sharpness {s.sharpness:.0f}")


if __name__ == "__main__":
    main()
