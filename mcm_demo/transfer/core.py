"""Motion transfer onto the few-step consistency sampler: a new clip with the prompt's look and
the reference clip's motion.

Both methods start from a motion-preserving latent — the reference's latent noised to an
intermediate timestep — instead of DDIM inversion (a consistency sampler has no cheap
inverse), then sample with the MCM student in the remaining steps. The reference's motion is
read first (reading.py: the leading object's track, or the camera's motion); a clip without
usable motion is refused with the reason. On the embedded teacher the start is then the
prompt's object on the prompt's background laid along that track (layout.py, a clip of the
world it knows), and both methods take it as their motion reference; the real teachers start
from the reference itself, as the papers do. (`start_look="prompt"` keeps the previous start:
the reference recoloured to a one-step sample of the prompt, with_look.)

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

import re
import time

import numpy as np
import torch

from .. import samplers
from ..adapters import use_adapter
from ..embedded.world.grammar import BACKGROUNDS, COLOURS, VOCABULARY
from ..schedule import alpha_sigma, consistency_timesteps
from ..video_io import to_uint8
from .config import METHODS, START_LOOKS, TransferConfig
from .fastvmt import _flow, guide_latent
from .flow import QKCapture, spatial_attention
from .layout import layout_clip, nearest_names, prompt_look
from .look import encode_clip, recoloured_latents, with_prompt_look
from .reading import MotionReading, read_motion
from .vmc import tune_vmc


class UnusableReference(ValueError):
    """The reference has no motion to transfer (static, too short, noise): says which."""


def speaks_world(pipe) -> bool:
    """Whether the pipeline's text side is the embedded world's (its tokenizer knows only the
    grammar's words): the teacher that the layout start is drawn for."""
    vocab = set(getattr(pipe.tokenizer, "get_vocab", dict)())
    return bool(vocab) and vocab <= set(VOCABULARY) | {"<pad>", "<bos>", "<eos>", "<unk>"}


def world_layout(pipe, prompt: str, reading: MotionReading, frames: int, look=None):
    """The layout start's clip (uint8) and the (shape, colour, background) it draws: the
    prompt's words, any it lacks from `look()` (a one-step sample of the prompt, uint8), a
    shape the model can show turning where the prompt names none."""
    shape, colour, background = prompt_look(prompt)
    if (colour is None or background is None) and look is not None:
        seen_background, seen_colour = nearest_names(look())
        colour, background = colour or seen_colour, background or seen_background
    shape = shape or ("star" if reading.kind == "spinning" else "square")
    colour, background = colour or "red", background or "black"
    clip = layout_clip(reading.track, reading.kind, shape, colour, background, frames)
    return clip, (shape, colour, background)


__all__ = [
    "METHODS",
    "START_LOOKS",
    "TransferConfig",
    "UnusableReference",
    "appearance_invariant_prompt",
    "transfer",
]


def appearance_invariant_prompt(prompt: str) -> str:
    """Drop colour and background words, as VMC's "a car is moving" drops the car's look."""
    text = re.sub(r"\s+on an? \w+ background\b", "", prompt.strip(), flags=re.I)
    words = [w for w in text.split() if w.lower() not in COLOURS and w.lower() not in BACKGROUNDS]
    return " ".join(words) or prompt


@torch.no_grad()
def _noised(
    x0: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor, t: int
) -> torch.Tensor:
    alpha, sigma = alpha_sigma(alphas_cumprod, torch.full((x0.shape[0],), t), x0)
    return alpha * x0 + sigma * noise


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
    # 1. The reference's motion, read (a reference without any is refused with the reason); on
    #    the embedded teacher the motion reference becomes the prompt's object laid along it.
    generator = torch.Generator().manual_seed(cfg.seed)
    look = cfg.start_look
    if cfg.method != "none":
        reading = read_motion(reference)
        if not reading.usable:
            raise UnusableReference(reading.message)
        info["motion"] = reading.describe()
        if look == "layout" and not speaks_world(pipe):
            look = "reference"  # the real teachers know real footage: the papers' own path
    text = pipe.encode_prompt([prompt]).to(pipe.unet.dtype)
    denoise = pipe.denoiser(text, consistency=True)
    timesteps = consistency_timesteps(cfg.steps)
    motion_clip = reference
    if cfg.method != "none" and look == "layout":

        def one_step_look():  # only when the prompt lacks a colour or background word
            f, h, w = reference.shape[:3]
            down = pipe.vae_scale_factor
            shape = (1, pipe.unet.config.in_channels, f, h // down, w // down)
            x = torch.randn(shape, generator=torch.Generator().manual_seed(cfg.seed))
            with torch.no_grad():
                return to_uint8(pipe.decode_latents(denoise(x, timesteps[0]))[0])

        motion_clip, drawn = world_layout(pipe, prompt, reading, len(reference), one_step_look)
        info["layout"] = " ".join(drawn)
    info["start"] = look if cfg.method != "none" else "noise"
    reference_latents = encode_clip(pipe, motion_clip)
    invariant = cfg.invariant_prompt or appearance_invariant_prompt(prompt)
    # 2. VMC: tune the temporal-attention LoRA (cached); it runs together with the student.
    active = [student]
    if cfg.method == "vmc":
        # tuned on recoloured copies (they move alike), so the adapter fits less of the clip's
        # colours
        active.append(
            tune_vmc(
                pipe,
                recoloured_latents(pipe, motion_clip),
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
    # 3. Where to start: pure noise for the baseline, else the motion reference (the layout, or
    #    the reference recoloured to the prompt's look, or as it is) noised to `strength`·T with
    #    the seed's noise: a motion-preserving start.
    t1 = time.perf_counter()
    alphas = pipe.scheduler.alphas_cumprod
    noise = torch.randn(reference_latents.shape, generator=generator).to(reference_latents.device)
    start = reference_latents
    if cfg.method != "none":
        if look == "prompt":  # the prompt's look: one step from the same noise
            with torch.no_grad():
                look_latents = denoise(noise, timesteps[0])
            start = with_prompt_look(pipe, reference, look_latents)
        # start exactly at strength·T (a consistency model denoises from any t), then the grid
        # below it
        strength = cfg.strength
        if look == "layout" and reading.kind == "spinning":
            # from higher the student redraws a turned shape upright (0/4 rolls at 0.75 and 0.6,
            # docs/transfer.md); the layout is the prompt's look, so a lower start costs no look
            strength = min(strength, cfg.turn_strength)
            info["strength"] = strength
        t_start = min(round(strength * len(alphas)), len(alphas) - 1)
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
