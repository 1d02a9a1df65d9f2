"""Motion transfer onto the few-step consistency sampler: a new clip with the prompt's look and
the reference clip's motion.

Both methods start from a motion-preserving latent — the reference's latent noised to an
intermediate timestep — instead of DDIM inversion (a consistency sampler has no cheap
inverse), then sample with the MCM student in the remaining steps. By default the reference
is first recoloured to the prompt's look (with_look: the background and object colours of a
one-step sample of the prompt), so the start carries the reference's layout and motion and
not its colours:

- **fastvmt** (training-free, after FastVMT): at the first sampling step(s) the latent is
  optimised so that its attention motion flow matches the reference's, the reference noised
  with the same noise at the same timestep and read with the null prompt. FastVMT's two
  savings are options: a local attention window, and gradient reuse (a full backward only
  every `reuse_every`-th inner iteration; the others step with the last gradient).
- **vmc** (one-shot tuning, after VMC): a LoRA on the temporal attention's q/k/v is tuned on
  the reference with VMC's motion distillation loss (cosine of consecutive-frame residuals of
  predicted vs true noise) under an appearance-invariant prompt, then sampled together with
  the student. Tuned adapters are cached per clip, prompt and settings.
- **none**: the same seed from pure noise, no reference: the baseline.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time

import numpy as np
import torch

from .. import samplers
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
from ..embedded.world.grammar import BACKGROUNDS, COLOURS
from ..pipeline import encode_clips, unet_forward
from ..schedule import alpha_sigma, consistency_timesteps, to_x0_and_eps
from ..video_io import to_unit_float
from .flow import QKCapture, StopForward, flow_loss, motion_flow, spatial_attention

METHODS = ("fastvmt", "vmc", "none")
START_LOOKS = ("reference", "prompt")


@dataclasses.dataclass
class TransferConfig:
    """The knobs of both methods; the defaults are the app's (docs/transfer.md: how they were
    chosen)."""

    method: str = "fastvmt"
    steps: int = 4
    strength: float = 0.75  # start timestep as a share of T: lower keeps more of the reference
    seed: int = 0
    # fastvmt
    inner_iterations: int = 24
    guided_steps: int = 2  # how many of the first informative sampling steps are guided
    lr: float = 0.05
    window: int | None = (
        1  # attention window radius; None = dense attention (the speedup's baseline)
    )
    reuse_every: int = (
        4  # a full backward every this many inner iterations; 1 = every one (baseline)
    )
    # vmc
    tune_steps: int = 60
    tune_lr: float = 1e-3
    tune_rank: int = 4
    invariant_prompt: str | None = None  # None: derived from the prompt
    # "prompt": the reference recoloured to a one-step sample of the prompt (with_look) before it
    # is noised; "reference": the reference as it is
    start_look: str = "prompt"


def appearance_invariant_prompt(prompt: str) -> str:
    """Drop colour and background words, as VMC's "a car is moving" drops the car's look."""
    text = re.sub(r"\s+on an? \w+ background\b", "", prompt.strip(), flags=re.I)
    words = [w for w in text.split() if w.lower() not in COLOURS and w.lower() not in BACKGROUNDS]
    return " ".join(words) or prompt


@torch.no_grad()
def encode_clip(pipe, frames: np.ndarray) -> torch.Tensor:
    """uint8 (F, H, W, 3) → scaled latents (1, C, F, h, w) in float32."""
    return encode_clips(pipe.vae, frames[None])


# the six orders of the RGB channels, each also inverted: every copy moves exactly as the reference
RECOLOURINGS = tuple(
    (order, inverted)
    for inverted in (False, True)
    for order in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2))
)


def recoloured_clips(frames: np.ndarray) -> list[np.ndarray]:
    """The uint8 clip under each of RECOLOURINGS (the identity first)."""
    copies = []
    for order, inverted in RECOLOURINGS:
        clip = frames[..., list(order)]
        copies.append(255 - clip if inverted else clip)
    return copies


def recoloured_latents(pipe, frames: np.ndarray) -> torch.Tensor:
    """recoloured_clips, encoded: (len(RECOLOURINGS), C, F, h, w)."""
    return torch.cat([encode_clip(pipe, clip) for clip in recoloured_clips(frames)])


def _frame_median(x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per frame and channel, the median over the pixels (those with `weight` > 0.5 if given; NaN
    where none has): (B, C, F, H, W) → (B, C, F, 1, 1)."""
    flat = x.flatten(3)
    if weight is not None:
        flat = flat.masked_fill(weight.flatten(3) <= 0.5, float("nan"))
    return flat.nanmedian(-1).values[..., None, None]


def _object_colour(x: torch.Tensor, distance: torch.Tensor, far: float) -> torch.Tensor:
    """Per frame, the median colour of the object's core: its pixels at least 3/4 as far from the
    background as the farthest (the 99th percentile), so neither a blurred rim nor a faint
    watermark tints it; NaN where no pixel is beyond `far`."""
    top = torch.quantile(distance.flatten(3), 0.99, dim=-1)[..., None, None]
    return _frame_median(x, ((distance >= 0.75 * top) & (distance > far)).float())


def _background_and_object(x: torch.Tensor, far: float):
    """Per frame: the background colour, the object colour and each pixel's distance from the
    former."""
    background = _frame_median(x)
    distance = (x - background).norm(dim=1, keepdim=True)
    return background, _object_colour(x, distance, far), distance


def with_look(
    frames: torch.Tensor, look: torch.Tensor, near: float = 0.15, far: float = 0.3
) -> torch.Tensor:
    """The reference `frames` recoloured to `look` (a sample of the prompt), frame by frame: its
    background to the look's background colour and its object to the look's object colour,
    each pixel in proportion to how background- or object-like it is (within `near` of the
    frame's median colour it is background, beyond `far` object); outlines, layout and motion
    stay the reference's. Pixels in [0, 1], (B, 3, F, H, W). A frame where either has no object
    keeps the reference's object colour. Done in pixels, where a flat colour is one value:
    the same swap on VAE latents left 0.69 of transfers in the prompt's colour."""
    background, colour, distance = _background_and_object(frames, far)
    look_background, look_colour, _ = _background_and_object(look, far)
    share = ((far - distance) / (far - near)).clamp(0, 1)  # how background-like each pixel is
    recolour = (look_colour - colour).nan_to_num(0.0)
    return (frames + share * (look_background - background) + (1 - share) * recolour).clamp(0, 1)


def _noised(
    x0: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor, t: int
) -> torch.Tensor:
    alpha, sigma = alpha_sigma(alphas_cumprod, torch.full((x0.shape[0],), t), x0)
    return alpha * x0 + sigma * noise


def _flow(
    pipe, capture: QKCapture, x: torch.Tensor, t: int, text: torch.Tensor, window
) -> torch.Tensor:
    capture.reset()
    capture.enabled = True
    try:
        unet_forward(
            pipe.unet, x.to(pipe.unet.dtype), torch.tensor([t] * x.shape[0], device=x.device), text
        )
    except StopForward:  # the layers after the captured attention do not matter here
        pass
    finally:
        capture.enabled = False
    _, _, f, h, w = x.shape
    # the attention may sit at a coarser level than the latents (the ×4 teacher's sits at 8×8)
    stride = math.isqrt(h * w // capture.q.shape[1])
    return motion_flow(
        capture.q.float(),
        capture.k.float(),
        f,
        capture.attention.heads,
        h // stride,
        w // stride,
        window,
    )


def guide_latent(
    pipe,
    x: torch.Tensor,
    t: int,
    reference_flow: torch.Tensor,
    text: torch.Tensor,
    cfg: TransferConfig,
    capture: QKCapture,
) -> tuple[torch.Tensor, dict]:
    """FastVMT-style latent optimisation at one timestep; returns the latent and a log."""
    x = x.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=cfg.lr)
    grad, full, losses = None, 0, []
    for i in range(cfg.inner_iterations):
        if grad is None or i % cfg.reuse_every == 0:
            with torch.enable_grad():
                loss = flow_loss(_flow(pipe, capture, x, t, text, cfg.window), reference_flow)
                grad = torch.autograd.grad(loss, x)[0]
            full += 1
            losses.append(float(loss))
        x.grad = grad  # a reused gradient on the other iterations: FastVMT's step skipping
        opt.step()
    return x.detach(), {"flow_loss": losses, "full_backwards": full}


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


def _with_prompt_look(pipe, reference: np.ndarray, look_latents: torch.Tensor) -> torch.Tensor:
    """The reference recoloured to the look of a sample of the prompt (`look_latents`, the
    student's one step from the same noise), encoded."""
    with torch.no_grad():
        look = torch.from_numpy(pipe.decode_latents(look_latents)).permute(0, 4, 1, 2, 3)
    frames = torch.from_numpy(to_unit_float(reference)).permute(3, 0, 1, 2)[None]
    recoloured = with_look(frames, look)[0].permute(1, 2, 3, 0).mul(255).numpy()
    return encode_clip(pipe, recoloured)


def _guided_denoiser(
    pipe,
    denoise,
    guided: set,
    start,
    noise,
    text,
    cfg: TransferConfig,
    capture: QKCapture,
    logs: list,
):
    """FastVMT's wrapper of the student's denoiser: at the `guided` timesteps the latent is
    first optimised towards the flow of the start noised with the same noise (null prompt)."""
    alphas = pipe.scheduler.alphas_cumprod
    null_text = pipe.encode_prompt([""]).to(pipe.unet.dtype)

    def guided_denoise(x, t):
        if t in guided:
            tg = time.perf_counter()
            with torch.no_grad():
                noised = _noised(start, noise, alphas, t)
                ref_flow = _flow(pipe, capture, noised, t, null_text, cfg.window)
            x, log = guide_latent(pipe, x, t, ref_flow, text, cfg, capture)
            logs.append({**log, "timestep": t, "seconds": time.perf_counter() - tg})
        with torch.no_grad():
            return denoise(x, t)

    return guided_denoise


def transfer(
    pipe,
    prompt: str,
    reference: np.ndarray,
    cfg: TransferConfig,
    student: str,
    cache_dir: str | None = None,
    progress=None,
    callback=None,
    tuned: list[str] | None = None,
    max_tuned: int = 8,
) -> tuple[np.ndarray, dict]:
    """The prompt's look with the reference's motion; returns float frames and timings.
    `tuned`/`max_tuned`: the caller's list of tuned VMC adapters kept attached (tune_vmc)."""
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose from {METHODS}")
    if cfg.start_look not in START_LOOKS:
        raise ValueError(f"unknown start look {cfg.start_look!r}; choose from {START_LOOKS}")
    timings, info = {}, {}
    t0 = time.perf_counter()
    # 1. The reference in latent space, and the appearance-invariant prompt for tuning.
    reference_latents = encode_clip(pipe, reference)
    invariant = cfg.invariant_prompt or appearance_invariant_prompt(prompt)
    # 2. VMC: tune the temporal-attention LoRA (cached); it runs together with the student.
    active = [student]
    if cfg.method == "vmc":
        # tuned on recoloured copies (they move alike), so the adapter fits less of the clip's
        # colours
        active.append(
            tune_vmc(
                pipe,
                recoloured_latents(pipe, reference),
                invariant,
                cfg,
                cache_dir,
                progress,
                tuned,
                max_tuned,
            )
        )
        info["invariant_prompt"] = invariant
    timings["tuning_s"] = time.perf_counter() - t0
    use_adapter(pipe.unet, active)
    # 3. Timesteps of the student, and where to start: pure noise for the baseline, else the
    #    reference (recoloured to the prompt's look unless start_look says otherwise) noised to
    #    `strength`·T with the seed's noise: a motion-preserving start.
    t1 = time.perf_counter()
    timesteps = consistency_timesteps(cfg.steps)
    alphas = pipe.scheduler.alphas_cumprod
    generator = torch.Generator().manual_seed(cfg.seed)
    noise = torch.randn(reference_latents.shape, generator=generator).to(reference_latents.device)
    text = pipe.encode_prompt([prompt]).to(pipe.unet.dtype)
    denoise = pipe.denoiser(text, consistency=True)
    start = reference_latents
    if cfg.method != "none":
        if cfg.start_look == "prompt":  # the prompt's look: one step from the same noise
            with torch.no_grad():
                look_latents = denoise(noise, timesteps[0])
            start = _with_prompt_look(pipe, reference, look_latents)
        # start exactly at strength·T (a consistency model denoises from any t), then the grid
        # below it
        t_start = min(round(cfg.strength * len(alphas)), len(alphas) - 1)
        timesteps = [t_start] + [t for t in timesteps if t < t_start]
        x = _noised(start, noise, alphas, timesteps[0])
    else:
        x = noise
    # 4. FastVMT: before the first step(s) denoise, optimise the latent towards the flow of
    #    the reference noised with the same noise to the same timestep.
    capture, sample_with = None, denoise
    if (
        cfg.method == "fastvmt" and cfg.inner_iterations > 0
    ):  # 0 = the motion-preserving start alone
        capture = QKCapture(spatial_attention(pipe.unet), stop_early=True)
        # Guide the first steps whose noised reference still holds signal: at zero terminal SNR
        # the reference "noised" to T is the noise itself, and its flow says nothing.
        informative = [t for t in timesteps if float(alphas[t]) > 1e-6]
        info["guidance"] = []
        sample_with = _guided_denoiser(
            pipe,
            denoise,
            set(informative[: cfg.guided_steps]),
            start,
            noise,
            text,
            cfg,
            capture,
            info["guidance"],
        )
    # 5. Sample with the student (multistep consistency), then decode.
    try:
        latents = samplers.sample_consistency(
            sample_with,
            x,
            timesteps,
            alphas.to(torch.float64),
            generator=generator,
            callback=callback,
        )
        frames = pipe.decode_latents(latents)[0]
    finally:
        if capture is not None:
            capture.remove()
        use_adapter(pipe.unet, student)
    timings["sampling_s"] = time.perf_counter() - t1
    timings["guidance_s"] = sum(log["seconds"] for log in info.get("guidance", []))
    return frames, {**timings, **info, "timesteps": timesteps}
