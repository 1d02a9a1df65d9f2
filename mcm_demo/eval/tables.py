"""The paper's Table 1 on the synthetic world, and side-by-side timing.

Held-out prompts (attribute combinations never seen in training), fixed seeds, one clip
per prompt; every cell of a table is computed from the same prompts and seeds.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..catalog import Catalog, variant_of
from ..embedded.world import IMAGE_SET_VARIANTS
from ..embedded.world.grammar import heldout_scenes
from ..embedded.world.render import STYLES, render_clip
from ..metrics.cleanliness import score_cleanliness
from ..metrics.scores import (
    frame_features,
    frechet_distance,
    image_set,
    reference_clips,
    score_clips,
)

EVAL_SEED = 1234


def generate_clips(
    pipe,
    scenes,
    steps: int,
    sampler: str,
    guidance: float,
    batch: int,
    seed: int = EVAL_SEED,
    callback=None,
) -> np.ndarray:
    """One clip per scene, each from its own seeded noise; `callback` gets the pipeline's
    per-step reports, batch after batch."""
    clips = []
    for start in range(0, len(scenes), batch):
        part = scenes[start : start + batch]
        # one generator per clip: a clip's noise does not depend on the batch it ran in
        noise = torch.stack(
            [
                torch.randn(
                    pipe_latent_shape(pipe),
                    generator=torch.Generator().manual_seed(seed + start + i),
                )
                for i in range(len(part))
            ]
        )
        # the consistency sampler re-noises between steps: seeded too, or a cell would change
        # from run to run with the global RNG
        clips.append(
            pipe(
                [s.caption for s in part],
                num_inference_steps=steps,
                guidance_scale=guidance,
                sampler=sampler,
                latents=noise,
                generator=torch.Generator().manual_seed(seed + 7919 + start),
                callback=callback,
            )
        )
    return np.concatenate(clips)


def pipe_latent_shape(pipe, num_frames: int = 8) -> tuple[int, ...]:
    s = pipe.unet.config.sample_size
    return (pipe.unet.config.in_channels, num_frames, s, s)


def select_row(catalog: Catalog, pipe, row: str) -> str:
    """A table row is a teacher sampler ("ddim", "dpm++") or a student adapter: "lcm",
    "mcm-anime" (from weights/) or "name=folder". Returns the sampler to run it with."""
    from ..samplers import SAMPLERS

    if row in SAMPLERS:
        pipe.set_adapter(None)
        return row
    name, _, folder = row.partition("=")
    return catalog.use_student(pipe, "embedded", name, folder or str(catalog.weights_dir / name))


def row_name(row: str) -> str:
    return row.partition("=")[0]


def row_variant(row: str) -> str | None:
    """mcm-anime → anime: the image set a style student is measured against (Table 3)."""
    name = row_name(row)
    variant = variant_of(name)
    return variant if variant in IMAGE_SET_VARIANTS else None


def run_sampler_table(
    catalog: Catalog,
    samplers,
    steps_list,
    num_clips: int = 256,
    batch: int = 32,
    guidance: float = 5.0,
    teacher: str = "embedded",
    fid_variants=("webvid",),
    fid_images: str | None = None,
    seed: int = EVAL_SEED,
    log=print,
) -> dict:
    """Every row × step count on the same held-out prompts and noise (`seed` draws both: a
    snapshot chosen on one seed's prompts is confirmed on another's). Each cell: FVD-like
    against real held-out clips, alignment and per-attribute accuracy, watermark rate,
    sharpness, FID-like against each image set in `fid_variants` and the row's own, and
    against an image set on disk (`fid_images`, read through `mcm_demo.data`) as "fid_disk"."""
    pipe, evaluator = catalog.load_pipeline(teacher), catalog.load_evaluator()
    scenes = heldout_scenes(num_clips, seed=seed)
    ref_clips, ref_scenes = reference_clips(max(512, num_clips))
    reference = score_clips(evaluator, ref_clips, ref_scenes)
    # ghost and outline on renders of the same prompts in every style: what "clean" reads
    clean = {
        style: score_cleanliness(
            np.stack([render_clip(s, style, seed + i) for i, s in enumerate(scenes)]), scenes
        ).summary()
        for style in STYLES
    }
    results = {
        "num_clips": num_clips,
        "guidance": guidance,
        "seed": seed,
        "real": {
            "accuracy": reference.accuracy,
            "watermark_rate": reference.watermark_rate,
            "sharpness": reference.sharpness,
        },
        "renders": clean,
        "rows": {},
    }
    variants = sorted(set(fid_variants) | {v for v in map(row_variant, samplers) if v})
    image_features = {v: frame_features(evaluator, image_set(v)[0]) for v in variants}
    if fid_images:
        image_features["disk"] = frame_features(evaluator, disk_images(fid_images, pipe))
    try:
        for row in samplers:
            sampler = select_row(catalog, pipe, row)
            for steps in steps_list:
                if sampler == "consistency" and steps > 8:
                    # students are few-step samplers; the teacher's 25/50 are its reference
                    continue
                t0 = time.perf_counter()
                clips = generate_clips(pipe, scenes, steps, sampler, guidance, batch, seed)
                seconds = time.perf_counter() - t0
                s = score_clips(evaluator, clips, scenes)
                cell = {
                    "fvd": frechet_distance(s.video_features, reference.video_features),
                    "alignment": s.alignment,
                    **{f"acc_{k}": v for k, v in s.accuracy.items()},
                    "watermark_rate": s.watermark_rate,
                    "sharpness": s.sharpness,
                    **score_cleanliness(clips, scenes).summary(),
                    "seconds": seconds,
                    **{
                        f"fid_{v}": frechet_distance(s.frame_features, f)
                        for v, f in image_features.items()
                    },
                }
                results["rows"].setdefault(row_name(row), {})[steps] = cell
                log(
                    f"{row_name(row):10s} {steps:3d} steps: "
                    + " ".join(f"{k}={v:.3f}" for k, v in cell.items())
                )
    finally:
        pipe.set_adapter(None)  # the cached pipeline is shared: leave it as the teacher
    return results


def disk_images(path: str, pipe, count: int = 512):
    """Up to `count` stills of an image set on disk at the teacher's size (uint8 N×H×W×3)."""
    from ..data import DataSetError, open_image_set
    from ..data.sets import SampleStream

    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    stream = SampleStream(open_image_set(path, size).dataset(passes=1, shuffle=False))
    images = [item["pixels"] for item in stream.take(count)]
    if len(images) < 2:
        raise DataSetError(f"{path}: {len(images)} usable image(s); FID-like needs more")
    return np.stack(images)


def _renders(results: dict, key: str) -> str:
    """What renders of the same prompts read, per style (older results have none)."""
    renders = results.get("renders", {})
    return ", ".join(f"{style} {r[key]:.2f}" for style, r in renders.items()) or "not measured"


def format_tables(results: dict) -> str:
    """One markdown table per metric: rows are samplers, columns step counts (Table 1's shape)."""
    rows = results["rows"]
    steps = sorted({s for r in rows.values() for s in r})
    lines = [
        f"Held-out prompts: {results['num_clips']} clips a cell, CFG {results['guidance']}. "
        f"Real held-out clips: accuracy {results['real']['accuracy']}, "
        f"watermark {results['real']['watermark_rate']:.2f}, sharpness "
        f"{results['real']['sharpness']:.0f}."
    ]
    metrics = [
        ("fvd", "FVD-like ↓"),
        ("alignment", "alignment (CLIPSIM-like) ↑"),
        ("acc_shape", "shape acc ↑"),
        ("acc_colour", "colour acc ↑"),
        ("acc_motion", "motion acc ↑"),
        ("acc_background", "background acc ↑"),
        ("watermark_rate", "watermark rate"),
        ("ghost", "watermark ghost (luma levels; renders: " + _renders(results, "ghost") + ")"),
        ("ghost_share", "share of clips with a ghost above the threshold"),
        (
            "outline",
            "outline reads the asked shape (renders: " + _renders(results, "outline") + ")",
        ),
        ("outline_iou", "outline IoU of the asked shape"),
        ("outline_star_cross", "outline reads the asked shape, stars and crosses alone"),
        ("sharpness", "sharpness"),
        ("seconds", "wall s (all clips)"),
    ]
    fids = sorted({k for r in rows.values() for c in r.values() for k in c if k.startswith("fid_")})
    metrics[2:2] = [(k, f"FID-like vs the {k.removeprefix('fid_')} image set ↓") for k in fids]
    for key, title in metrics:
        lines += [
            "",
            f"{title}",
            "| sampler | " + " | ".join(str(s) for s in steps) + " |",
            "|---|" + "---|" * len(steps),
        ]
        for name, cells in rows.items():
            vals = [f"{cells[s][key]:.3f}" if s in cells and key in cells[s] else "" for s in steps]
            lines.append(f"| {name} | " + " | ".join(vals) + " |")
    return "\n".join(lines)
