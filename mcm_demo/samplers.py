"""Samplers as pure functions, after k-diffusion's `sampling.py`.

Each takes `denoise(x, t) -> x0` (the model already wrapped with its prediction type and
guidance), the starting noise `x`, descending integer `timesteps`, the schedule's
`alphas_cumprod`, and an optional `callback` that receives a dict with the step index, the
timestep, the current sample and the *denoised estimate* — what a streaming preview shows.
Every sampler returns the final clean latent.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .schedule import alpha_sigma_at

Denoiser = Callable[[torch.Tensor, int], torch.Tensor]


def _report(callback, i, t, x, denoised):
    if callback is not None:
        callback({"i": i, "t": t, "x": x, "denoised": denoised})


@torch.no_grad()
def sample_ddim(
    denoise: Denoiser,
    x: torch.Tensor,
    timesteps: list[int],
    alphas_cumprod: torch.Tensor,
    callback=None,
) -> torch.Tensor:
    """Deterministic DDIM (Song et al., 2021, eq. 12 with η = 0)."""
    for i, t in enumerate(timesteps):
        denoised = denoise(x, t)
        _report(callback, i, t, x, denoised)
        a_t, s_t = alpha_sigma_at(alphas_cumprod, t)
        a_next, s_next = alpha_sigma_at(
            alphas_cumprod, timesteps[i + 1] if i + 1 < len(timesteps) else None
        )
        if s_t == 0:
            x = denoised
            continue
        eps = (x - a_t * denoised) / s_t
        x = a_next * denoised + s_next * eps
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoise: Denoiser,
    x: torch.Tensor,
    timesteps: list[int],
    alphas_cumprod: torch.Tensor,
    callback=None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al., 2022, Algorithm 2), data prediction, multistep.

    Written with ratios instead of log-SNRs so the first step at zero terminal SNR
    (α = 0, λ = −∞) stays finite: it reduces to x ← σ' x + α' x0.
    """
    old_denoised, h_prev = None, None
    for i, t in enumerate(timesteps):
        denoised = denoise(x, t)
        _report(callback, i, t, x, denoised)
        a_t, s_t = alpha_sigma_at(alphas_cumprod, t)
        a_next, s_next = alpha_sigma_at(
            alphas_cumprod, timesteps[i + 1] if i + 1 < len(timesteps) else None
        )
        if s_next == 0:  # the last step lands on the clean sample
            x = denoised
            break
        exp_neg_h = (a_t * s_next) / (s_t * a_next)  # e^{-h}, h = λ_next − λ_t
        h = -np.log(exp_neg_h) if exp_neg_h > 0 else float("inf")
        d = denoised
        if old_denoised is not None and np.isfinite(h) and np.isfinite(h_prev):
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
        x = (s_next / s_t) * x + a_next * (1 - exp_neg_h) * d
        old_denoised, h_prev = denoised, h
    return x


@torch.no_grad()
def sample_consistency(
    denoise: Denoiser,
    x: torch.Tensor,
    timesteps: list[int],
    alphas_cumprod: torch.Tensor,
    generator: torch.Generator | None = None,
    callback=None,
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al., 2023, Algorithm 1): denoise, re-noise."""
    denoised = x
    for i, t in enumerate(timesteps):
        denoised = denoise(x, t)
        _report(callback, i, t, x, denoised)
        if i + 1 < len(timesteps):
            a_next, s_next = alpha_sigma_at(alphas_cumprod, timesteps[i + 1])
            # drawn where the generator lives (the pipeline's CPU one on any device: same seed,
            # same clip), then moved to the latents
            draw_on = generator.device if generator is not None else x.device
            noise = torch.randn(x.shape, generator=generator, device=draw_on).to(x)
            x = a_next * denoised + s_next * noise
    return denoised


@torch.no_grad()
def sample_euler(
    denoise: Denoiser,
    x: torch.Tensor,
    timesteps: list[int],
    alphas_cumprod: torch.Tensor,
    callback=None,
) -> torch.Tensor:
    """Euler on the probability-flow ODE in σ = √((1-ᾱ)/ᾱ) (Karras et al., 2022, Algorithm 2
    without churn), stepped as diffusers' `EulerDiscreteScheduler` steps it, the last step to
    σ = 0. `x` is unit noise, started at σ_0·x as that scheduler's `init_noise_sigma` starts
    trailing timesteps (the model sees √(1-ᾱ_0)·x, not x as DDIM's first step does);
    AnimateDiff-Lightning was distilled for this sampler."""
    sigmas = []
    for t in timesteps:
        a, s = alpha_sigma_at(alphas_cumprod, t)
        if a == 0:
            raise ValueError(
                f"Euler steps in σ = √((1-ᾱ)/ᾱ), which is infinite at t = {t} of this schedule "
                "(zero terminal SNR): sample it with ddim or dpm++."
            )
        sigmas.append(s / a)
    sigmas.append(0.0)
    y = x * sigmas[0]  # the sample in σ-space: x0 + σ ε
    for i, t in enumerate(timesteps):
        x_t = y / (sigmas[i] ** 2 + 1) ** 0.5  # the same sample in the model's (ᾱ) space
        denoised = denoise(x_t, t)
        _report(callback, i, t, x_t, denoised)
        y = y + (y - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return y


SAMPLERS = {"ddim": sample_ddim, "dpm++": sample_dpmpp_2m, "euler": sample_euler}
