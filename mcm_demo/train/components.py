"""`python -m mcm_demo train …`: rebuild the shipped checkpoints, seeded and resumable.

Each stage keeps its state under `run_dir` and picks up where it stopped, so a long CPU run
survives being cut off; the finished checkpoint is written in the shipped layout to `out`.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from diffusers import AutoencoderKL, DDIMScheduler

from ..embedded.config import TEACHER_SIZES, TeacherConfig, build_noise_schedule
from ..embedded.unet import UNet3DWithFramePositions
from ..pipeline import TextToVideoPipeline


def _vae(run_dir: str, seed: int, steps: int | None = None, size: str = "x4"):
    """Stage 1: the whole VAE. Its encoder fixes the latent space the UNet learns in."""
    from .vae import VAETrainConfig, set_scaling_factor, train_vae

    cfg = VAETrainConfig(run_dir=os.path.join(run_dir, "vae"), seed=seed)
    if steps:
        cfg.steps = steps
    vae = train_vae(cfg, TEACHER_SIZES[size]).eval()
    set_scaling_factor(vae)
    return vae


def _vae_decoder(vae, run_dir: str, seed: int, steps: int | None = None, size: str = "x4"):
    """Stage 2: the decoder alone; independent of the UNet, so it may run beside it."""
    from .vae import decoder_finetune_config, train_vae

    cfg = decoder_finetune_config(os.path.join(run_dir, "vae-decoder"), seed)
    if steps:
        cfg.steps = steps
    tuned = train_vae(cfg, TEACHER_SIZES[size], init=vae).eval()
    tuned.register_to_config(scaling_factor=vae.config.scaling_factor)
    return tuned


def export_teacher(vae, tokenizer, text_encoder, unet, out: str) -> None:
    scheduler = DDIMScheduler.from_config(build_noise_schedule().config)
    TextToVideoPipeline(vae, text_encoder, tokenizer, unet, scheduler).save_pretrained(out)


def teacher_config(
    size: str = "x4",
    spatial_positions: bool | None = None,
    plain_levels: int | None = None,
    text_embedding_std: str | None = None,
    base: str | None = None,
) -> TeacherConfig:
    """The size's config with the CLI's overrides; its defaults build the shipped teacher."""
    cfg = TEACHER_SIZES[size]
    if spatial_positions is not None:
        cfg = dataclasses.replace(cfg, unet_spatial_positions=spatial_positions)
    if plain_levels is not None:
        cfg = dataclasses.replace(cfg, unet_plain_levels=plain_levels)
    if text_embedding_std is not None:  # "clip": CLIP's own init, as the first x4 stage had
        std = None if text_embedding_std == "clip" else float(text_embedding_std)
        cfg = dataclasses.replace(cfg, text_embedding_std=std)
    if base:  # the base's UNet layout, whatever the size's default
        base_unet = UNet3DWithFramePositions.load_config(base, subfolder="unet")
        cfg = dataclasses.replace(
            cfg, unet_spatial_positions=base_unet.get("spatial_positions", False)
        )
    return cfg


def train_component(
    what: str,
    out: str,
    steps: int | None = None,
    run_dir: str = "runs",
    seed: int = 0,
    object_weight: float | None = None,
    init_unet: str | None = None,
    size: str = "x4",
    high_noise_share: float = 0.0,
    spatial_positions: bool | None = None,
    plain_levels: int | None = None,
    text_embedding_std: str | None = None,
    lr: float | None = None,
    base: str | None = None,
    image_batch: int = 0,
    batch: int | None = None,
    num_clips: int | None = None,
    keep_every: int = 0,
    resume_from: str | None = None,
    data=None,
):
    torch.manual_seed(seed)
    if what == "vae":
        _vae(run_dir, seed, steps, size).save_pretrained(out)
    elif what == "vae-decoder":
        _vae_decoder(_vae(run_dir, seed, size=size), run_dir, seed, steps, size).save_pretrained(
            out
        )
    elif what == "teacher":
        from .teacher import UNetTrainConfig, train_unet

        # a base teacher brings its VAE (decoder fine-tune included); otherwise the run trains one
        vae = (
            AutoencoderKL.from_pretrained(base, subfolder="vae").eval()
            if base
            else _vae(run_dir, seed, size=size)
        )
        cfg = UNetTrainConfig(
            run_dir=os.path.join(run_dir, "unet"),
            seed=seed,
            base=base,
            image_batch=image_batch,
            keep_every=keep_every,
            resume_from=resume_from,
            init_unet=init_unet,
            high_noise_share=high_noise_share,
        )
        for name, value in dict(batch=batch, num_clips=num_clips, steps=steps).items():
            if value:
                setattr(cfg, name, value)
        for name, value in dict(object_weight=object_weight, lr=lr).items():
            if value is not None:
                setattr(cfg, name, value)
        model_cfg = teacher_config(size, spatial_positions, plain_levels, text_embedding_std, base)
        tokenizer, text_encoder, unet = train_unet(cfg, vae, model_cfg, data=data)
        from .loop import process_state

        if process_state().is_main_process:  # under `accelerate launch`, one writer
            decoder = vae if base else _vae_decoder(vae, run_dir, seed, size=size)
            export_teacher(decoder, tokenizer, text_encoder, unet, out)
    elif what == "evaluator":
        from .evaluator import EvaluatorTrainConfig, train_evaluator

        cfg = EvaluatorTrainConfig(run_dir=os.path.join(run_dir, "evaluator"), seed=seed, init=base)
        if lr is not None:
            cfg.lr = lr
        if steps:
            cfg.steps = steps
        train_evaluator(cfg).save_pretrained(out)
    else:
        raise ValueError(f"unknown component {what!r}")
