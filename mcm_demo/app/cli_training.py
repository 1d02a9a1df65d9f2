"""The flags of the training subcommands: `train`, `distill`, `ablation`."""

from __future__ import annotations

import argparse

from ..catalog import VARIANTS
from ..train.loop import MIXED_PRECISION
from ..train.motion import MOTION_REPRESENTATIONS
from .commands_training import cmd_ablation, cmd_distill, cmd_train


def add_train(sub) -> None:
    p = sub.add_parser("train", help="rebuild a shipped checkpoint (seeded, resumable)")
    p.add_argument(
        "what",
        choices=["teacher", "evaluator", "vae", "vae-decoder", "snapshot", "preview"],
        help="teacher = vae → text encoder + UNet → decoder fine-tune → weights/teacher; "
        "preview = the tiny preview decoder distilled from the teacher's VAE → weights/preview; "
        "snapshot = the teacher run's resumable fp16 state in --run-dir, written to --out",
    )
    p.add_argument("--steps", type=int, help="override the default number of steps")
    p.add_argument("--out", help="where to write the checkpoint (default: weights/...)")
    p.add_argument("--run-dir", default="runs", help="resumable training state lives here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--object-weight",
        type=float,
        help="teacher UNet: extra loss weight on the latent pixels around objects (default 4; 0 "
        "= plain MSE)",
    )
    p.add_argument(
        "--init-unet",
        help="teacher: start the UNet from this run folder's EMA weights (warm start)",
    )
    p.add_argument(
        "--high-noise-share",
        type=float,
        default=0.0,
        help="teacher UNet: share of each batch trained at the noisiest 40%% of timesteps "
        "(default 0)",
    )
    p.add_argument(
        "--spatial-positions",
        action=argparse.BooleanOptionalAction,
        help="teacher UNet: a learned embedding of each latent pixel's place (default: the "
        "size's, on)",
    )
    p.add_argument(
        "--plain-levels",
        type=int,
        help="teacher UNet: top levels without cross-attention (default: the size's; x4 has 1). "
        "With --init-unet from a plainer UNet, the new attention starts as a no-op",
    )
    p.add_argument(
        "--lr", type=float, help="teacher UNet / evaluator: learning rate (default 1e-3)"
    )
    p.add_argument(
        "--text-embedding-std",
        metavar="{clip,STD}",
        help="teacher: std of the frozen text encoder's embeddings (default: the size's; x4 0.5). "
        "'clip' keeps CLIP's init, as runs/x4's first stage had (scripts/rebuild_teacher.sh)",
    )
    p.add_argument(
        "--base",
        help="teacher: take the VAE, tokenizer, frozen text encoder and starting UNet from "
        "this teacher folder (e.g. weights/teacher) instead of training a VAE; "
        "evaluator: start from this evaluator folder (e.g. weights/evaluator)",
    )
    p.add_argument(
        "--image-batch",
        type=int,
        default=0,
        help="teacher UNet: stills per step (single frames, temporal layers skipped) beside the "
        "clips",
    )
    p.add_argument("--batch", type=int, help="teacher UNet: clips per step (default 32)")
    p.add_argument(
        "--num-clips", type=int, help="teacher UNet: clips in the latent cache (default 8000)"
    )
    p.add_argument(
        "--keep-every",
        type=int,
        default=0,
        help="teacher UNet: also keep the EMA UNet every N steps (run-dir/unet/ema<step>)",
    )
    p.add_argument(
        "--resume-from",
        help="teacher UNet: a snapshot folder (train snapshot) to continue from when "
        "--run-dir holds no state yet",
    )
    p.add_argument(
        "--size",
        choices=["x4"],
        default="x4",
        help="teacher/vae: VAE downsampling and the UNet that goes with it (TEACHER_SIZES)",
    )
    g = p.add_argument_group("teacher: your own videos (default: the synthetic world)")
    g.add_argument("--videos", help="a video set, as `distill --videos` reads it")
    g.add_argument("--cache-latents", metavar="DIR", help="where its latents are cached")
    g.add_argument("--frame-stride", type=int, default=1)
    g.add_argument("--fps", type=float)
    g.add_argument("--data-workers", type=int, default=2)
    p.set_defaults(func=cmd_train)


def add_distill(sub) -> None:
    p = sub.add_parser(
        "distill", help="distill the teacher into an LCM or MCM LoRA student (seeded, resumable)"
    )
    p.add_argument("--method", choices=["lcm", "mcm"], default="mcm")
    p.add_argument(
        "--variant",
        default="webvid",
        choices=VARIANTS,
        help="image set the discriminator calls real",
    )
    p.add_argument("--name", help="adapter name (default lcm or mcm-<variant>)")
    p.add_argument("--teacher", default="embedded", help="catalogue name, local folder or hub id")
    p.add_argument(
        "--motion",
        choices=MOTION_REPRESENTATIONS,
        help="motion representation (ablation, Table 5)",
    )
    p.add_argument(
        "--adversarial",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="frame adversarial loss on/off (ablation, Table 4)",
    )
    p.add_argument(
        "--lambda-real", type=float, help="share of real trajectories (ablation, Table 6)"
    )
    p.add_argument("--adv-loss", choices=["hinge", "wgan"])
    p.add_argument("--adv-weight", type=float)
    p.add_argument(
        "--adv-frames", type=int, help="decoded frames a clip the discriminator judges (default 2)"
    )
    p.add_argument(
        "--adv-timestep-weighting",
        choices=["uniform", "signal"],
        help="weigh each clip's adversarial term the same (default) or by its signal fraction "
        "ᾱ_t: hardest at low noise",
    )
    p.add_argument(
        "--adv-per-patch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the hinge on every patch's score instead of their mean",
    )
    p.add_argument(
        "--adv-whole-frame",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add a head judging the whole frame's pixels at once beside the patch heads",
    )
    p.add_argument(
        "--adv-mismatch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the discriminator also calls image-set stills under a wrong caption fake",
    )
    p.add_argument(
        "--adv-mismatch-word",
        choices=["shape", "colour"],
        help="with --adv-mismatch: the word a wrong caption changes (default shape)",
    )
    p.add_argument(
        "--adv-whole-sampled-every",
        type=int,
        metavar="N",
        help="with --adv-whole-frame: that head learns from the student's own 4-step clips, "
        "sampled every N steps, and mismatched stills, not from its one-step estimates",
    )
    p.add_argument(
        "--adv-whole-box",
        type=_box,
        metavar="TOP,BOTTOM,LEFT,RIGHT|auto",
        help="with --adv-whole-frame: that head judges only this crop of the frame (pixels), "
        "the place of a fixed overlay such as the video set's watermark; auto: the box where "
        "the video set's frames share their edges",
    )
    p.add_argument(
        "--adv-whole-weight",
        type=float,
        metavar="W",
        help="with --adv-whole-frame: that head's own weight in the student's loss, "
        "--adv-weight then the patch heads' (0: they still learn but do not pull); default: "
        "both at --adv-weight, their scores averaged",
    )
    p.add_argument(
        "--gp-weight", type=float, help="the R1 penalty's weight on real frames (default 1)"
    )
    p.add_argument(
        "--init-from",
        metavar="DIR",
        help="start the student from an adapter folder (its LoRA and motion head; its "
        "discriminator too if it learned the same image set)",
    )
    p.add_argument(
        "--disc-lr",
        type=float,
        help="discriminator heads' learning rate (default 1e-3 on the vae "
        "backbone, 1e-4 on DINOv2)",
    )
    p.add_argument(
        "--backbone", help="discriminator backbone: vae (synthetic world) or a DINOv2 path / hub id"
    )
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--rank", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--num-clips", type=int, help="video-set clips to cache as latents")
    p.add_argument(
        "--latents",
        help="latent cache (made on first use; the teacher run's runs/unet/latents.safetensors "
        "holds the same video set)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", help="resumable state (default runs/distill/<name>)")
    p.add_argument(
        "--snapshot-every",
        type=int,
        help="also keep the adapter every N steps in "
        "<run-dir>/snapshots/step-NNNNN, to pick the best by eval",
    )
    p.add_argument("--out", help="copy the finished adapter folder here, e.g. weights/mcm-anime")
    add_data_flags(p)
    add_run_flags(p)
    p.set_defaults(func=cmd_distill)


def add_data_flags(p) -> None:
    g = p.add_argument_group("your own data (default: the synthetic world)")
    g.add_argument(
        "--videos",
        help="a video set: a WebVid CSV (videoid,name,page_dir), a path,caption CSV, a JSONL, "
        "a folder holding one of them, or WebDataset shards (a .tar, a folder of them, or a "
        "brace pattern such as 'shards/{00000..00099}.tar')",
    )
    g.add_argument(
        "--images",
        help="the image set the discriminator calls real: a folder of images with optional "
        "sidecar .txt captions, or img2dataset shards",
    )
    g.add_argument(
        "--cache-latents",
        metavar="DIR",
        help="encode the video set once into DIR (keyed by the set and the teacher) and train "
        "from there",
    )
    g.add_argument(
        "--num-frames", type=int, help="frames per clip (default the teacher's: 8 embedded, 16)"
    )
    g.add_argument("--frame-stride", type=int, default=1, help="take every k-th frame")
    g.add_argument("--fps", type=float, help="sample at this frame rate instead of a stride")
    g.add_argument(
        "--data-workers", type=int, default=2, help="DataLoader worker processes per rank"
    )


def add_run_flags(p) -> None:
    g = p.add_argument_group("scale (one process, or many under `accelerate launch`)")
    g.add_argument("--gradient-accumulation-steps", type=int, default=1)
    g.add_argument("--mixed-precision", choices=MIXED_PRECISION, default="no")
    g.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute the UNet's activations in the backward pass (GPU memory for time)",
    )
    g.add_argument("--checkpoints-total-limit", type=int, help="keep only the newest N checkpoints")
    g.add_argument("--save-every", type=int, help="checkpoint every N steps (default 50)")
    g.add_argument(
        "--validation-every", type=int, default=0, help="sample the student every N steps (mp4)"
    )
    g.add_argument(
        "--validation-prompt", action="append", default=[], help="a validation prompt (repeat)"
    )
    g.add_argument("--report-to", choices=["tensorboard"], help="also log to TensorBoard")


def add_ablation(sub) -> None:
    p = sub.add_parser(
        "ablation",
        help="the paper's Tables 4–6: train every ablation row at one budget, then evaluate them",
    )
    p.add_argument("action", choices=["train", "eval", "show"])
    p.add_argument(
        "rows",
        nargs="*",
        help="rows to train or evaluate (default: all; see mcm_demo/train/ablations.py); "
        "for show, the --json files of eval runs",
    )
    p.add_argument(
        "--steps", type=int, default=100, help="distillation steps, the same for every row"
    )
    p.add_argument(
        "--batch", type=int, default=8, help="distillation batch, the same for every row"
    )
    p.add_argument(
        "--root", default="runs/ablation", help="one resumable run folder per row lives here"
    )
    p.add_argument(
        "--latents", help="video-set latent cache shared by the rows (see distill --latents)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-clips", type=int, default=256)
    p.add_argument("--batch-eval", type=int, default=32)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--teacher", default="embedded")
    p.add_argument("--json", help="also write the numbers here")
    p.set_defaults(func=cmd_ablation)


def _box(text: str) -> tuple[int, int, int, int] | str:
    if text == "auto":
        return text
    try:
        top, bottom, left, right = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give four integers TOP,BOTTOM,LEFT,RIGHT or auto"
        ) from None
    if not (0 <= top < bottom and 0 <= left < right):
        raise argparse.ArgumentTypeError(f"{text!r}: an empty box")
    return top, bottom, left, right
