"""`python -m mcm_demo generate | compare | transfer | fetch | eval | bench | train | distill | ablation`: everything the app does,
from a shell."""
from __future__ import annotations

import argparse
import sys
import time

from .pipeline import PipelineInputError

DEFAULT_PROMPT = "a red circle moving left on a black background"


def _generator(seed: int):
    import torch

    if seed < 0:
        raise PipelineInputError(f"Seed must be 0 or more, got {seed}.")
    return torch.Generator().manual_seed(seed)


def cmd_generate(args) -> int:
    from .catalog import load_pipeline
    from .video_io import write_mp4

    if not args.prompt or not args.prompt.strip():
        raise PipelineInputError("The prompt is empty: pass --prompt 'a red circle moving left on a black background'.")
    if args.steps < 1:
        raise PipelineInputError(f"--steps must be 1 or more, got {args.steps}.")
    pipe = load_pipeline(args.teacher)
    sampler = args.sampler
    if args.adapter:
        from .evaluation import select_row

        try:
            sampler = select_row(pipe, args.adapter)
        except FileNotFoundError as err:
            raise PipelineInputError(f"adapter {args.adapter!r} not found ({err}); train it with "
                                     "`python -m mcm_demo distill` (see weights/README.md)") from None
    else:
        pipe.set_adapter(None)
    t0 = time.perf_counter()
    frames = pipe(args.prompt, num_inference_steps=args.steps, guidance_scale=args.guidance,
                  sampler=sampler, num_frames=args.frames, generator=_generator(args.seed))[0]
    seconds = time.perf_counter() - t0
    write_mp4(frames, args.out, fps=args.fps, upscale=args.upscale)
    print(f"wrote {args.out} ({len(frames)} frames, {args.adapter or args.sampler} {args.steps} steps, {seconds:.2f}s)")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import format_tables, run_sampler_table

    results = run_sampler_table(args.samplers, args.steps, num_clips=args.num_clips, batch=args.batch,
                                guidance=args.guidance, teacher=args.teacher, fid_variants=args.fid_variants,
                                seed=args.seed, log=print)
    print(format_tables(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def cmd_bench(args) -> int:
    from .evaluation import bench_steps, bench_stream

    if args.transfer:  # the app's defaults, a few held-out references, settings interleaved per clip
        transfer_table(["fastvmt", "fastvmt-dense", "vmc"], args.repeats, teacher=args.teacher)
        return 0
    if args.models:
        bench_stream(args.models, args.steps, args.teacher, repeats=args.repeats, guidance=args.guidance,
                     frames=args.frames, log=print)
    else:
        bench_steps(args.steps, args.teacher, repeats=args.repeats, guidance=args.guidance, log=print)
    return 0


def cmd_compare(args) -> int:
    """The page's compare mode: two models, one prompt and seed, their mp4s and speedups."""
    import os

    from . import service
    from .video_io import display_upscale, write_mp4

    requests = [(side, service.check_request(service.Request(
        args.prompt, model, args.teacher_steps if model == service.TEACHER_MODEL else args.steps, args.seed,
        args.frames, args.guidance, args.teacher))) for side, model in (("left", args.left), ("right", args.right))]
    os.makedirs(args.out_dir, exist_ok=True)
    seconds = {}
    for side, req in requests:
        model, steps = req.model, req.steps
        for event in service.stream(req):
            if isinstance(event, service.Preview):
                print(f"{side} {model}: step {event.step}/{event.total} preview at {event.seconds:.2f}s")
            else:
                path = write_mp4(event.frames, os.path.join(args.out_dir, f"{side}-{model}.mp4"), fps=args.fps,
                                 upscale=display_upscale(event.frames))
                seconds[model] = event.seconds
                print(f"{side} {model}: {steps} steps in {event.seconds:.2f}s (measured, without preview "
                      f"decoding {event.preview_seconds:.2f}s) → {path}")
    base = service.teacher_baseline_seconds(args.teacher, args.frames, args.guidance)
    print(f"teacher DDIM-{service.BASELINE_STEPS} + CFG: {base:.2f}s (measured); speedup: " +
          ", ".join(f"{m} {base / s:.1f}x" for m, s in seconds.items()))
    return 0


def cmd_transfer(args) -> int:
    """The page's motion-transfer tab: the reference's motion, the prompt's look."""
    import os

    from . import service
    from .video_io import UploadError, display_upscale, write_mp4

    req = service.TransferRequest(args.reference, args.prompt, args.method, args.student, args.steps, args.strength,
                                  args.inner_iterations, args.tune_steps, args.motion_prompt or "", args.seed,
                                  start_look=args.start_look)

    def progress(i, n, loss):
        if i == n or i % 10 == 0:
            print(f"vmc tuning {i}/{n}: motion loss {loss:.3f}")

    try:
        out = service.run_transfer(req, baseline=args.baseline, progress=progress)
    except UploadError as err:
        raise PipelineInputError(str(err)) from None
    stem = os.path.splitext(args.out)[0]
    write_mp4(out["transferred"], args.out, fps=8, upscale=display_upscale(out["transferred"]))
    print(f"{args.method}: {out['transferred_seconds']:.2f}s (measured) → {args.out}; motion fidelity to the "
          f"reference {out['transferred_fidelity']:.3f}")
    if args.baseline:
        write_mp4(out["baseline"], f"{stem}-baseline.mp4", fps=8, upscale=display_upscale(out["baseline"]))
        print(f"same seed without transfer: {out['baseline_seconds']:.2f}s → {stem}-baseline.mp4; motion fidelity "
              f"{out['baseline_fidelity']:.3f}")
    return 0


TRANSFER_SETTINGS = {  # name → TransferConfig overrides (the must-show rows of the transfer issue)
    "none": dict(method="none"),
    "start-only": dict(method="fastvmt", inner_iterations=0),  # the motion-preserving start alone
    "fastvmt": dict(method="fastvmt"),  # local window + gradient reuse
    "fastvmt-dense": dict(method="fastvmt", window=None, reuse_every=1),  # dense, a backward every iteration
    "vmc": dict(method="vmc"),
    # what each part of the defaults adds, one change at a time (docs/transfer.md)
    "start-only-reference-look": dict(method="fastvmt", inner_iterations=0, start_look="reference"),
    "fastvmt-reference-look": dict(method="fastvmt", start_look="reference"),  # the reference's own colours
    "vmc-reference-look": dict(method="vmc", start_look="reference"),
    "vmc-no-recolour": dict(method="vmc", tune_recolour=False),  # tuned on the reference as it is
}


def transfer_table(names, num_clips: int, student: str = "mcm-webvid", teacher: str = "embedded",
                   json_path: str | None = None, **knobs) -> dict:
    """Motion transfer on held-out references for the named settings; prints the table."""
    import json

    from .catalog import load_evaluator, load_pipeline, use_student
    from .motion.evaluate import evaluate_transfer, format_transfer_table, transfer_cases
    from .motion.transfer import TransferConfig

    unknown = [n for n in names if n not in TRANSFER_SETTINGS]
    if unknown:
        raise PipelineInputError(f"unknown setting {unknown[0]!r}; choose from {', '.join(TRANSFER_SETTINGS)}")
    pipe = load_pipeline(teacher)
    use_student(pipe, teacher, student)
    settings = {n: TransferConfig(**{**knobs, **TRANSFER_SETTINGS[n]}) for n in names}
    table = evaluate_transfer(pipe, settings, transfer_cases(num_clips), student, load_evaluator())
    print(format_transfer_table(table, num_clips))
    if "fastvmt" in table and "fastvmt-dense" in table:
        fast, dense = table["fastvmt"], table["fastvmt-dense"]
        print(f"fastvmt (window + gradient reuse) vs dense every-iteration: "
              f"{dense['guidance_seconds'] / max(fast['guidance_seconds'], 1e-9):.2f}x faster latent guidance, "
              f"{dense['seconds_per_clip'] / fast['seconds_per_clip']:.2f}x per clip end to end, motion fidelity "
              f"{fast['motion_fidelity']:.3f} vs {dense['motion_fidelity']:.3f} "
              f"({(fast['motion_fidelity'] / dense['motion_fidelity'] - 1) * 100:+.1f}%), measured side by side")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(table, f, indent=1)
    return table


def cmd_eval_transfer(args) -> int:
    transfer_table(args.settings, args.num_clips, args.student, args.teacher, args.json, steps=args.steps,
                   strength=args.strength, inner_iterations=args.inner_iterations, tune_steps=args.tune_steps,
                   guided_steps=args.guided_steps, start_look=args.start_look)
    return 0


def cmd_fetch(args) -> int:
    from .catalog import TEACHERS, fetch

    variants = TEACHERS[args.teacher].published if args.all else args.variant
    fetch(args.teacher, variants)
    return 0


def cmd_train(args) -> int:
    from .training import train_component

    if args.what == "snapshot":
        from .teacher.checkpoint import save_snapshot

        state = save_snapshot(f"{args.run_dir}/unet", args.out)
        print(f"wrote the step-{state['step']} snapshot of {args.run_dir} to {args.out}")
        return 0
    train_component(args.what, steps=args.steps, out=args.out, run_dir=args.run_dir, seed=args.seed,
                    object_weight=args.object_weight, train_text_encoder=args.text_encoder == "trained",
                    init_unet=args.init_unet, size=args.size, high_noise_share=args.high_noise_share,
                    spatial_positions=args.spatial_positions, plain_levels=args.plain_levels,
                    text_embedding_std=args.text_embedding_std,
                    caption_in_time_embedding=args.caption_in_time_embedding, edge_weight=args.edge_weight,
                    lr=args.lr, base=args.base, image_batch=args.image_batch, batch=args.batch,
                    num_clips=args.num_clips, keep_every=args.keep_every, resume_from=args.resume_from)
    return 0


def cmd_distill(args) -> int:
    import dataclasses
    import shutil

    from .distill.trainer import DistillConfig, train_distill

    name = args.name or ("lcm" if args.method == "lcm" else f"mcm-{args.variant}")
    overrides = {k: v for k, v in dict(
        motion=args.motion, adversarial=args.adversarial, lambda_real=args.lambda_real, adv_loss=args.adv_loss,
        adv_weight=args.adv_weight, disc_lr=args.disc_lr, steps=args.steps, batch=args.batch, rank=args.rank,
        lr=args.lr, backbone=args.backbone, num_clips=args.num_clips, latents=args.latents,
        snapshot_every=args.snapshot_every).items() if v is not None}
    cfg = DistillConfig.preset(args.method, teacher=args.teacher, variant=args.variant, adapter_name=name,
                               seed=args.seed, run_dir=args.run_dir or f"runs/distill/{name}", **overrides)
    print("distilling with", {k: v for k, v in dataclasses.asdict(cfg).items()})
    train_distill(cfg)
    if args.out:
        from safetensors.torch import load_file, save_file

        shutil.copytree(f"{cfg.run_dir}/adapter", args.out, dirs_exist_ok=True)
        # shipped LoRA weights in fp16: half the size in git, the same clips (the deltas are small)
        path = f"{args.out}/adapter_model.safetensors"
        save_file({k: v.half() for k, v in load_file(path).items()}, path)
        print(f"wrote {args.out}")
    return 0


def cmd_ablation(args) -> int:
    from .ablations import ROWS, format_ablation_tables, row_config, row_folder

    if args.action == "train":
        from .distill.trainer import train_distill

        overrides = {"latents": args.latents} if args.latents else {}
        for row in args.rows or list(ROWS):
            train_distill(row_config(row, args.steps, args.batch, args.root, seed=args.seed, **overrides))
        return 0
    if args.action == "show":  # the tables from saved `eval --json` files (rows may be split across runs)
        import json

        if not args.rows:
            raise PipelineInputError("ablation show prints the tables from `ablation eval --json` files: "
                                     "pass one or more, e.g. `ablation show runs/ablation/eval.json`")
        results = {"rows": {}}
        for path in args.rows:
            try:
                with open(path) as f:
                    part = json.load(f)
                rows = part["rows"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise PipelineInputError(f"{path} is not an `ablation eval --json` file ({err!r})") from None
            results = {**part, "rows": {**results["rows"], **rows}}
        print(format_ablation_tables(results))
        return 0
    from .evaluation import run_sampler_table

    rows = args.rows or list(ROWS)
    samplers = [f"{row}={row_folder(row, args.root)}" for row in rows]
    results = run_sampler_table(samplers, [1, 2, 4, 8], num_clips=args.num_clips, batch=args.batch_eval,
                                guidance=args.guidance, teacher=args.teacher, fid_variants=[], log=print)
    results["budget"] = f"{args.steps} steps × batch {args.batch} of distillation"
    print(format_ablation_tables(results))
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .evaluation import EVAL_SEED  # defaults that live in the library, once
    from .motion.transfer import START_LOOKS, TransferConfig

    p = argparse.ArgumentParser(prog="python -m mcm_demo", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="prompt → mp4")
    g.add_argument("--prompt", default=DEFAULT_PROMPT)
    g.add_argument("--teacher", default="embedded")
    g.add_argument("--sampler", default="ddim", choices=["ddim", "dpm++"])
    g.add_argument("--adapter", help="sample a distilled student instead: lcm, mcm-<variant> or name=folder")
    g.add_argument("--steps", type=int, default=25)
    g.add_argument("--guidance", type=float, default=5.0)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--frames", type=int, default=8)
    g.add_argument("--fps", type=float, default=8.0)
    g.add_argument("--upscale", type=int, default=4, help="nearest-neighbour enlargement of the mp4")
    g.add_argument("--out", default="clip.mp4")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("eval", help="Table 1 of the paper on the synthetic world (held-out prompts)")
    e.add_argument("--samplers", nargs="+", default=["ddim", "dpm++"],
                   help="rows: ddim, dpm++ (the teacher), or students: lcm, mcm-<variant> (weights/) or name=folder")
    e.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 25, 50])
    e.add_argument("--num-clips", type=int, default=256)
    e.add_argument("--batch", type=int, default=32)
    e.add_argument("--guidance", type=float, default=5.0)
    e.add_argument("--teacher", default="embedded")
    e.add_argument("--json", help="also write the numbers here")
    e.add_argument("--seed", type=int, default=EVAL_SEED,
                   help="draws the held-out prompts and the noise (default %(default)s, the tables' seed); pick a "
                        "snapshot on one seed, confirm it on another")
    e.add_argument("--fid-variants", nargs="+", default=["webvid"],
                   help="image sets for the FID-like columns (an mcm-<variant> row adds its own)")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("bench", help="wall time per step count, measured side by side in one run")
    b.add_argument("--steps", nargs="+", type=int, default=[4, 50])
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--guidance", type=float, default=5.0)
    b.add_argument("--teacher", default="embedded")
    b.add_argument("--models", nargs="+", help="bench the app's columns instead: lcm, mcm-<variant>, teacher; "
                                              "prints first-preview and end-to-end times and the speedup vs DDIM-50")
    b.add_argument("--frames", type=int, default=8)
    b.add_argument("--transfer", action="store_true", help="bench motion transfer instead: end-to-end seconds per "
                                                          "clip of fastvmt, its dense baseline and vmc (--repeats clips)")
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("compare", help="the app's side-by-side: two models, one prompt and seed → two mp4s")
    c.add_argument("--prompt", default=DEFAULT_PROMPT)
    c.add_argument("--teacher", default="embedded")
    c.add_argument("--left", default="lcm", help="teacher, lcm or mcm-<variant>")
    c.add_argument("--right", default="mcm-webvid")
    c.add_argument("--steps", type=int, default=4, help="student steps (1-8)")
    c.add_argument("--teacher-steps", type=int, default=25, help="DDIM steps when a column is the teacher")
    c.add_argument("--guidance", type=float, default=5.0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--frames", type=int, default=8)
    c.add_argument("--fps", type=float, default=8.0)
    c.add_argument("--out-dir", default="compare")
    c.set_defaults(func=cmd_compare)

    m = sub.add_parser("transfer", help="motion transfer: a reference clip's motion with the prompt's look")
    m.add_argument("--reference", required=True, help="mp4, webm, mov or gif")
    m.add_argument("--prompt", default="a yellow star on a gray background")
    m.add_argument("--method", choices=["fastvmt", "vmc", "none"], default="fastvmt")
    m.add_argument("--student", default="mcm-webvid", help="lcm or mcm-<variant>")
    m.add_argument("--steps", type=int, default=TransferConfig.steps)
    m.add_argument("--strength", type=float, default=TransferConfig.strength,
                   help="start timestep / T (1 = pure noise; default %(default)s)")
    m.add_argument("--inner-iterations", type=int, default=TransferConfig.inner_iterations,
                   help="fastvmt: latent updates at each guided step (default %(default)s)")
    m.add_argument("--tune-steps", type=int, default=TransferConfig.tune_steps,
                   help="vmc: LoRA tuning steps on the clip (default %(default)s)")
    m.add_argument("--motion-prompt", help="vmc: appearance-invariant prompt (default: derived from --prompt)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--start-look", choices=START_LOOKS, default=TransferConfig.start_look,
                   help="start from the reference as it is, or recoloured to a one-step sample of the prompt "
                        "(default %(default)s)")
    m.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                   help="also write the same seed without transfer (<out>-baseline.mp4)")
    m.add_argument("--out", default="transfer.mp4")
    m.set_defaults(func=cmd_transfer)

    et = sub.add_parser("eval-transfer", help="motion transfer on held-out synthetic references (fidelity, "
                                              "motion agreement, prompt accuracy, time per clip)")
    et.add_argument("--settings", nargs="+", default=["none", "start-only", "fastvmt", "fastvmt-dense", "vmc"])
    et.add_argument("--num-clips", type=int, default=32)
    et.add_argument("--student", default="mcm-webvid")
    et.add_argument("--teacher", default="embedded")
    et.add_argument("--steps", type=int, default=TransferConfig.steps)
    et.add_argument("--strength", type=float, default=TransferConfig.strength)
    et.add_argument("--inner-iterations", type=int, default=TransferConfig.inner_iterations)
    et.add_argument("--guided-steps", type=int, default=TransferConfig.guided_steps,
                    help="sampling steps the fastvmt guidance runs in (default %(default)s)")
    et.add_argument("--tune-steps", type=int, default=TransferConfig.tune_steps)
    et.add_argument("--start-look", choices=START_LOOKS, default=TransferConfig.start_look,
                    help="the start of settings that do not set it (default %(default)s)")
    et.add_argument("--json")
    et.set_defaults(func=cmd_eval_transfer)

    f = sub.add_parser("fetch", help="download a real teacher and its published MCM adapters (huggingface_hub)")
    f.add_argument("teacher", choices=["modelscope", "animatediff"])
    f.add_argument("--variant", nargs="*", default=[], help="published adapters to fetch (webvid, laion, …)")
    f.add_argument("--all", action="store_true", help="every published adapter of this teacher")
    f.set_defaults(func=cmd_fetch)

    t = sub.add_parser("train", help="rebuild a shipped checkpoint (seeded, resumable)")
    t.add_argument("what", choices=["teacher", "evaluator", "vae", "vae-decoder", "snapshot"],
                   help="teacher = vae → text encoder + UNet → decoder fine-tune → weights/teacher; "
                        "snapshot = the teacher run's resumable fp16 state in --run-dir, written to --out")
    t.add_argument("--steps", type=int, help="override the default number of steps")
    t.add_argument("--out", help="where to write the checkpoint (default: weights/...)")
    t.add_argument("--run-dir", default="runs", help="resumable training state lives here")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--object-weight", type=float,
                   help="teacher UNet: extra loss weight on the latent pixels around objects (default 4; 0 = plain MSE)")
    t.add_argument("--text-encoder", choices=["frozen", "trained"], default="frozen",
                   help="teacher: keep the seeded CLIP text encoder frozen (default) or train it with the UNet")
    t.add_argument("--init-unet", help="teacher: start the UNet from this run folder's EMA weights (warm start)")
    t.add_argument("--high-noise-share", type=float, default=0.0,
                   help="teacher UNet: share of each batch trained at the noisiest 40%% of timesteps (default 0)")
    t.add_argument("--spatial-positions", action="store_true",
                   help="teacher UNet: a learned embedding of each latent pixel's place (models.UNet3DWithFramePositions)")
    t.add_argument("--plain-levels", type=int,
                   help="teacher UNet: top levels without cross-attention (default: the size's; x4 has 1). "
                        "With --init-unet from a plainer UNet, the new attention starts as a no-op")
    t.add_argument("--caption-in-time-embedding", action="store_true",
                   help="teacher UNet: the pooled caption is added to the time embedding, so every resnet "
                        "sees it, also at levels without cross-attention (models.UNet3DWithFramePositions)")
    t.add_argument("--lr", type=float, help="teacher UNet / evaluator: learning rate (default 1e-3)")
    t.add_argument("--edge-weight", type=float, default=0.0,
                   help="teacher UNet: extra loss weight where an object's outline crosses a latent pixel, "
                        "the pixels where one shape differs from another (default 0)")
    t.add_argument("--text-embedding-std", metavar="{clip,STD}",
                   help="teacher: std of the frozen text encoder's embeddings (default: the size's; x4 0.5). "
                        "'clip' keeps CLIP's init, as runs/x4's first stage had (scripts/rebuild_teacher.sh)")
    t.add_argument("--base", help="teacher: take the VAE, tokenizer, frozen text encoder and starting UNet from "
                                  "this teacher folder (e.g. weights/teacher) instead of training a VAE; "
                                  "evaluator: start from this evaluator folder (e.g. weights/evaluator)")
    t.add_argument("--image-batch", type=int, default=0,
                   help="teacher UNet: stills per step (single frames, temporal layers skipped) beside the clips")
    t.add_argument("--batch", type=int, help="teacher UNet: clips per step (default 32)")
    t.add_argument("--num-clips", type=int, help="teacher UNet: clips in the latent cache (default 8000)")
    t.add_argument("--keep-every", type=int, default=0,
                   help="teacher UNet: also keep the EMA UNet every N steps (run-dir/unet/ema<step>)")
    t.add_argument("--resume-from", help="teacher UNet: a snapshot folder (train snapshot) to continue from when "
                                         "--run-dir holds no state yet")
    t.add_argument("--size", choices=["x4", "x8"], default="x4",
                   help="teacher/vae: VAE downsampling and the UNet that goes with it (models.TEACHER_SIZES)")
    t.set_defaults(func=cmd_train)

    d = sub.add_parser("distill", help="distill the teacher into an LCM or MCM LoRA student (seeded, resumable)")
    d.add_argument("--method", choices=["lcm", "mcm"], default="mcm")
    d.add_argument("--variant", default="webvid", choices=["webvid", "laion", "anime", "real", "3d-cartoon"],
                   help="image set the discriminator calls real")
    d.add_argument("--name", help="adapter name (default lcm or mcm-<variant>)")
    d.add_argument("--teacher", default="embedded", help="catalogue name, local folder or hub id")
    d.add_argument("--motion", choices=["raw", "difference", "correlation", "low-frequency", "high-frequency",
                                        "learnable"], help="motion representation (ablation, Table 5)")
    d.add_argument("--adversarial", action=argparse.BooleanOptionalAction, default=None,
                   help="frame adversarial loss on/off (ablation, Table 4)")
    d.add_argument("--lambda-real", type=float, help="share of real trajectories (ablation, Table 6)")
    d.add_argument("--adv-loss", choices=["hinge", "wgan"])
    d.add_argument("--adv-weight", type=float)
    d.add_argument("--disc-lr", type=float, help="discriminator heads' learning rate (default 1e-3 on the vae "
                   "backbone, 1e-4 on DINOv2)")
    d.add_argument("--backbone", help="discriminator backbone: vae (synthetic world) or a DINOv2 path / hub id")
    d.add_argument("--steps", type=int)
    d.add_argument("--batch", type=int)
    d.add_argument("--rank", type=int)
    d.add_argument("--lr", type=float)
    d.add_argument("--num-clips", type=int, help="video-set clips to cache as latents")
    d.add_argument("--latents", help="latent cache (made on first use; the teacher run's runs/unet/latents.safetensors "
                                     "holds the same video set)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--run-dir", help="resumable state (default runs/distill/<name>)")
    d.add_argument("--snapshot-every", type=int, help="also keep the adapter every N steps in "
                                                      "<run-dir>/snapshots/step-NNNNN, to pick the best by eval")
    d.add_argument("--out", help="copy the finished adapter folder here, e.g. weights/mcm-anime")
    d.set_defaults(func=cmd_distill)

    a = sub.add_parser("ablation", help="the paper's Tables 4–6: train every ablation row at one budget, then "
                                        "evaluate them")
    a.add_argument("action", choices=["train", "eval", "show"])
    a.add_argument("rows", nargs="*", help="rows to train or evaluate (default: all; see mcm_demo/ablations.py); "
                                         "for show, the --json files of eval runs")
    a.add_argument("--steps", type=int, default=100, help="distillation steps, the same for every row")
    a.add_argument("--batch", type=int, default=8, help="distillation batch, the same for every row")
    a.add_argument("--root", default="runs/ablation", help="one resumable run folder per row lives here")
    a.add_argument("--latents", help="video-set latent cache shared by the rows (see distill --latents)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--num-clips", type=int, default=256)
    a.add_argument("--batch-eval", type=int, default=32)
    a.add_argument("--guidance", type=float, default=5.0)
    a.add_argument("--teacher", default="embedded")
    a.add_argument("--json", help="also write the numbers here")
    a.set_defaults(func=cmd_ablation)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PipelineInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a missing checkpoint and the like: say what, not a traceback
        from .catalog import CheckpointMissing

        if isinstance(err, CheckpointMissing):
            print(f"error: {err}", file=sys.stderr)
            return 3
        raise
