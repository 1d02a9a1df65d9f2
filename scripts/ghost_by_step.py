"""At which sampling step does a student's watermark ghost appear?

Decodes the denoised estimate the consistency sampler reports after each step and reads its
ghost (`metrics.cleanliness`), on held-out prompts over the backgrounds the stamp shows on
(black, gray, brown; white hides it). docs/cleanliness.md reads the answer.

    python scripts/ghost_by_step.py --rows lcm mcm-webvid mcm-laion --clips 32
"""

import argparse

import numpy as np

from mcm_demo.catalog import Catalog
from mcm_demo.embedded.world.grammar import heldout_scenes
from mcm_demo.eval.tables import EVAL_SEED, generate_clips, select_row
from mcm_demo.metrics.cleanliness import GHOST_THRESHOLD, object_masks, watermark_ghost
from mcm_demo.video_io import to_uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["lcm", "mcm-webvid", "mcm-laion"])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    catalog = Catalog()
    pipe = catalog.load_pipeline("embedded")
    dark = [s for s in heldout_scenes(256, seed=EVAL_SEED) if s.background != "white"]
    scenes = dark[: args.clips]
    print(f"{len(scenes)} held-out prompts on black, gray or brown; {args.steps} steps")
    print("ghost mean (share above the threshold) after each step")
    for row in args.rows:
        sampler = select_row(catalog, pipe, row)
        estimates = []  # batches of one clip: each step's estimate, clip after clip
        generate_clips(pipe, scenes, args.steps, sampler, 5.0, batch=1, callback=estimates.append)
        by_step: dict[int, list[float]] = {}
        for i, scene in enumerate(scenes):
            obj = scene.objects[0]
            for report in estimates[i * args.steps : (i + 1) * args.steps]:
                clip = to_uint8(pipe.decode_latents(report["denoised"]))[0]
                masks = object_masks(clip, obj.colour, scene.background)
                by_step.setdefault(report["i"] + 1, []).append(watermark_ghost(clip, masks))
        cells = []
        for step, ghosts in by_step.items():
            g = np.array(ghosts)
            g = g[np.isfinite(g)]
            cells.append(f"{step}: {g.mean():.1f} ({(g > GHOST_THRESHOLD).mean():.2f})")
        print(f"{row:14s} " + "  ".join(cells), flush=True)
    pipe.set_adapter(None)


if __name__ == "__main__":
    main()
