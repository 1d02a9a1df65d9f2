"""The math of latent consistency distillation (LCM, Luo et al. 2023), for any prediction type.

Everything works per sample: `t` is a LongTensor of timesteps, one per clip.
"""
from __future__ import annotations

import torch


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.view(-1, *([1] * (like.ndim - 1))).to(like)


def alpha_sigma(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor):
    """√ᾱ_t and √(1-ᾱ_t) shaped to broadcast over `like`; t < 0 means clean (ᾱ = 1)."""
    a = torch.where(t >= 0, alphas_cumprod.to(like.device)[t.clamp(min=0)], torch.ones_like(t, dtype=alphas_cumprod.dtype))
    return _per_sample(a.sqrt(), like), _per_sample((1 - a).clamp(min=0).sqrt(), like)


def to_x0_and_eps(model_output: torch.Tensor, x: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor,
                  prediction_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean-sample and noise estimates from a UNet output (ε, v or x0 prediction)."""
    alpha, sigma = alpha_sigma(alphas_cumprod, t, x)
    if prediction_type == "v_prediction":
        return alpha * x - sigma * model_output, sigma * x + alpha * model_output
    if prediction_type == "epsilon":
        return (x - sigma * model_output) / alpha.clamp(min=1e-4), model_output
    if prediction_type == "sample":
        return model_output, (x - alpha * model_output) / sigma.clamp(min=1e-4)
    raise ValueError(f"unsupported prediction type {prediction_type!r}")


def boundary_scalings(t: torch.Tensor, sigma_data: float = 0.5, timestep_scaling: float = 4.0):
    """c_skip, c_out of LCM's boundary condition f(x, 0) = x; MCM's public code scales t by 4."""
    scaled = t.double() * timestep_scaling
    c_skip = sigma_data ** 2 / (scaled ** 2 + sigma_data ** 2)
    c_out = scaled / (scaled ** 2 + sigma_data ** 2) ** 0.5
    return c_skip, c_out


def consistency_output(model_output, x, t, alphas_cumprod, prediction_type, timestep_scaling: float = 4.0):
    """f_θ(x_t, t) = c_skip x_t + c_out x̂0: the student's clean estimate."""
    x0, _ = to_x0_and_eps(model_output, x, t, alphas_cumprod, prediction_type)
    c_skip, c_out = boundary_scalings(t, timestep_scaling=timestep_scaling)
    return _per_sample(c_skip, x) * x + _per_sample(c_out, x) * x0


class DDIMSolver:
    """The teacher's ODE solver Φ on an N-point grid of the 1000 training steps (N = 50: skip 20)."""

    def __init__(self, alphas_cumprod: torch.Tensor, solver_steps: int = 50):
        num_train = len(alphas_cumprod)
        self.step = num_train // solver_steps
        self.timesteps = torch.arange(1, solver_steps + 1) * self.step - 1  # 19, 39, …, 999
        self.alphas_cumprod = alphas_cumprod

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None):
        """A random grid point t_n per clip and its predecessor t_{n-1} (−1 = clean)."""
        index = torch.randint(0, len(self.timesteps), (batch,), generator=generator)
        t = self.timesteps[index]
        return t, t - self.step

    def step_back(self, x0: torch.Tensor, eps: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
        """x_{t_prev} = √ᾱ x̂0 + √(1-ᾱ) ε̂ (DDIM, η = 0)."""
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t_prev, x0)
        return alpha * x0 + sigma * eps


def pseudo_huber(a: torch.Tensor, b: torch.Tensor, c: float = 0.001) -> torch.Tensor:
    """√(‖a−b‖² + c²) − c per element, averaged (the LCM / MCM distance d)."""
    return (((a.float() - b.float()) ** 2 + c ** 2).sqrt() - c).mean()
