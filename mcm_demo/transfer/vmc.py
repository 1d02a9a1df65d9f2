"""VMC-style one-shot tuning: a LoRA on the temporal attention's q/k/v, tuned on the reference
with the motion distillation loss."""

from __future__ import annotations

import hashlib
import json
import os

import torch

from ..adapters import (
    adapter_names,
    attach_lora,
    load_adapter,
    lora_parameters,
    remove_adapter,
    resolve_target_modules,
    save_adapter,
    use_adapter,
)
from ..pipeline import unet_forward
from ..schedule import alpha_sigma, to_x0_and_eps
from .config import TransferConfig


def vmc_loss(
    pipe, x0: torch.Tensor, text: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """VMC's motion distillation: 1 − cos between consecutive-frame residuals of ε̂ and ε."""
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    t = torch.randint(200, 900, (x0.shape[0],), generator=generator)
    alpha, sigma = alpha_sigma(pipe.scheduler.alphas_cumprod, t, x0)
    noisy = alpha * x0 + sigma * noise
    out = unet_forward(pipe.unet, noisy.to(pipe.unet.dtype), t.to(x0.device), text).float()
    _, eps = to_x0_and_eps(
        out, noisy, t, pipe.scheduler.alphas_cumprod, pipe.scheduler.config.prediction_type
    )
    d_pred = (eps[:, :, 1:] - eps[:, :, :-1]).transpose(1, 2).flatten(2)  # (B, F-1, C·H·W)
    d_true = (noise[:, :, 1:] - noise[:, :, :-1]).transpose(1, 2).flatten(2)
    return (1 - torch.nn.functional.cosine_similarity(d_pred, d_true, dim=-1)).mean()


TEMPORAL_QKV = ("to_q", "to_k", "to_v")


def temporal_attention_targets(unet) -> list[str]:
    """q/k/v of every temporal attention (UNet3D's `transformer_in` and `temp_attentions`,
    AnimateDiff's `motion_modules`), whether or not a student's LoRA already wraps them."""
    temporal = (".temp_attentions.", ".transformer_in.", ".motion_modules.")
    return [
        n for n in resolve_target_modules(unet, TEMPORAL_QKV) if any(p in f".{n}" for p in temporal)
    ]


def tune_vmc(
    pipe,
    reference_latents: torch.Tensor,
    prompt: str,
    cfg: TransferConfig,
    cache_dir: str | None = None,
    progress=None,
    tuned: list[str] | None = None,
    max_tuned: int = 8,
) -> str:
    """Tune (or load from the cache) a temporal-attention LoRA on the reference; returns its name.
    `tuned` (the caller's, oldest first) lists the tuned adapters attached; past `max_tuned` the
    oldest is detached, so a long-running server does not keep every clip's.
    `reference_latents` is (K, C, F, h, w): K copies of one clip (recoloured_latents), one a
    step."""
    key = hashlib.sha256(
        reference_latents.cpu().numpy().tobytes()
        + json.dumps([prompt, cfg.tune_steps, cfg.tune_lr, cfg.tune_rank, cfg.seed]).encode()
    ).hexdigest()[:12]
    name = f"vmc-{key}"
    if name in adapter_names(pipe.unet):
        return name
    if tuned is not None:
        while len(tuned) >= max_tuned:
            remove_adapter(pipe.unet, tuned.pop(0))
        tuned.append(name)
    folder = os.path.join(cache_dir, name) if cache_dir else None
    if folder and os.path.isfile(os.path.join(folder, "adapter_model.safetensors")):
        load_adapter(pipe.unet, folder, name)
        return name
    attach_lora(
        pipe.unet,
        name,
        rank=cfg.tune_rank,
        target_modules=temporal_attention_targets(pipe.unet),
        init=True,
    )
    params = lora_parameters(pipe.unet, name)
    opt = torch.optim.AdamW(params, lr=cfg.tune_lr, weight_decay=0.0)
    text = pipe.encode_prompt([prompt]).to(pipe.unet.dtype)
    generator = torch.Generator().manual_seed(cfg.seed)
    use_adapter(pipe.unet, name)  # tuned on the teacher's noise prediction, as VMC does
    for step in range(cfg.tune_steps):
        # a single copy draws nothing: the noise stream, and so a cached adapter, stay as before
        # copies
        copy = (
            0
            if len(reference_latents) == 1
            else int(torch.randint(len(reference_latents), (1,), generator=generator))
        )
        with torch.enable_grad():
            loss = vmc_loss(pipe, reference_latents[copy : copy + 1], text, generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if progress:
            progress(step + 1, cfg.tune_steps, float(loss.detach()))
    for p in params:
        p.requires_grad_(False)
    if folder:
        save_adapter(pipe.unet, name, folder)
    return name
