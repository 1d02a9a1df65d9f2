"""What the watermark-ghost and outline measures read on the world's own renders.

Clean renders of every style set the floor (ghost about 0, outline 1.00), the low-quality video
set the ceiling, per background (its stamp blends towards white, so white hides it);
`metrics.cleanliness.GHOST_THRESHOLD` is chosen from this table (docs/cleanliness.md).

    python scripts/calibrate_cleanliness.py --clips 256
"""

import argparse

import numpy as np

from mcm_demo.embedded.world.grammar import BACKGROUNDS, SHAPES, heldout_scenes
from mcm_demo.embedded.world.render import STYLES, render_clip
from mcm_demo.metrics.cleanliness import GHOST_THRESHOLD, score_cleanliness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1234, help="the tables' held-out prompts")
    args = parser.parse_args()
    scenes = heldout_scenes(args.clips, seed=args.seed)
    print(f"{args.clips} held-out prompts; ghost threshold {GHOST_THRESHOLD}")
    print("| style | ghost mean | 95th pct | share above | outline | " + " | ".join(SHAPES) + " |")
    for style in STYLES:
        clips = np.stack([render_clip(s, style, args.seed + i) for i, s in enumerate(scenes)])
        scores = score_cleanliness(clips, scenes)
        summary = scores.summary()
        ghost = scores.ghost[np.isfinite(scores.ghost)]
        shapes = [
            scores.outline_right[[s.objects[0].shape == shape for s in scenes]].mean()
            for shape in SHAPES
        ]
        print(
            f"| {style} | {summary['ghost']:.1f} | {np.percentile(ghost, 95):.1f} | "
            f"{summary['ghost_share']:.3f} | {summary['outline']:.3f} | "
            + " | ".join(f"{v:.2f}" for v in shapes)
            + " |"
        )
        if style == "lq":
            for background in BACKGROUNDS:
                on = np.array([s.background == background for s in scenes])
                g = scores.ghost[on & np.isfinite(scores.ghost)]
                print(
                    f"|   lq on {background} | {g.mean():.1f} | {np.percentile(g, 95):.1f} | "
                    f"{(g > GHOST_THRESHOLD).mean():.3f} | | |"
                )


if __name__ == "__main__":
    main()
