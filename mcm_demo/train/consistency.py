"""The training side of latent consistency distillation (LCM, Luo et al. 2023): the teacher's
DDIM solver on the distillation grid, and the distance. The shared math is in `schedule`."""

from __future__ import annotations

import torch

from ..schedule import SOLVER_STEPS, add_noise, solver_grid


class DDIMSolver:
    """The teacher's ODE solver Φ on an N-point grid of the 1000 training steps (N = 50: skip
    20)."""

    def __init__(self, alphas_cumprod: torch.Tensor, solver_steps: int = SOLVER_STEPS):
        num_train = len(alphas_cumprod)
        self.step = num_train // solver_steps
        self.timesteps = torch.from_numpy(solver_grid(solver_steps, num_train)).long()
        self.alphas_cumprod = alphas_cumprod

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None):
        """A random grid point t_n per clip and its predecessor t_{n-1} (−1 = clean)."""
        index = torch.randint(0, len(self.timesteps), (batch,), generator=generator)
        t = self.timesteps[index]
        return t, t - self.step

    def step_back(self, x0: torch.Tensor, eps: torch.Tensor, t_prev: torch.Tensor) -> torch.Tensor:
        """x_{t_prev} = √ᾱ x̂0 + √(1-ᾱ) ε̂ (DDIM, η = 0)."""
        return add_noise(x0, eps, t_prev, self.alphas_cumprod)


def pseudo_huber(a: torch.Tensor, b: torch.Tensor, c: float = 0.001) -> torch.Tensor:
    """√(‖a−b‖² + c²) − c per element, averaged (the LCM / MCM distance d)."""
    return (((a.float() - b.float()) ** 2 + c**2).sqrt() - c).mean()
