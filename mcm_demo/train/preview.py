"""Distil the embedded teacher's preview decoder from its VAE and compare it with the VAE.

`python -m mcm_demo train preview` distils `previews.TinyDecoder` from the VAE decoder on
frames of every style of the world (training prompts, seeded), writes it to weights/preview,
and reads 64 held-out clips through the VAE, the tiny decoder and two linear maps (fitted on
the world's frames, and on colour fields as a real teacher's fallback is): PSNR against the
VAE's frames, and the evaluator's colour and shape accuracy (what a preview shows a user).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time

import numpy as np
import torch

from ..embedded.world import STYLES, render_clip
from ..embedded.world.grammar import sample_scene
from ..metrics.scores import reference_clips, score_clips
from ..pipeline import encode_clips
from ..previews import TinyDecoder, fit_linear_preview, fit_to_vae


@dataclasses.dataclass
class PreviewTrainConfig:
    frames: int = 4096  # world frames encoded once; the VAE's decodes of them are the targets
    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    object_weight: float = 10.0  # objects are small: as in the VAE's training (train/vae.py)
    seed: int = 0


def world_frames(count: int, seed: int = 0) -> np.ndarray:
    """`count` frames (N, 64, 64, 3) uint8 of training prompts, every style in turn."""
    rng = random.Random(seed)
    frames = []
    for i in range(count):
        clip = render_clip(
            sample_scene(rng, "train"), STYLES[i % len(STYLES)], rng.randrange(1 << 30)
        )
        frames.append(clip[rng.randrange(len(clip))])
    return np.stack(frames)


@torch.no_grad()
def _latents_and_targets(vae, frames: np.ndarray, chunk: int = 64):
    latents, targets = [], []
    for start in range(0, len(frames), chunk):
        x = torch.from_numpy(frames[start : start + chunk]).permute(0, 3, 1, 2).float()
        z = vae.encode(x.div(127.5).sub(1)).latent_dist.mode()
        latents.append(z * vae.config.scaling_factor)
        targets.append(vae.decode(z).sample.clamp(-1, 1))
    return torch.cat(latents), torch.cat(targets)


def distil_tiny_decoder(pipe, cfg: PreviewTrainConfig = PreviewTrainConfig(), log=print):
    """The tiny decoder, trained to read latents as the VAE decoder does (object pixels,
    those away from the frame's median colour, weighted up)."""
    t0 = time.perf_counter()
    latents, targets = _latents_and_targets(pipe.vae, world_frames(cfg.frames, cfg.seed))
    log(f"{cfg.frames} frames encoded and decoded by the VAE in {time.perf_counter() - t0:.0f} s")
    background = targets.flatten(2).median(2).values[..., None, None]
    weights = 1 + (cfg.object_weight - 1) * ((targets - background).abs().amax(1, True) > 0.1)
    torch.manual_seed(cfg.seed)
    decoder = TinyDecoder(latents.shape[1], targets.shape[-1] // latents.shape[-1])
    opt = torch.optim.Adam(decoder.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(latents), (cfg.batch,))
        loss = (weights[idx] * (decoder.decode(latents[idx]) - targets[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == cfg.steps:
            log(f"step {step}: weighted MSE {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)")
    return decoder.eval()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def compare_with_vae(pipe, decoders: dict, evaluator, clips: int = 64, seed: int = 777, log=print):
    """Each decoder's frames of `clips` held-out clips (encoded by the VAE) against the VAE's."""
    real, scenes = reference_clips(clips, seed=seed)
    latents = torch.cat([encode_clips(pipe.vae, real[i : i + 16]) for i in range(0, clips, 16)])
    vae_frames = pipe.decode_latents(latents)
    rows = {"full VAE": (vae_frames, None, 0.0)}
    for name, decode in decoders.items():
        decode(latents[:1])  # first-call costs out of the timing
        t0 = time.perf_counter()
        one = decode(latents[:1])
        seconds = time.perf_counter() - t0
        frames = np.concatenate([decode(latents[i : i + 16]) for i in range(0, clips, 16)])
        assert one.shape == frames[:1].shape
        rows[name] = (frames, psnr(frames, vae_frames), seconds)
    t0 = time.perf_counter()
    pipe.decode_latents(latents[:1])
    rows["full VAE"] = (vae_frames, None, time.perf_counter() - t0)
    log(f"{clips} held-out clips (seed {seed}), encoded by the VAE, read back by each decoder:")
    log("| decoder | PSNR vs full VAE (dB) | colour | shape | seconds per 8-frame clip |")
    log("|---|---|---|---|---|")
    result = {}
    for name, (frames, db, seconds) in rows.items():
        acc = score_clips(evaluator, frames, scenes).accuracy
        shown = "—" if db is None else f"{db:.1f}"
        log(f"| {name} | {shown} | {acc['colour']:.2f} | {acc['shape']:.2f} | {seconds:.4f} |")
        result[name] = {"psnr": db, "colour": acc["colour"], "shape": acc["shape"], "s": seconds}
    return result


def train_preview(pipe, evaluator, out: str, cfg=PreviewTrainConfig(), log=print) -> dict:
    """Distil, save (fp16 safetensors) and compare; returns the comparison's readings."""
    t0 = time.perf_counter()
    decoder = distil_tiny_decoder(pipe, cfg, log)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "tiny-decoder.safetensors")
    decoder.save(path)
    log(f"wrote {path} ({os.path.getsize(path) / 1e3:.0f} kB) in {time.perf_counter() - t0:.0f} s")
    candidates = {
        "tiny decoder (shipped, fp16)": TinyDecoder.load(path),
        "linear map, fitted on world frames": fit_linear_preview(
            pipe.vae, world_frames(2048, cfg.seed)
        ),
        "linear map, fitted on colour fields (a real teacher's fallback)": fit_to_vae(
            pipe.vae, side=64, count=256
        ),
    }
    return compare_with_vae(pipe, candidates, evaluator, log=log)
