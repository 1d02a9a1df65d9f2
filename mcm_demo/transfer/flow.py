"""Attention motion flow (AMF, after DiTFlow / FastVMT) from one spatial self-attention layer.

The queries of frame f attend to the keys of frame f+1; the attention-weighted mean key
position minus the query's own position is where that patch went: a (frames−1) × tokens × 2
displacement field. FastVMT's first saving is to let each query see only a local window of
keys (motion between neighbouring frames is small), which also removes far, wrong matches.
"""

from __future__ import annotations

import math

import torch


class StopForward(Exception):
    """Raised by the capture hook once Q and K are in: the rest of the UNet is not needed."""


class QKCapture:
    """Keep the queries and keys of one `Attention` module's self-attention while `enabled`;
    with `stop_early`, end the UNet's forward pass as soon as both are in."""

    def __init__(self, attention: torch.nn.Module, stop_early: bool = False):
        self.attention, self.stop_early = attention, stop_early
        self.q = self.k = None
        self.enabled = False
        self._handles = [
            attention.to_q.register_forward_hook(self._keep("q")),
            attention.to_k.register_forward_hook(self._keep("k")),
        ]

    def _keep(self, which):
        def hook(module, inputs, output):
            if not self.enabled:
                return
            setattr(self, which, output)
            if self.stop_early and self.q is not None and self.k is not None:
                raise StopForward

        return hook

    def reset(self):
        self.q = self.k = None

    def remove(self):
        for h in self._handles:
            h.remove()


def spatial_attention(unet: torch.nn.Module, name: str | None = None) -> torch.nn.Module:
    """The spatial self-attention used for the flow: by default the first one of the
    highest-resolution decoder block that has attention (where a latent pixel is smallest;
    the ×4 teacher's 16×16 level has none, so there it is the 8×8 one)."""
    if name is None:
        with_attention = [
            i for i, block in enumerate(unet.up_blocks) if getattr(block, "attentions", None)
        ]
        if not with_attention:
            raise ValueError(
                "this UNet has no spatial attention in its decoder to read motion from"
            )
        name = next(
            n
            for n, _ in unet.named_modules()
            if n.startswith(f"up_blocks.{with_attention[-1]}.attentions.") and n.endswith(".attn1")
        )
    return unet.get_submodule(name)


def _window_offsets(
    h: int, w: int, radius: int, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every token: the indices of the keys in its (2r+1)² window, their validity, and
    offsets."""
    dy, dx = torch.meshgrid(
        torch.arange(-radius, radius + 1), torch.arange(-radius, radius + 1), indexing="ij"
    )
    offsets = torch.stack([dx.flatten(), dy.flatten()], -1).to(device)  # (W, 2) as (x, y)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    kx, ky = (
        xs.flatten()[:, None].to(device) + offsets[:, 0],
        ys.flatten()[:, None].to(device) + offsets[:, 1],
    )
    valid = (kx >= 0) & (kx < w) & (ky >= 0) & (ky < h)
    index = ky.clamp(0, h - 1) * w + kx.clamp(0, w - 1)
    return index, valid, offsets.float()


def motion_flow(
    q: torch.Tensor,
    k: torch.Tensor,
    num_frames: int,
    heads: int,
    height: int,
    width: int,
    window: int | None = None,
) -> torch.Tensor:
    """(B·F, H·W, C) queries and keys → (B, F−1, H·W, 2) displacements in latent pixels (x, y).

    Per head, softmax(q_f · k_{f+1} / √d); the heads' attention maps are averaged. `window`
    = r restricts each query to the (2r+1)² keys around its own position.
    """
    bf, n, c = q.shape
    b, d = bf // num_frames, c // heads
    q = q.view(b, num_frames, n, heads, d)[:, :-1]
    k = k.view(b, num_frames, n, heads, d)[:, 1:]
    scale = 1.0 / math.sqrt(d)
    ys, xs = torch.meshgrid(
        torch.arange(height, device=q.device), torch.arange(width, device=q.device), indexing="ij"
    )
    coords = torch.stack([xs.flatten(), ys.flatten()], -1).float()  # (N, 2)
    if window is None:
        logits = torch.einsum("bfnhd,bfmhd->bfhnm", q, k) * scale
        probs = logits.softmax(-1).mean(2)  # (B, F-1, N, N)
        return probs @ coords - coords
    index, valid, offsets = _window_offsets(height, width, window, q.device)
    k_window = k[:, :, index]  # (B, F-1, N, W, heads, d)
    logits = torch.einsum("bfnhd,bfnwhd->bfhnw", q, k_window) * scale
    logits = logits.masked_fill(~valid[None, None, None], float("-inf"))
    probs = logits.softmax(-1).mean(2)  # (B, F-1, N, W)
    return probs @ offsets


def flow_loss(flow: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return (flow - reference).pow(2).sum(-1).mean()
