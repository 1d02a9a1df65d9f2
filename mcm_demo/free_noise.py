"""FreeNoise's windowed temporal layers, written once for both UNet families the pipeline runs.

Only the temporal layers see more than one frame: UNet3D's temporal convolutions and temporal
transformers (ModelScopeT2V, the embedded teacher) and UNetMotion's motion modules (AnimateDiff).
While `windowed_temporal_layers` is active each of them runs on overlapping windows of the
teacher's trained length and their outputs are fused with the windows' weights
(`windows.fusion_weights`); the spatial layers still run once per frame, so a step's cost grows
with the length, not its square.

diffusers ships the same scheme for AnimateDiff pipelines (`enable_free_noise`): it rebuilds each
motion module's transformer blocks as `FreeNoiseTransformerBlock`s and loads their weights back
strictly, which fails once a LoRA student is attached to them (its layers are wrapped), and it
leaves UNet3D out. Wrapping the temporal modules' `forward` serves both and leaves the weights,
and any adapters on them, alone. The window weights, the windows and the noise rescheduling
are diffusers' (tests/test_long_video.py compares them).
"""

from __future__ import annotations

import contextlib
import inspect

import torch
from diffusers.models.resnet import TemporalConvLayer
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.transformers.transformer_temporal import (
    TransformerTemporalModel,
    TransformerTemporalModelOutput,
)
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

from .windows import Windowing, fusion_weights

TEMPORAL_LAYERS = (TemporalConvLayer, TransformerTemporalModel, AnimateDiffTransformer3D)


def temporal_layers(unet: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in unet.modules() if isinstance(m, TEMPORAL_LAYERS)]


def _windowed_forward(module: torch.nn.Module, forward, plan):
    """`forward` of a temporal layer over (B·F, C, H, W) hidden states, run on the plan's windows
    at once (stacked into the batch: all windows have the same length) and fused."""
    signature = inspect.signature(type(module).forward)
    windows = plan["windows"]
    index = torch.stack([torch.arange(start, end) for (start, end), _ in windows])  # (W, L)
    shares = torch.stack([share for _, share in windows])  # (W, L)

    def run(*args, **kwargs):
        arguments = signature.bind(module, *args, **kwargs).arguments
        arguments.pop("self")
        num_frames = arguments.get("num_frames", 1)
        hidden = arguments.pop("hidden_states")
        if num_frames != plan["num_frames"]:  # a still, or a clip this plan was not made for
            return forward(hidden, **arguments)
        frames = hidden.view(-1, num_frames, *hidden.shape[1:])  # (B, F, C, H, W)
        batch, (count, length), rest = frames.shape[0], index.shape, hidden.shape[1:]
        parts = frames[:, index.to(hidden.device).flatten()].reshape(-1, *rest)
        out = forward(parts, **{**arguments, "num_frames": length})
        wrapped = type(out)
        if isinstance(out, TransformerTemporalModelOutput):
            out = out.sample
        elif isinstance(out, tuple):
            out = out[0]
        weighted = (
            out.view(batch, count * length, *rest)
            * shares.to(out).flatten()[None, :, None, None, None]
        )
        fused = torch.zeros_like(frames).index_add_(1, index.to(out.device).flatten(), weighted)
        fused = fused.view_as(hidden)
        if wrapped is TransformerTemporalModelOutput:
            return TransformerTemporalModelOutput(sample=fused)
        return (fused,) if wrapped is tuple else fused

    return run


@contextlib.contextmanager
def windowed_temporal_layers(unet: torch.nn.Module, windowing: Windowing, num_frames: int):
    """Within this block, `unet`'s temporal layers see `num_frames`-frame clips in the windows of
    `windowing` (clips of another length pass through unchanged). A model with a learned
    frame-position table (the embedded teacher) reads it per window too: each frame gets its
    windows' positions, fused with the same weights."""
    plan = {"num_frames": num_frames, "windows": fusion_weights(num_frames, windowing)}
    layers = temporal_layers(unet)
    saved = [layer.__dict__.get("forward") for layer in layers]
    had_positions = hasattr(unet, "frame_positions")
    try:
        for layer in layers:
            layer.forward = _windowed_forward(layer, layer.forward, plan)
        if had_positions:
            unet.frame_positions = window_positions(num_frames, windowing)
        yield
    finally:
        for layer, forward in zip(layers, saved):
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward
        if had_positions:
            unet.frame_positions = None


def window_positions(num_frames: int, windowing: Windowing) -> torch.Tensor:
    """Each frame's place in its windows (0 … length−1), fused with the windows' weights:
    fractional rows of a frame-position table trained on one window."""
    positions = torch.zeros(num_frames)
    for (start, end), share in fusion_weights(num_frames, windowing):
        positions[start:end] += share * torch.arange(end - start)
    return positions


@contextlib.contextmanager
def per_frame_text(unet: torch.nn.Module, text: torch.Tensor):
    """UNet3D repeats one text condition per clip over its frames; within this block its spatial
    transformers read `text` (B·F, T, D) instead, one row per frame (prompt travel).
    UNetMotion takes per-frame text as it is (the pipeline passes it)."""

    def swap(module, args, kwargs):
        return args, {**kwargs, "encoder_hidden_states": text}

    handles = [
        m.register_forward_pre_hook(swap, with_kwargs=True)
        for m in unet.modules()
        if isinstance(m, Transformer2DModel)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
