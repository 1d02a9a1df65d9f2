"""The subcommands of `python -m mcm_demo`: each turns parsed flags into library calls."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import torch

from ..catalog import TEACHERS, Catalog, clip_defaults, fetch, student_names
from ..eval.bench import bench_steps
from ..eval.tables import format_tables, run_sampler_table, select_row
from ..eval.transfer import transfer_table
from ..pipeline import LIMITS, PipelineInputError, check_prompt, check_range, check_seed
from ..train.ablations import ROWS, format_ablation_tables, row_config, row_folder
from ..train.checkpoint import save_snapshot
from ..train.components import train_component
from ..train.distill import DistillConfig, export_adapter, train_distill
from ..train.preview import PreviewTrainConfig, train_preview
from ..video_io import UploadError, display_upscale, write_mp4
from . import service
from .bench import bench_stream
from .exports import (
    SideBySide,
    column_panel,
    comparison_caption,
    transfer_side_by_side,
    write_side_by_side,
)
from .handlers import model_label
from .service import Service


def _catalog(args) -> Catalog:
    return Catalog(args.weights)


def _service(args) -> Service:
    return Service(_catalog(args))


def cmd_generate(args) -> int:
    check_prompt(args.prompt)
    limits = LIMITS.student_steps if args.adapter else LIMITS.teacher_steps
    check_range(args.steps, limits, "Steps must be from {lo} to {hi}")
    generator = torch.Generator().manual_seed(check_seed(args.seed))
    catalog = _catalog(args)
    pipe = catalog.load_pipeline(args.teacher)
    sampler = args.sampler
    if args.adapter:
        try:
            sampler = select_row(catalog, pipe, args.adapter)
        except FileNotFoundError as err:
            raise PipelineInputError(
                f"adapter {args.adapter!r} not found ({err}); train it with "
                "`python -m mcm_demo distill` (see weights/README.md)"
            ) from None
    else:
        pipe.set_adapter(None)
    default_frames, default_fps = clip_defaults(args.teacher)
    t0 = time.perf_counter()
    frames = pipe(
        args.prompt,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        sampler=sampler,
        num_frames=args.frames or default_frames,
        generator=generator,
    )[0]
    seconds = time.perf_counter() - t0
    write_mp4(frames, args.out, fps=args.fps or default_fps, upscale=args.upscale)
    print(
        f"wrote {args.out} ({len(frames)} frames, {args.adapter or args.sampler} {args.steps} "
        f"steps, {seconds:.2f}s)"
    )
    return 0


def cmd_eval(args) -> int:
    results = run_sampler_table(
        _catalog(args),
        args.samplers,
        args.steps,
        num_clips=args.num_clips,
        batch=args.batch,
        guidance=args.guidance,
        teacher=args.teacher,
        fid_variants=args.fid_variants,
        seed=args.seed,
        log=print,
    )
    print(format_tables(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def cmd_bench(args) -> int:
    if (
        args.transfer
    ):  # the app's defaults, a few held-out references, settings interleaved per clip
        args.student = "mcm-webvid"
        _transfer_table(args, ["fastvmt", "fastvmt-dense", "vmc"], args.references)
        return 0
    if args.sampler:
        bench_steps(
            _catalog(args).load_pipeline(args.teacher),
            args.steps or [4, 50],
            repeats=args.repeats,
            guidance=args.guidance,
            log=print,
        )
        return 0
    results = bench_stream(
        _service(args),
        args.models or student_names(args.teacher),
        args.steps or [1, 2, 4, 8],
        args.teacher,
        repeats=args.repeats,
        guidance=args.guidance,
        frames=args.frames or clip_defaults(args.teacher)[0],
        log=print,
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def cmd_compare(args) -> int:
    """The page's compare mode: two models, one prompt and seed, their mp4s and speedups."""

    svc = _service(args)

    requests = [
        (
            side,
            service.check_request(
                service.Request(
                    args.prompt,
                    model,
                    args.teacher_steps if model == service.TEACHER_MODEL else args.steps,
                    args.seed,
                    args.frames,
                    args.guidance,
                    args.teacher,
                    args.fps,
                )
            ),
        )
        for side, model in (("left", args.left), ("right", args.right))
    ]
    os.makedirs(args.out_dir, exist_ok=True)
    # one untimed 1-step pass per column first: loading and merging a student and the first
    # calls' allocations are a fresh process's costs, which a server pays once, not a column's
    for _, req in requests:
        svc.generate(dataclasses.replace(req, steps=1))
    seconds, panels = {}, []
    for side, req in requests:
        model, steps = req.model, req.steps
        for event in svc.stream(req):
            if isinstance(event, service.Preview):
                print(
                    f"{side} {model}: step {event.step}/{event.total} preview at "
                    f"{event.seconds:.2f}s"
                )
            else:
                path = shutil.copyfile(
                    event.video, os.path.join(args.out_dir, f"{side}-{model}.mp4")
                )
                seconds[model] = event.seconds
                label = model_label(model, steps if model == service.TEACHER_MODEL else None)
                panels.append(column_panel(label, event.frames, steps, event.seconds))
                print(
                    f"{side} {model}: {steps} steps in {event.seconds:.2f}s from the start to "
                    f"the mp4, previews included (measured) → {path}"
                )
    frames, fps = requests[0][1].frames, requests[0][1].fps  # the teacher's, unless given
    base = svc.teacher_baseline_seconds(args.teacher, frames, args.guidance)
    print(
        f"teacher DDIM-{service.BASELINE_STEPS} + CFG: {base:.2f}s (measured); speedup: "
        + ", ".join(f"{m} {base / s:.1f}x" for m, s in seconds.items())
    )
    if args.out:
        caption = comparison_caption(args.prompt, requests[0][1].seed, args.teacher)
        _write_side_by_side(SideBySide(tuple(panels), caption, fps), args.out, args.gif)
    return 0


def _write_side_by_side(job: SideBySide, out: str, gif: bool) -> None:
    gif_path = os.path.splitext(out)[0] + ".gif" if gif else None
    export, seconds = write_side_by_side(job, out, gif_path)
    print(
        f"side by side: {export.width}x{export.height}, {export.frames} frames in {seconds:.2f}s "
        f"(measured) → {out}" + (f" and {gif_path}" if gif_path else "")
    )


def cmd_transfer(args) -> int:
    """The page's motion-transfer tab: the reference's motion, the prompt's look."""

    req = service.TransferRequest(
        args.reference,
        args.prompt,
        args.method,
        args.student,
        args.steps,
        args.strength,
        args.inner_iterations,
        args.tune_steps,
        args.motion_prompt or "",
        args.seed,
        start_look=args.start_look,
    )

    def progress(i, n, loss):
        if i == n or i % 10 == 0:
            print(f"vmc tuning {i}/{n}: motion loss {loss:.3f}")

    try:
        out = _service(args).run_transfer(req, baseline=args.baseline, progress=progress)
    except UploadError as err:
        raise PipelineInputError(str(err)) from None
    stem = os.path.splitext(args.out)[0]
    write_mp4(out["transferred"], args.out, fps=8, upscale=display_upscale(out["transferred"]))
    print(
        f"{args.method}: {out['transferred_seconds']:.2f}s (measured) → {args.out}; motion "
        "fidelity to the "
        f"reference {out['transferred_fidelity']:.3f}"
    )
    if args.baseline:
        write_mp4(
            out["baseline"], f"{stem}-baseline.mp4", fps=8, upscale=display_upscale(out["baseline"])
        )
        print(
            f"same seed without transfer: {out['baseline_seconds']:.2f}s → {stem}-baseline.mp4; "
            "motion fidelity "
            f"{out['baseline_fidelity']:.3f}"
        )
    if args.side_by_side:  # reference | transferred (| no transfer, with --baseline)
        label = model_label(args.student)
        job = transfer_side_by_side(out, args.prompt, args.method, label, args.steps, args.seed)
        _write_side_by_side(job, args.side_by_side, args.gif)
    return 0


def _transfer_table(args, names, num_clips, **knobs) -> None:
    catalog = _catalog(args)
    pipe = catalog.load_pipeline(args.teacher)
    catalog.use_student(pipe, args.teacher, args.student)
    try:
        transfer_table(pipe, names, num_clips, args.student, catalog.load_evaluator(), **knobs)
    except ValueError as err:
        raise PipelineInputError(str(err)) from None


def cmd_eval_transfer(args) -> int:
    _transfer_table(
        args,
        args.settings,
        args.num_clips,
        json_path=args.json,
        steps=args.steps,
        strength=args.strength,
        inner_iterations=args.inner_iterations,
        tune_steps=args.tune_steps,
        guided_steps=args.guided_steps,
        start_look=args.start_look,
    )
    return 0


def cmd_fetch(args) -> int:
    variants = TEACHERS[args.teacher].published if args.all else args.variant
    fetch(args.teacher, variants, dry_run=args.dry_run)
    return 0


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
    )
    return 0


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
            disc_lr=args.disc_lr,
            steps=args.steps,
            batch=args.batch,
            rank=args.rank,
            lr=args.lr,
            backbone=args.backbone,
            num_clips=args.num_clips,
            latents=args.latents,
            snapshot_every=args.snapshot_every,
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
    print("distilling with", {k: v for k, v in dataclasses.asdict(cfg).items()})
    train_distill(cfg, _teacher_for_training(args, cfg.teacher))
    if args.out:
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
