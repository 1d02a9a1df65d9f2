"""`python -m mcm_demo train …`: rebuild the shipped checkpoints, seeded and resumable.

Each stage keeps its state under `--run-dir` and picks up where it stopped, so a long CPU
run survives being cut off; the finished checkpoint is written in the shipped layout.
"""
from __future__ import annotations

import dataclasses
import os

import torch

from .catalog import EMBEDDED_TEACHER, EVALUATOR
from diffusers import AutoencoderKL

from .models import TEACHER_SIZES, UNet3DWithFramePositions


def _vae(run_dir: str, seed: int, steps: int | None = None, size: str = "x8"):
    """Stage 1: the whole VAE. Its encoder fixes the latent space the UNet learns in."""
    from .teacher.train_vae import VAETrainConfig, set_scaling_factor, train_vae

    cfg = VAETrainConfig(run_dir=os.path.join(run_dir, "vae"), seed=seed)
    if steps:
        cfg.steps = steps
    vae = train_vae(cfg, TEACHER_SIZES[size]).eval()
    set_scaling_factor(vae)
    return vae


def _vae_decoder(vae, run_dir: str, seed: int, steps: int | None = None, size: str = "x8"):
    """Stage 2: the decoder alone; independent of the UNet, so it may run beside it."""
    from .teacher.train_vae import decoder_finetune_config, train_vae

    cfg = decoder_finetune_config(os.path.join(run_dir, "vae-decoder"), seed)
    if steps:
        cfg.steps = steps
    tuned = train_vae(cfg, TEACHER_SIZES[size], init=vae).eval()
    tuned.register_to_config(scaling_factor=vae.config.scaling_factor)
    return tuned


def export_teacher(vae, tokenizer, text_encoder, unet, out: str) -> None:
    from diffusers import DDIMScheduler

    from .models import build_noise_schedule
    from .pipeline import TextToVideoPipeline

    scheduler = DDIMScheduler.from_config(build_noise_schedule().config)
    TextToVideoPipeline(vae, text_encoder, tokenizer, unet, scheduler).save_pretrained(out)


def train_component(what: str, steps: int | None = None, out: str | None = None, run_dir: str = "runs", seed: int = 0,
                    object_weight: float | None = None, train_text_encoder: bool = False,
                    init_unet: str | None = None, size: str = "x8", high_noise_share: float = 0.0,
                    spatial_positions: bool = False, plain_levels: int | None = None,
                    text_embedding_std: str | None = None, caption_in_time_embedding: bool = False,
                    edge_weight: float = 0.0, lr: float | None = None, base: str | None = None,
                    image_batch: int = 0, batch: int | None = None, num_clips: int | None = None,
                    keep_every: int = 0, resume_from: str | None = None):
    torch.manual_seed(seed)
    if what == "vae":
        vae = _vae(run_dir, seed, steps, size)
        vae.save_pretrained(out or os.path.join(run_dir, "vae", "export"))
    elif what == "vae-decoder":
        _vae_decoder(_vae(run_dir, seed, size=size), run_dir, seed, steps, size).save_pretrained(
            out or os.path.join(run_dir, "vae-decoder", "export"))
    elif what == "teacher":
        from .teacher.train_unet import UNetTrainConfig, train_unet

        # a base teacher brings its VAE (decoder fine-tune included); otherwise the run trains one
        vae = AutoencoderKL.from_pretrained(base, subfolder="vae").eval() if base else _vae(run_dir, seed, size=size)
        cfg = UNetTrainConfig(run_dir=os.path.join(run_dir, "unet"), seed=seed, base=base, image_batch=image_batch,
                              keep_every=keep_every, resume_from=resume_from)
        if batch:
            cfg.batch = batch
        if num_clips:
            cfg.num_clips = num_clips
        if steps:
            cfg.steps = steps
        if object_weight is not None:
            cfg.object_weight = object_weight
        if lr is not None:
            cfg.lr = lr
        cfg.train_text_encoder, cfg.init_unet = train_text_encoder, init_unet
        cfg.high_noise_share, cfg.edge_weight = high_noise_share, edge_weight
        size_cfg = dataclasses.replace(TEACHER_SIZES[size], unet_spatial_positions=spatial_positions,
                                       unet_caption_in_time_embedding=caption_in_time_embedding)
        if plain_levels is not None:
            size_cfg = dataclasses.replace(size_cfg, unet_plain_levels=plain_levels)
        if text_embedding_std is not None:  # "clip": CLIP's own init, as runs made before the size's std had
            size_cfg = dataclasses.replace(
                size_cfg, text_embedding_std=None if text_embedding_std == "clip" else float(text_embedding_std))
        if base:  # the base's UNet layout, whatever the size's default
            size_cfg = dataclasses.replace(size_cfg, unet_spatial_positions=UNet3DWithFramePositions.load_config(
                base, subfolder="unet").get("spatial_positions", False))
        tokenizer, text_encoder, unet = train_unet(cfg, vae, size_cfg)
        decoder = vae if base else _vae_decoder(vae, run_dir, seed, size=size)
        export_teacher(decoder, tokenizer, text_encoder, unet, out or str(EMBEDDED_TEACHER))
    elif what == "evaluator":
        from .metrics.evaluator import EvaluatorTrainConfig, train_evaluator

        cfg = EvaluatorTrainConfig(run_dir=os.path.join(run_dir, "evaluator"), seed=seed, init=base)
        if lr is not None:
            cfg.lr = lr
        if steps:
            cfg.steps = steps
        train_evaluator(cfg).save_pretrained(out or str(EVALUATOR))
    else:
        raise ValueError(f"unknown component {what!r}")
