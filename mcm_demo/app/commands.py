"""The subcommands of `python -m mcm_demo`: each turns parsed flags into library calls."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import torch

from .. import competitors
from ..adapters import find_adapter_folders, is_adapter_folder
from ..catalog import (
    DEFAULT_PROMPT,
    TEACHERS,
    Catalog,
    clip_defaults,
    student_names,
)
from ..data import DataSetError, open_image_set
from ..downloads import fetch
from ..eval.bench import bench_steps
from ..eval.tables import format_tables, run_sampler_table, select_row
from ..eval.transfer import transfer_table
from ..pipeline import (
    LIMITS,
    PipelineInputError,
    check_prompt,
    check_range,
    check_seed,
    long_clip_windowing,
)
from ..video_io import UploadError, display_upscale, write_mp4
from ..windows import prompt_or_schedule
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
from .requests import travel_caption
from .service import Service


def _catalog(args) -> Catalog:
    """The catalogue, with the adapter folders named on the command line as students."""
    folders = [getattr(args, k, None) for k in ("adapter", "left", "right")]
    catalog = Catalog(args.weights)
    for folder in folders:
        if not folder or not os.path.isdir(folder):
            continue  # a catalogue name
        if not is_adapter_folder(folder):
            raise PipelineInputError(
                f"{folder} is not an adapter folder: it needs adapter_config.json and "
                "adapter_model.safetensors (what `distill --out DIR` writes)"
            )
        found = find_adapter_folders(folder)
        for path, teacher in found.values():
            wanted = getattr(args, "teacher", "embedded")
            if teacher != wanted:
                raise PipelineInputError(
                    f"{path} was distilled on the {teacher!r} teacher, not {wanted!r}; pass "
                    f"--teacher {teacher}"
                )
        catalog.user_adapters.update(found)
    return catalog


def adapter_name(value: str | None) -> str | None:
    """A model argument that is an adapter folder → the name the catalogue lists it by."""
    if value and os.path.isdir(value) and is_adapter_folder(value):
        return next(iter(find_adapter_folders(value)))
    return value


def _service(args) -> Service:
    return Service(_catalog(args))


def _prompt(args) -> str | dict[int, str]:
    """`--prompt` given once (a prompt) or as FRAME:TEXT lines (prompt travel)."""
    try:
        prompt = prompt_or_schedule(args.prompt or [DEFAULT_PROMPT])
    except ValueError as err:
        raise PipelineInputError(str(err)) from None
    return check_prompt(prompt) if isinstance(prompt, str) else prompt


def cmd_generate(args) -> int:
    prompt = _prompt(args)
    limits = LIMITS.student_steps if args.adapter else LIMITS.teacher_steps
    check_range(args.steps, limits, "Steps must be from {lo} to {hi}")
    generator = torch.Generator().manual_seed(check_seed(args.seed))
    catalog = _catalog(args)
    pipe = catalog.load_pipeline(args.teacher)
    sampler = args.sampler
    if args.adapter:
        row = args.adapter
        if os.path.isdir(row):  # a folder: `_catalog` checked it is an adapter for this teacher
            row = f"{adapter_name(row)}={row}"
        try:
            sampler = select_row(catalog, pipe, row)
        except FileNotFoundError as err:
            raise PipelineInputError(
                f"adapter {args.adapter!r} not found ({err}); train it with "
                "`python -m mcm_demo distill` (see weights/README.md)"
            ) from None
    else:
        pipe.set_adapter(None)
    default_frames, default_fps = clip_defaults(args.teacher)
    num_frames = args.frames or default_frames
    windowing = (
        long_clip_windowing(pipe.unet, num_frames, args.window_stride) if args.windows else False
    )
    t0 = time.perf_counter()
    frames = pipe(
        prompt,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        sampler=sampler,
        num_frames=num_frames,
        generator=generator,
        windowing=windowing,
    )[0]
    seconds = time.perf_counter() - t0
    write_mp4(frames, args.out, fps=args.fps or default_fps, upscale=args.upscale)
    print(
        f"wrote {args.out} ({len(frames)} frames, {args.adapter or args.sampler} {args.steps} "
        f"steps, {seconds:.2f}s)"
    )
    return 0


def cmd_eval(args) -> int:
    if args.fid_images:  # a wrong path is said before the first clip, not after an hour
        try:
            open_image_set(args.fid_images)
        except DataSetError as err:
            raise PipelineInputError(str(err)) from None
    results = run_sampler_table(
        _catalog(args),
        args.samplers,
        args.steps,
        num_clips=args.num_clips,
        batch=args.batch,
        guidance=args.guidance,
        teacher=args.teacher,
        fid_variants=args.fid_variants,
        fid_images=args.fid_images,
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
    prompt = _prompt(args)
    travel = "" if isinstance(prompt, str) else "\n".join(f"{f}: {p}" for f, p in prompt.items())
    requests = [
        (
            side,
            service.check_request(
                service.Request(
                    prompt if isinstance(prompt, str) else prompt[0],
                    model,
                    args.teacher_steps if model == service.TEACHER_MODEL else args.steps,
                    args.seed,
                    args.frames,
                    args.guidance,
                    args.teacher,
                    args.fps,
                    travel,
                    args.windows,
                    args.window_stride,
                ),
                svc.catalog,
            ),
        )
        for side, model in (("left", adapter_name(args.left)), ("right", adapter_name(args.right)))
    ]
    os.makedirs(args.out_dir, exist_ok=True)
    # one untimed 1-step pass per column first: loading and merging a student and the first
    # calls' allocations are a fresh process's costs, which a server pays once, not a column's
    # (a competitor's at its own steps: Lightning loads a checkpoint per step count)
    for _, req in requests:
        warm = req.steps if req.model in competitors.COMPETITORS else 1
        svc.generate(dataclasses.replace(req, steps=warm))
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
                label = model_label(model, steps)
                panels.append(column_panel(label, event.frames, steps, event.seconds))
                print(
                    f"{side} {model}: {steps} steps in {event.seconds:.2f}s from the start to "
                    f"the mp4, previews included (measured) → {path}"
                )
    frames, fps = requests[0][1].frames, requests[0][1].fps  # the teacher's, unless given
    base = svc.teacher_baseline_seconds(
        args.teacher, frames, args.guidance, window_stride=requests[0][1].window_stride
    )
    print(
        f"teacher DDIM-{service.BASELINE_STEPS} + CFG: {base:.2f}s (measured); speedup: "
        + ", ".join(f"{m} {base / s:.1f}x" for m, s in seconds.items())
    )
    if args.out:
        said = travel_caption(travel) or prompt
        caption = comparison_caption(said, requests[0][1].seed, args.teacher)
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
        references=args.references,
    )
    return 0


def cmd_fetch(args) -> int:
    variants = TEACHERS[args.teacher].published if args.all else args.variant
    fetch(args.teacher, variants, dry_run=args.dry_run, rivals=args.competitors)
    return 0
