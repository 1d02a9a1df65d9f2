"""FastVMT-style latent guidance: the latent is optimised so that its attention motion flow
matches the reference's (flow.py computes the flow)."""

from __future__ import annotations

import math

import torch

from ..pipeline import unet_forward
from .config import TransferConfig
from .flow import QKCapture, StopForward, flow_loss, motion_flow


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
