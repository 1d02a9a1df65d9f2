"""Train the embedded VAE on frames of every style of the world.

Objects are small, so plain MSE spends the capacity on backgrounds and reconstructs
objects with washed-out colours (DESIGN §3a); the loss weights object pixels ×10.

A second stage fine-tunes the decoder alone (as SD's ft-MSE VAE did): the encoder, and so
the latent space the UNet is trained in, stays fixed, so this stage can run beside the UNet's
training. It also weights the watermark, which the teacher is meant to reproduce.
"""

from __future__ import annotations

import dataclasses
import random
import time

import torch

from ..embedded.config import TeacherConfig, build_vae
from ..embedded.world.datasets import SceneStream, to_tensor
from ..embedded.world.render import watermark_mask
from .checkpoint import load_state, save_state

WATERMARK = torch.from_numpy(watermark_mask())


@dataclasses.dataclass
class VAETrainConfig:
    steps: int = 1600
    batch_clips: int = 16
    frames_per_clip: int = 2
    lr: float = 2e-3
    kl_weight: float = 1e-6
    object_weight: float = 10.0
    watermark_weight: float = 1.0
    decoder_only: bool = False
    seed: int = 0
    run_dir: str = "runs/vae"
    save_every: int = 250


def decoder_finetune_config(run_dir: str = "runs/vae-decoder", seed: int = 0) -> VAETrainConfig:
    return VAETrainConfig(
        steps=800, lr=5e-4, watermark_weight=5.0, decoder_only=True, seed=seed + 1, run_dir=run_dir
    )


def train_vae(
    cfg: VAETrainConfig, model_cfg: TeacherConfig = TeacherConfig(), log=print, init=None
):
    """Train (or, with `cfg.decoder_only`, fine-tune the decoder of `init`) and return the VAE."""
    torch.manual_seed(cfg.seed)
    vae = build_vae(model_cfg)
    if init is not None:
        vae.load_state_dict(init.state_dict())
    trainable = vae.parameters()
    if cfg.decoder_only:
        vae.requires_grad_(False)
        for part in (vae.decoder, vae.post_quant_conv):
            part.requires_grad_(True)
        trainable = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=0.0)
    state = load_state(cfg.run_dir, {"vae": vae}, opt) or {"step": 0}
    step = state["step"]
    stream = SceneStream(cfg.seed + 1000 * step, split="all")
    pick = random.Random(cfg.seed + step)
    t0 = time.time()
    while step < cfg.steps:
        clips, _, styles, masks = stream.clips(cfg.batch_clips, style=None, with_masks=True)
        idx = [pick.sample(range(clips.shape[1]), cfg.frames_per_clip) for _ in range(len(clips))]
        frames = torch.cat(
            [to_tensor(c[i][None])[0].permute(1, 0, 2, 3) for c, i in zip(clips, idx)]
        )
        weight = (
            1
            + (cfg.object_weight - 1)
            * torch.cat([torch.from_numpy(m[i]) for m, i in zip(masks, idx)])[:, None]
        )
        if cfg.watermark_weight != 1.0:
            stamped = torch.tensor([s == "lq" for s in styles for _ in range(cfg.frames_per_clip)])
            weight = (
                weight
                + (cfg.watermark_weight - 1) * stamped[:, None, None, None] * WATERMARK[None, None]
            )
        lr = cfg.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * (1 - step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        if cfg.decoder_only:  # decode the latents the UNet is trained on: the posterior mode
            with torch.no_grad():
                latents = vae.encode(frames).latent_dist.mode()
            recon = vae.decode(latents).sample
            rec_loss = loss = (weight * (recon - frames) ** 2).mean()
        else:
            posterior = vae.encode(frames).latent_dist
            recon = vae.decode(posterior.sample()).sample
            rec_loss = (weight * (recon - frames) ** 2).mean()
            loss = rec_loss + cfg.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            log(
                f"vae step {step}/{cfg.steps} rec {rec_loss.item():.4f} lr {lr:.2e} "
                f"{time.time() - t0:.0f}s"
            )
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_state(cfg.run_dir, step, {"vae": vae}, opt)
    return vae


@torch.no_grad()
def set_scaling_factor(vae, num_clips: int = 64, seed: int = 123) -> float:
    """Latents are divided by their std so the diffusion model sees unit variance (as SD does)."""
    clips, _, _ = SceneStream(seed, split="all").clips(num_clips, style=None)
    frames = to_tensor(clips).permute(0, 2, 1, 3, 4).flatten(0, 1)
    latents = vae.encode(frames).latent_dist.mode()
    factor = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=factor)
    return factor
