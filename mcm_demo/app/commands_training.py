"""The training subcommands (`train`, `distill`, `ablation`): parsed flags → the training
library. Apart from `commands.py` so the serving commands never import training."""

from __future__ import annotations

import dataclasses

import torch

from ..data import DataSetError
from ..eval.tables import run_sampler_table
from ..pipeline import PipelineInputError
from ..train.ablations import ROWS, format_ablation_tables, row_config, row_folder
from ..train.checkpoint import export_adapter, save_snapshot
from ..train.clips import DataConfig
from ..train.components import train_component
from ..train.distill import DistillConfig
from ..train.loop import RunConfig, process_state, train_distill
from ..train.preview import PreviewTrainConfig, train_preview
from .commands import _catalog


def cmd_train(args) -> int:
    if args.what == "snapshot":
        state = save_snapshot(f"{args.run_dir}/unet", args.out)
        print(f"wrote the step-{state['step']} snapshot of {args.run_dir} to {args.out}")
        return 0
    weights = _catalog(args).weights_dir
    if args.what == "preview":
        cfg = PreviewTrainConfig(seed=args.seed, **({"steps": args.steps} if args.steps else {}))
        catalog = _catalog(args)
        pipe = _teacher_for_training(args, "embedded")
        train_preview(pipe, catalog.load_evaluator(), str(args.out or weights / "preview"), cfg)
        return 0

    try:
        _train_component(args, weights)
    except DataSetError as err:
        raise PipelineInputError(str(err)) from None
    return 0


def _train_component(args, weights) -> None:
    default_out = {
        "teacher": weights / "teacher",
        "evaluator": weights / "evaluator",
        "vae": f"{args.run_dir}/vae/export",
        "vae-decoder": f"{args.run_dir}/vae-decoder/export",
    }
    train_component(
        args.what,
        out=str(args.out or default_out[args.what]),
        steps=args.steps,
        run_dir=args.run_dir,
        seed=args.seed,
        object_weight=args.object_weight,
        init_unet=args.init_unet,
        size=args.size,
        high_noise_share=args.high_noise_share,
        spatial_positions=args.spatial_positions,
        plain_levels=args.plain_levels,
        text_embedding_std=args.text_embedding_std,
        lr=args.lr,
        base=args.base,
        image_batch=args.image_batch,
        batch=args.batch,
        num_clips=args.num_clips,
        keep_every=args.keep_every,
        resume_from=args.resume_from,
        data=data_config(args) if args.videos else None,
    )
    return 0


def data_config(args) -> DataConfig:
    """`--videos`, `--images` and the clip flags of `distill` and `train teacher`."""
    return DataConfig(
        videos=args.videos,
        images=getattr(args, "images", None),
        cache_latents=args.cache_latents,
        num_frames=getattr(args, "num_frames", None),
        frame_stride=args.frame_stride,
        fps=args.fps,
        workers=args.data_workers,
    )


def _teacher_for_training(args, teacher: str):
    """The teacher a distillation run trains a LoRA on: fp32 on the CPU."""
    return _catalog(args).load_pipeline(teacher, device="cpu", dtype=torch.float32)


def cmd_distill(args) -> int:
    name = args.name or ("lcm" if args.method == "lcm" else f"mcm-{args.variant}")
    overrides = {
        k: v
        for k, v in dict(
            motion=args.motion,
            adversarial=args.adversarial,
            lambda_real=args.lambda_real,
            adv_loss=args.adv_loss,
            adv_weight=args.adv_weight,
            adv_frames=args.adv_frames,
            adv_timestep_weighting=args.adv_timestep_weighting,
            adv_per_patch=args.adv_per_patch,
            adv_whole_frame=args.adv_whole_frame,
            adv_mismatch=args.adv_mismatch,
            adv_mismatch_word=args.adv_mismatch_word,
            adv_whole_sampled_every=args.adv_whole_sampled_every,
            adv_whole_box=args.adv_whole_box,
            adv_whole_weight=args.adv_whole_weight,
            gp_weight=args.gp_weight,
            init_from=args.init_from,
            disc_lr=args.disc_lr,
            steps=args.steps,
            batch=args.batch,
            rank=args.rank,
            lr=args.lr,
            backbone=args.backbone,
            num_clips=args.num_clips,
            latents=args.latents,
            snapshot_every=args.snapshot_every,
            save_every=args.save_every,
        ).items()
        if v is not None
    }
    cfg = DistillConfig.preset(
        args.method,
        teacher=args.teacher,
        variant=args.variant,
        adapter_name=name,
        seed=args.seed,
        run_dir=args.run_dir or f"runs/distill/{name}",
        **overrides,
    )
    data = data_config(args)
    run = RunConfig(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
        checkpoints_total_limit=args.checkpoints_total_limit,
        validation_every=args.validation_every,
        validation_prompts=tuple(args.validation_prompt),
        report_to=args.report_to,
    )
    if process_state().is_main_process:
        print("distilling with", {k: v for k, v in dataclasses.asdict(cfg).items()})
    try:
        train_distill(cfg, _teacher_for_training(args, cfg.teacher), data, run)
    except DataSetError as err:
        raise PipelineInputError(str(err)) from None
    if args.out and process_state().is_main_process:
        export_adapter(cfg.run_dir, args.out)
        print(f"wrote {args.out}")
    return 0


def cmd_ablation(args) -> int:
    if args.action == "train":
        overrides = {"latents": args.latents} if args.latents else {}
        for row in args.rows or list(ROWS):
            cfg = row_config(row, args.steps, args.batch, args.root, seed=args.seed, **overrides)
            train_distill(cfg, _teacher_for_training(args, cfg.teacher))
        return 0
    if (
        args.action == "show"
    ):  # the tables from saved `eval --json` files (rows may be split across runs)
        import json

        if not args.rows:
            raise PipelineInputError(
                "ablation show prints the tables from `ablation eval --json` files: "
                "pass one or more, e.g. `ablation show runs/ablation/eval.json`"
            )
        results = {"rows": {}}
        for path in args.rows:
            try:
                with open(path) as f:
                    part = json.load(f)
                rows = part["rows"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise PipelineInputError(
                    f"{path} is not an `ablation eval --json` file ({err!r})"
                ) from None
            results = {**part, "rows": {**results["rows"], **rows}}
        print(format_ablation_tables(results))
        return 0

    rows = args.rows or list(ROWS)
    samplers = [f"{row}={row_folder(row, args.root)}" for row in rows]
    results = run_sampler_table(
        _catalog(args),
        samplers,
        [1, 2, 4, 8],
        num_clips=args.num_clips,
        batch=args.batch_eval,
        guidance=args.guidance,
        teacher=args.teacher,
        fid_variants=[],
        log=print,
    )
    results["budget"] = f"{args.steps} steps × batch {args.batch} of distillation"
    print(format_ablation_tables(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0
