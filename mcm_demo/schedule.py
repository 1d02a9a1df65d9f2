"""The diffusion schedule's arithmetic, written once: alpha/sigma, x0 and ε from a model output,
the timestep grids, and the consistency model's boundary scalings and output.

Per-sample functions take a LongTensor `t` (one timestep per clip, −1 = clean) and broadcast
over a (B, …) tensor; the `*_at` function takes one integer timestep and returns floats.
"""

from __future__ import annotations

import numpy as np
import torch

# LCM's boundary condition: sigma_data 0.5, and MCM's public code scales t by 4 (DESIGN §4).
SIGMA_DATA = 0.5
TIMESTEP_SCALING = 4.0
SOLVER_STEPS = 50  # the distillation solver's grid: 50 of the 1000 training steps (skip 20)


def alpha_sigma_at(alphas_cumprod: torch.Tensor, t: int | None) -> tuple[float, float]:
    """√ᾱ_t and √(1-ᾱ_t) of one timestep; None or t < 0 means clean (ᾱ = 1)."""
    a = 1.0 if t is None or t < 0 else float(alphas_cumprod[t])
    return a**0.5, max(1.0 - a, 0.0) ** 0.5


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.ndim - 1))).to(like)


def alpha_sigma(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor):
    """√ᾱ_t and √(1-ᾱ_t) per sample, shaped to broadcast over `like`; t < 0 means clean."""
    # indexed where the table lives (a CUDA sampler passes CPU timesteps), moved to `like` after
    t = t.to(alphas_cumprod.device)
    ones = torch.ones_like(t, dtype=alphas_cumprod.dtype)
    a = torch.where(t >= 0, alphas_cumprod[t.clamp(min=0)], ones)
    return _per_sample(a.sqrt(), like), _per_sample((1 - a).clamp(min=0).sqrt(), like)


def _floor(value, minimum: float = 1e-4):
    return max(value, minimum) if isinstance(value, float) else value.clamp(min=minimum)


def x0_and_eps(model_output, x, alpha, sigma, prediction_type: str):
    """Clean-sample and noise estimates from a UNet output (ε, v or x0 prediction), given the
    timestep's alpha and sigma (floats or broadcastable tensors)."""
    if prediction_type == "v_prediction":
        return alpha * x - sigma * model_output, sigma * x + alpha * model_output
    if prediction_type == "epsilon":
        return (x - sigma * model_output) / _floor(alpha), model_output
    if prediction_type == "sample":
        return model_output, (x - alpha * model_output) / _floor(sigma)
    raise ValueError(f"unsupported prediction type {prediction_type!r}")


def to_x0_and_eps(
    model_output, x, t: torch.Tensor, alphas_cumprod: torch.Tensor, prediction_type: str
):
    """`x0_and_eps` at per-sample timesteps `t`."""
    alpha, sigma = alpha_sigma(alphas_cumprod, t, x)
    return x0_and_eps(model_output, x, alpha, sigma, prediction_type)


def add_noise(x0, noise, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x0 + √(1-ᾱ_t) ε, per sample."""
    alpha, sigma = alpha_sigma(alphas_cumprod, t, x0)
    return alpha * x0 + sigma * noise


def boundary_scalings(
    t: torch.Tensor, sigma_data: float = SIGMA_DATA, timestep_scaling: float = TIMESTEP_SCALING
):
    """c_skip, c_out of LCM's boundary condition f(x, 0) = x."""
    scaled = t.double() * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


def consistency_output(
    model_output, x, t, alphas_cumprod, prediction_type, timestep_scaling: float = TIMESTEP_SCALING
):
    """f_θ(x_t, t) = c_skip x_t + c_out x̂0: a consistency student's clean estimate."""
    x0, _ = to_x0_and_eps(model_output, x, t, alphas_cumprod, prediction_type)
    c_skip, c_out = boundary_scalings(t, timestep_scaling=timestep_scaling)
    return _per_sample(c_skip, x) * x + _per_sample(c_out, x) * x0


def spaced_timesteps(num_steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """'Trailing' spacing (Lin et al., 2024): the first step always starts at t = T-1."""
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"steps must be in 1..{num_train_timesteps}, got {num_steps}")
    ts = (
        np.round(np.arange(num_train_timesteps, 0, -num_train_timesteps / num_steps)).astype(int)
        - 1
    )
    return [int(t) for t in ts]


def solver_grid(solver_steps: int = SOLVER_STEPS, num_train_timesteps: int = 1000) -> np.ndarray:
    """The distillation solver's ascending grid: 19, 39, …, 999 for 50 of 1000 steps."""
    return np.arange(1, solver_steps + 1) * (num_train_timesteps // solver_steps) - 1


# How a consistency student picks its steps from the solver's grid. "linspace" is diffusers'
# `LCMScheduler` (since diffusers PR #5836, 2023), which the official MCM demo samples the
# published adapters with: floor(linspace(0, N, n, endpoint=False)) as indices into the grid
# counted down from T-1 (4 of 50: 999, 759, 499, 259). "skip" is LCM's first release, every
# (N // n)-th point (999, 759, 519, 279); 1 and 2 steps are the same in both.
CONSISTENCY_SPACINGS = ("linspace", "skip")


def consistency_timesteps(
    num_steps: int,
    solver_steps: int = SOLVER_STEPS,
    num_train_timesteps: int = 1000,
    spacing: str = "linspace",
) -> list[int]:
    """The LCM schedule: `num_steps` points of the solver's grid, descending, from T-1."""
    if not 1 <= num_steps <= solver_steps:
        raise ValueError(f"consistency steps must be in 1..{solver_steps}, got {num_steps}")
    grid = solver_grid(solver_steps, num_train_timesteps)[::-1]
    if spacing == "linspace":
        index = np.floor(np.linspace(0, solver_steps, num_steps, endpoint=False)).astype(int)
    elif spacing == "skip":
        index = np.arange(num_steps) * (solver_steps // num_steps)
    else:
        raise ValueError(f"unknown spacing {spacing!r}; choose from {CONSISTENCY_SPACINGS}")
    return [int(t) for t in grid[index]]
