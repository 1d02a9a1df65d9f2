"""The evaluator's acceptance numbers: per-style accuracy on held-out real clips, the
watermark detector, and motion accuracy with the frames shuffled (it must read order).

    python scripts/check_evaluator.py [weights/evaluator] [--clips 256]
"""

import argparse

import numpy as np

from mcm_demo.embedded.world import STYLES
from mcm_demo.metrics import ToyEvaluator
from mcm_demo.metrics.scores import reference_clips, score_clips


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folder", nargs="?", default="weights/evaluator")
    p.add_argument("--clips", type=int, default=256)
    args = p.parse_args()
    evaluator = ToyEvaluator.from_pretrained(args.folder).eval()
    for style in STYLES:
        clips, scenes = reference_clips(args.clips, seed=777, style=style)
        ordered = score_clips(evaluator, clips, scenes)
        rng = np.random.default_rng(0)
        shuffled = score_clips(
            evaluator, np.stack([c[rng.permutation(len(c))] for c in clips]), scenes
        )
        print(
            style,
            {k: round(v, 3) for k, v in ordered.accuracy.items()},
            f"watermark {ordered.watermark_rate:.3f} | shuffled: motion "
            f"{shuffled.accuracy['motion']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
