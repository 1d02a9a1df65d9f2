"""Motion representations M(·) for the motion consistency loss (MCM §3.2, Table 5).

Each maps a video latent (B, C, F, h, w) to the tensor the consistency distance compares.
`raw` is plain LCM. The learnable head is a per-pixel two-layer MLP (1×1 convolutions, no
temporal mixing) with a zero-initialised last layer on a residual, so it starts as the
identity; its consistency target uses an EMA copy of it, and both are dropped at inference.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

MOTION_REPRESENTATIONS = (
    "raw",
    "difference",
    "correlation",
    "low-frequency",
    "high-frequency",
    "learnable",
)


def latent_difference(z: torch.Tensor) -> torch.Tensor:
    return z[:, :, 1:] - z[:, :, :-1]


def latent_correlation(z: torch.Tensor) -> torch.Tensor:
    """4D cost volume: every position of frame i dotted with every position of frame i+1."""
    b, c, f, h, w = z.shape
    tokens = z.permute(0, 2, 3, 4, 1).reshape(b, f, h * w, c)
    return tokens[:, :-1] @ tokens[:, 1:].transpose(-1, -2) / c**0.5  # (B, F-1, hw, hw)


def low_frequency(z: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """A box low-pass in the space-time Fourier domain (as FreeInit's frequency split)."""
    spectrum = torch.fft.fftshift(torch.fft.fftn(z.float(), dim=(2, 3, 4)), dim=(2, 3, 4))
    mask = torch.ones(z.shape[2:], device=z.device)
    for axis, n in enumerate(z.shape[2:]):
        freq = (torch.arange(n, device=z.device) - n // 2).abs() / max(n / 2, 1)
        mask = mask * (freq <= cutoff).float().view([-1 if i == axis else 1 for i in range(3)])
    filtered = torch.fft.ifftn(torch.fft.ifftshift(spectrum * mask, dim=(2, 3, 4)), dim=(2, 3, 4))
    return filtered.real.to(z.dtype)


def high_frequency(z: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    return z - low_frequency(z, cutoff)


class MotionHead(nn.Module):
    """Per-pixel MLP C → hidden → C on a residual; the last layer starts at zero."""

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(channels, hidden, 1), nn.SiLU(), nn.Conv3d(hidden, channels, 1)
        )
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.net(z)


class MotionRepresentation(nn.Module):
    """M for the student's side and M⁻ for the target's side of the MCD loss."""

    def __init__(self, kind: str, channels: int, ema_decay: float = 0.95):
        super().__init__()
        if kind not in MOTION_REPRESENTATIONS:
            raise ValueError(
                f"unknown motion representation {kind!r}; choose from {MOTION_REPRESENTATIONS}"
            )
        self.kind, self.ema_decay = kind, ema_decay
        self.head = MotionHead(channels) if kind == "learnable" else None
        self.target_head = (
            copy.deepcopy(self.head).requires_grad_(False) if self.head is not None else None
        )

    def _fixed(self, z):
        return {
            "raw": lambda x: x,
            "difference": latent_difference,
            "correlation": latent_correlation,
            "low-frequency": low_frequency,
            "high-frequency": high_frequency,
        }[self.kind](z)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z) if self.head is not None else self._fixed(z)

    @torch.no_grad()
    def target(self, z: torch.Tensor) -> torch.Tensor:
        return self.target_head(z) if self.target_head is not None else self._fixed(z)

    @torch.no_grad()
    def update_target(self) -> None:
        if self.head is not None:
            for t, p in zip(self.target_head.parameters(), self.head.parameters()):
                t.lerp_(p, 1 - self.ema_decay)
