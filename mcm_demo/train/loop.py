"""The distillation run, written once for 1..N processes on `accelerate` (DESIGN §2).

`python -m mcm_demo distill …` and `accelerate launch [--multi_gpu --num_processes N
--num_machines M …] -m mcm_demo distill …` run this same loop: every rank draws its own part
of the data, the gradients of everything trained (LoRA, motion head, discriminator heads)
are averaged over the ranks before each step, and only the main process writes logs, caches,
checkpoints and validation clips. Checkpoints are accelerate's own state (optimisers, loss
scaler, random states) beside the trained weights as safetensors, so a run resumes from its
latest one, on any number of processes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import torch

from ..data import DataSetError, SkipCounts
from ..video_io import write_mp4
from .checkpoint import snapshot_folder
from .clips import DataConfig, default_frames, image_source, video_batches
from .distill import DistillConfig, Distiller
from .overlay import video_set_overlay_box

MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclasses.dataclass
class RunConfig:
    """How a run uses its hardware; none of it changes what a step computes at fp32."""

    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    checkpoints_total_limit: int | None = None
    validation_every: int = 0  # > 0: sample the student every K steps (mp4, TensorBoard)
    validation_prompts: tuple[str, ...] = ()
    report_to: str | None = None  # "tensorboard"


def process_state():
    """accelerate's view of this process. The first call fixes it for the whole process, so it
    must say cpu=True where there is no GPU: without it a torchrun-started process on a CPU
    machine takes itself for a lone one."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def checkpoint_folders(run_dir: str) -> list[str]:
    """The run's complete checkpoints, oldest first (one without state.json was cut off)."""
    root = os.path.join(run_dir, "checkpoints")
    if not os.path.isdir(root):
        return []
    names = sorted(n for n in os.listdir(root) if n.startswith("step-"))
    return [
        os.path.join(root, n) for n in names if os.path.exists(os.path.join(root, n, "state.json"))
    ]


def enable_gradient_checkpointing(unet) -> None:
    """Recompute each UNet block's activations in the backward pass instead of keeping them.
    UNetMotionModel supports it in diffusers; UNet3DConditionModel does not, so its blocks are
    wrapped here (non-reentrant: the LoRA is the same on and off the graph at backward time)."""
    if getattr(unet, "_supports_gradient_checkpointing", False):
        unet.enable_gradient_checkpointing()
        return
    from torch.utils.checkpoint import checkpoint

    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    for block in blocks:
        forward = block.forward

        def wrapped(*args, _forward=forward, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(_forward, *args, use_reentrant=False, **kwargs)
            return _forward(*args, **kwargs)

        block.forward = wrapped


def _accelerator(run: RunConfig, run_dir: str):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    if run.mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"--mixed-precision is one of {MIXED_PRECISION}")
    if run.report_to not in (None, "tensorboard"):
        raise ValueError("--report-to takes tensorboard (or nothing)")
    if run.report_to == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ValueError(
                "--report-to tensorboard needs TensorBoard: pip install -e '.[tensorboard]'"
            ) from None
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=run.mixed_precision,
        log_with=run.report_to,
        project_config=ProjectConfiguration(project_dir=run_dir, logging_dir=run_dir),
    )


def save_checkpoint(accelerator, distiller: Distiller, run_dir: str, step: int, limit) -> None:
    folder = os.path.join(run_dir, "checkpoints", f"step-{step:08d}")
    accelerator.save_state(folder)  # optimisers, loss scaler, each rank's random states
    if accelerator.is_main_process:
        distiller.save(os.path.join(folder, "adapter"), step)
        distiller.save(os.path.join(run_dir, "adapter"), step)  # the latest, for `--out`
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"step": step, "processes": accelerator.num_processes}, f)
        complete = checkpoint_folders(run_dir)
        for old in complete[: max(0, len(complete) - limit)] if limit else []:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def resume(accelerator, distiller: Distiller, run_dir: str, log) -> int:
    """Load the latest checkpoint; returns its step (0 for a new run)."""
    found = checkpoint_folders(run_dir)
    if not found:
        if distiller.cfg.init_from:
            distiller.start_from(distiller.cfg.init_from)
            log(f"started from {distiller.cfg.init_from}")
        return 0
    folder = found[-1]
    distiller.load(os.path.join(folder, "adapter"))
    accelerator.load_state(folder)
    with open(os.path.join(folder, "state.json")) as f:
        state = json.load(f)
    log(
        f"resumed from {folder} at step {state['step']} (saved by {state['processes']} "
        f"process(es), now {accelerator.num_processes})"
    )
    return state["step"]


def validate(distiller: Distiller, run: RunConfig, run_dir: str, step: int, accelerator, frames):
    """The student's 4-step clips of the validation prompts: mp4 files, and TensorBoard."""
    prompts = list(run.validation_prompts) or ["a red circle moving right on a white background"]
    generator = torch.Generator().manual_seed(0)
    clips = distiller.pipe(
        prompts,
        num_inference_steps=4,
        sampler="consistency",
        num_frames=frames,
        generator=generator,
    )
    folder = os.path.join(run_dir, "validation", f"step-{step:08d}")
    for i, clip in enumerate(clips):
        write_mp4(clip, os.path.join(folder, f"{i:02d}.mp4"), upscale=max(1, 256 // clip.shape[1]))
    if run.report_to == "tensorboard":
        # each clip as a filmstrip image: TensorBoard's add_video needs moviepy 1's editor module,
        # which the pinned moviepy 2 no longer has
        writer = accelerator.get_tracker("tensorboard").writer
        for i, clip in enumerate(clips):
            strip = torch.from_numpy(clip).permute(1, 0, 2, 3).flatten(1, 2)  # H × (F·W) × 3
            writer.add_image(f"validation/{i:02d}", strip, step, dataformats="HWC")


def gather_skips(accelerator, *sources) -> SkipCounts:
    from accelerate.utils import gather_object

    local = SkipCounts()
    for source in sources:
        counts = getattr(source, "skipped", None)
        for reason, n in (counts.counts if counts else {}).items():
            local.counts[reason] += n
            local.first.setdefault(reason, counts.first[reason])
    total = SkipCounts()
    for part in gather_object([local]) if accelerator.num_processes > 1 else [local]:
        for reason, n in part.counts.items():
            total.counts[reason] += n
            total.first.setdefault(reason, part.first[reason])
    return total


def overlay_of(data: DataConfig, cfg: DistillConfig, pipe, accelerator, say):
    """The video set's overlay box (`train.overlay`), found by the main process and sent to
    every rank, so all build the same head."""
    from accelerate.utils import broadcast_object_list

    videos = video_batches(data, cfg, pipe, accelerator, 0, log=say)
    box = [
        video_set_overlay_box(videos, pipe.vae, cfg.batch) if accelerator.is_main_process else None
    ]
    if accelerator.num_processes > 1:
        broadcast_object_list(box)
    if box[0] is None:
        raise DataSetError(
            f"--adv-whole-box auto: no fixed overlay found in {data.videos or 'the world'} "
            "(its frames share no edges); give the box as TOP,BOTTOM,LEFT,RIGHT or drop it"
        )
    say(
        f"the video set's fixed overlay: rows {box[0][0]}-{box[0][1]}, columns "
        f"{box[0][2]}-{box[0][3]} (--adv-whole-box {','.join(map(str, box[0]))})"
    )
    return tuple(box[0])


def train_distill(
    cfg: DistillConfig,
    pipe,
    data: DataConfig = DataConfig(),
    run: RunConfig = RunConfig(),
    log=print,
) -> Distiller:
    """The seeded, resumable loop on `pipe` (the teacher: its UNet gets the student's LoRA);
    writes the finished adapter folder to `run_dir/adapter`."""
    accelerator = _accelerator(run, cfg.run_dir)
    say = log if accelerator.is_main_process else (lambda *a, **k: None)
    if accelerator.is_main_process:
        os.makedirs(cfg.run_dir, exist_ok=True)
    pipe.to(accelerator.device)
    if cfg.adv_whole_box == "auto":
        cfg = dataclasses.replace(cfg, adv_whole_box=overlay_of(data, cfg, pipe, accelerator, say))
    # after the overlay's search, which only the main process makes: a data stream draws its
    # workers' seeds from the global generator, and every rank must start the same weights
    torch.manual_seed(cfg.seed)
    distiller = Distiller(pipe, cfg, accelerator=accelerator)
    if run.gradient_checkpointing:
        enable_gradient_checkpointing(distiller.unet)
    step = distiller.step_count = resume(accelerator, distiller, cfg.run_dir, say)
    videos = video_batches(data, cfg, pipe, accelerator, step, log=say)
    distiller.image_source = (
        image_source(data, cfg, pipe, accelerator, step) if cfg.adversarial else None
    )
    generator = torch.Generator().manual_seed(
        cfg.seed * 1000003 + step + 7_777_777 * accelerator.process_index
    )
    # UNet3D's temporal convs hard-code dropout: it would jitter the teacher's target
    distiller.unet.eval()
    accum, world = run.gradient_accumulation_steps, accelerator.num_processes
    say(
        f"effective batch {cfg.batch * world * accum} = {cfg.batch} per process × {world} "
        f"process(es) × {accum} accumulation step(s); data: {videos.description}"
    )
    if run.report_to and accelerator.is_main_process:
        accelerator.init_trackers(
            "distill", config={k: str(v) for k, v in dataclasses.asdict(cfg).items()}
        )
    frames = data.num_frames or default_frames(cfg.teacher)
    t0 = time.time()
    while step < cfg.steps:
        for _ in range(accum):
            latents, captions = videos.next(cfg.batch)
            losses = distiller.accumulate(
                latents.to(accelerator.device), captions, generator, scale=1.0 / accum
            )
        distiller.apply()
        step += 1
        if step % 10 == 0:
            say(
                f"distill {cfg.adapter_name} step {step}/{cfg.steps} "
                + " ".join(f"{k} {v:.4f}" for k, v in losses.items())
                + f" {time.time() - t0:.1f}s"
            )
        if run.report_to:
            accelerator.log({f"loss/{k}": v for k, v in losses.items()}, step=step)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(accelerator, distiller, cfg.run_dir, step, run.checkpoints_total_limit)
        if cfg.snapshot_every and step % cfg.snapshot_every == 0 and accelerator.is_main_process:
            distiller.save(snapshot_folder(cfg.run_dir, step), step)
        if run.validation_every and step % run.validation_every == 0:
            if accelerator.is_main_process:
                validate(distiller, run, cfg.run_dir, step, accelerator, frames)
            accelerator.wait_for_everyone()
    distiller.videos = videos  # what this rank read (`seen_keys`, `skipped`)
    skipped = gather_skips(accelerator, videos, distiller.image_source)
    say(skipped.report(f"data ({videos.description})"))
    if run.report_to or accelerator.num_processes > 1:
        # the ranks leave the process group together: a rank that exited with it alive could
        # be aborted by gloo's threads at shutdown ("terminate called without an active exception")
        accelerator.wait_for_everyone()
        accelerator.end_training()
    return distiller
