"""FreeNoise's windowed temporal layers, written once for both UNet families the pipeline runs.

Only the temporal layers see more than one frame: UNet3D's temporal convolutions and temporal
transformers (ModelScopeT2V, the embedded teacher) and UNetMotion's motion modules (AnimateDiff).
While `windowed_temporal_layers` is active each of them runs on overlapping windows of the
teacher's trained length and their outputs are fused with the windows' weights
(`windows.fusion_weights`); the spatial layers still run once per frame, so a step's cost grows
with the length, not its square. So that memory does not grow with the clip either, the
windows run a few at a time (`Windowing.frames_per_pass`) and `chunked_spatial_layers` runs the
spatial layers (resnets, spatial and cross-attention, down- and upsamplers: each works on every
frame alone) on as many frames at a time: a step's working memory is that of one pass.

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
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D, TemporalConvLayer
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.transformers.transformer_temporal import (
    TransformerTemporalModel,
    TransformerTemporalModelOutput,
)
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from diffusers.models.upsampling import Upsample2D
from diffusers.utils import BaseOutput

from .windows import Windowing, fusion_weights

TEMPORAL_LAYERS = (TemporalConvLayer, TransformerTemporalModel, AnimateDiffTransformer3D)
# Per-frame layers of UNet3D's and UNetMotion's blocks: their GroupNorms normalise each (C, H, W)
# sample, i.e. each frame, alone (the temporal layers' GroupNorms span frames: never chunked).
SPATIAL_LAYERS = (ResnetBlock2D, Transformer2DModel, Downsample2D, Upsample2D)


def temporal_layers(unet: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in unet.modules() if isinstance(m, TEMPORAL_LAYERS)]


def _windowed_forward(module: torch.nn.Module, forward, plan):
    """`forward` of a temporal layer over (B·F, C, H, W) hidden states, run on the plan's windows
    (stacked into the batch, `windows_per_pass` at a time: all windows have the same length)
    and fused."""
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
        fused = torch.zeros_like(frames)
        per_pass = plan["windows_per_pass"] or count
        for first in range(0, count, per_pass):
            at = index[first : first + per_pass].to(hidden.device).flatten()
            out = forward(frames[:, at].reshape(-1, *rest), **{**arguments, "num_frames": length})
            wrapped = type(out)
            if isinstance(out, TransformerTemporalModelOutput):
                out = out.sample
            elif isinstance(out, tuple):
                out = out[0]
            share = shares[first : first + per_pass].to(out).flatten()
            fused.index_add_(1, at, out.view(batch, len(at), *rest) * share[:, None, None, None])
        fused = fused.view_as(hidden)
        if wrapped is TransformerTemporalModelOutput:
            return TransformerTemporalModelOutput(sample=fused)
        return (fused,) if wrapped is tuple else fused

    return run


@contextlib.contextmanager
def long_clip_layers(unet: torch.nn.Module, windowing: Windowing, num_frames: int):
    """What the pipeline turns on for a clip longer than a window: the temporal layers in
    windows and, unless `windowing.frames_per_pass` is 0, the spatial layers in chunks of that
    many frames (not within one window: such a clip is today's, bit for bit)."""
    fpp = windowing.frames_per_pass
    with contextlib.ExitStack() as stack:
        stack.enter_context(windowed_temporal_layers(unet, windowing, num_frames))
        if fpp and num_frames > windowing.length:
            stack.enter_context(chunked_spatial_layers(unet, fpp, num_frames))
        yield


@contextlib.contextmanager
def windowed_temporal_layers(unet: torch.nn.Module, windowing: Windowing, num_frames: int):
    """Within this block, `unet`'s temporal layers see `num_frames`-frame clips in the windows of
    `windowing`, `frames_per_pass // length` windows at a time (clips of another length pass
    through unchanged). A model with a learned frame-position table (the embedded teacher)
    reads it per window too: each frame gets its windows' positions, fused with the same
    weights."""
    plan = {
        "num_frames": num_frames,
        "windows": fusion_weights(num_frames, windowing),
        # 0: every window in one pass (stacked into the batch)
        "windows_per_pass": max(1, windowing.frames_per_pass // windowing.length)
        if windowing.frames_per_pass
        else 0,
    }
    had_positions = hasattr(unet, "frame_positions")

    def wrap(layer):
        return _windowed_forward(layer, layer.forward, plan)

    try:
        with _wrapped_forwards(temporal_layers(unet), wrap):
            if had_positions:
                unet.frame_positions = window_positions(num_frames, windowing)
            yield
    finally:
        if had_positions:
            unet.frame_positions = None


@contextlib.contextmanager
def _wrapped_forwards(layers: list[torch.nn.Module], wrap):
    """Within this block each layer's `forward` is `wrap(layer)`; afterwards the layer's own
    again (an instance attribute it had is put back, one it did not have removed)."""
    saved = [layer.__dict__.get("forward") for layer in layers]
    try:
        for layer in layers:
            layer.forward = wrap(layer)
        yield
    finally:
        for layer, forward in zip(layers, saved):
            if forward is None:
                del layer.forward
            else:
                layer.forward = forward


def spatial_layers(unet: torch.nn.Module) -> list[torch.nn.Module]:
    """The per-frame layers of the UNet's down, mid and up blocks."""
    blocks = [*unet.down_blocks, unet.mid_block, *unet.up_blocks]
    return [
        layer
        for block in blocks
        for group in ("resnets", "attentions", "downsamplers", "upsamplers")
        for layer in getattr(block, group, None) or []
        if isinstance(layer, SPATIAL_LAYERS)
    ]


def _concat(outputs: list):
    """The chunks' outputs joined along the batch: a tensor, a tuple of them, or a BaseOutput."""
    first = outputs[0]
    if isinstance(first, BaseOutput):
        return type(first)(**{k: torch.cat([o[k] for o in outputs]) for k in first.keys()})
    if isinstance(first, tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)


def _chunked_forward(module: torch.nn.Module, forward, chunk: int, num_frames: int):
    """`forward` of a per-frame layer run on `chunk` rows of its (B·F, …) input at a time. Every
    tensor argument with one row per frame (the hidden states, the time embedding repeated per
    frame, the text per frame) is split with it; the rest is passed to each chunk as it is."""
    signature = inspect.signature(type(module).forward)

    first = list(signature.parameters)[1]  # hidden_states, input_tensor or inputs

    def run(*args, **kwargs):
        bound = signature.bind(module, *args, **kwargs)
        rows = bound.arguments[first].shape[0]
        if rows <= chunk or rows % num_frames:  # a still, or a clip this was not set up for
            return forward(*args, **kwargs)
        per_row = {
            name: value
            for name, value in bound.arguments.items()
            if torch.is_tensor(value) and value.dim() and value.shape[0] == rows
        }
        outputs = []
        for start in range(0, rows, chunk):
            bound.arguments.update({k: v[start : start + chunk] for k, v in per_row.items()})
            outputs.append(forward(*bound.args[1:], **bound.kwargs))
        return _concat(outputs)

    return run


@contextlib.contextmanager
def chunked_spatial_layers(unet: torch.nn.Module, chunk: int, num_frames: int):
    """Within this block, `unet`'s spatial layers run on `chunk` frames (rows of the B·F batch)
    at a time for `num_frames`-frame clips; their outputs are the same, their working memory
    that of `chunk` frames. Only `forward` is wrapped: weights and adapters are left alone."""

    def wrap(layer):
        return _chunked_forward(layer, layer.forward, chunk, num_frames)

    with _wrapped_forwards(spatial_layers(unet), wrap):
        yield


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
