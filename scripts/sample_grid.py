"""A grid of one model's samples: the world's five shapes (rows) × four colours (columns).

    python scripts/sample_grid.py --model mcm-laion --steps 4 --out docs/grid-mcm-laion-4step.jpg

Each cell is one clip of "a <colour> <shape> <motion> on a <background> background" (frames
1, 3, 5, 7 side by side, seeded as the evaluation seeds its clips), labelled "shape ok" or
"shape MISSED" by whether the evaluator reads the prompt's shape in it. It prints the
evaluator's reading of the whole grid.
"""

import argparse

import numpy as np
from PIL import Image, ImageDraw

from mcm_demo.app.service import TEACHER_MODEL
from mcm_demo.catalog import Catalog
from mcm_demo.embedded.world.grammar import SHAPES, parse_caption
from mcm_demo.eval.tables import generate_clips
from mcm_demo.metrics.scores import score_clips

COLOURS = ("red", "green", "blue", "yellow")
FRAMES = (0, 2, 4, 6)
LABEL = 14  # px of text above each row
GAP = 6  # px between the colour columns


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mcm-laion", help="a student, or 'teacher'")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--motion", default="moving right")
    p.add_argument("--background", default="white")
    p.add_argument("--guidance", type=float, default=5.0, help="the teacher's CFG scale")
    p.add_argument("--out", default="docs/grid-mcm-laion-4step.jpg")
    args = p.parse_args()

    catalog = Catalog()
    pipe = catalog.load_pipeline("embedded")
    pipe.set_progress_bar_config(disable=True)
    student = None if args.model == TEACHER_MODEL else args.model
    sampler = catalog.use_student(pipe, "embedded", student)
    captions = [
        f"a {c} {s} {args.motion} on a {args.background} background"
        for s in SHAPES
        for c in COLOURS
    ]
    scenes = [parse_caption(c) for c in captions]
    if None in scenes:
        raise SystemExit(f"not a caption of the world: {captions[scenes.index(None)]!r}")
    clips = generate_clips(pipe, scenes, args.steps, sampler, args.guidance, batch=len(scenes))

    evaluator = catalog.load_evaluator()
    shape_read = [
        score_clips(evaluator, clips[i : i + 1], scenes[i : i + 1]).accuracy["shape"]
        for i in range(len(scenes))
    ]
    whole = score_clips(evaluator, clips, scenes)
    print(
        f"{args.model}, {args.steps} steps, {len(scenes)} clips:",
        {k: round(v, 3) for k, v in whole.accuracy.items()},
        f"watermark {whole.watermark_rate:.3f}",
    )

    h, w = clips.shape[2:4]
    cell_w = w * len(FRAMES) + GAP
    sheet = Image.new("RGB", (cell_w * len(COLOURS) - GAP, (h + LABEL) * len(SHAPES)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, clip in enumerate(clips):
        row, col = divmod(i, len(COLOURS))
        strip = np.concatenate([clip[f] for f in FRAMES], axis=1)
        x, y = col * cell_w, row * (h + LABEL)
        sheet.paste(Image.fromarray((strip * 255).round().astype(np.uint8)), (x, y + LABEL))
        mark = "shape ok" if shape_read[i] == 1.0 else "shape MISSED"
        draw.text((x + 3, y + 1), f"{COLOURS[col]} {SHAPES[row]}  {mark}", fill="black")
    sheet.save(args.out, quality=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
