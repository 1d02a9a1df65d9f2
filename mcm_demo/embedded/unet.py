"""The embedded teacher's UNet: ModelScopeT2V's UNet3DConditionModel plus learned positions.

A UNet3D sees frame order only through zero-padded temporal convolutions, and direction
("moving left" vs "right") did not emerge in a CPU budget without a frame-position embedding
(docs/teacher.md); AnimateDiff's motion modules carry frame positions for the same reason.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from diffusers import UNet3DConditionModel
from diffusers.configuration_utils import register_to_config

# diffusers' pipeline loader looks a component's base class up by name in the module its
# folder names (this one, for folders saved from here), so ModelMixin must be found here.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.models.resnet import TemporalConvLayer
from diffusers.models.transformers.transformer_temporal import (
    TransformerTemporalModel,
    TransformerTemporalModelOutput,
)


class UNet3DWithFramePositions(UNet3DConditionModel):
    """UNet3DConditionModel plus a learned per-frame embedding added after `conv_in`.

    `temporal_dropout` sets the dropout diffusers' class hard-codes to 0.1 in its temporal convs
    (it only acts in training). The table
    is resampled linearly to the requested frame count, so a model trained on
    8 frames still runs at 16 (slower motion) instead of failing.
    """

    # The optional addition below starts at zero, so a warm start from a UNet without it is
    # exact: `train teacher --init-unet` lets exactly this be missing from the checkpoint.
    ZERO_INITIALISED_PARTS = ("spatial_position_embedding",)
    # Options of research runs that no shipped checkpoint uses (docs/teacher.md); a folder
    # saved while they existed names them, switched off.
    RETIRED_OPTIONS = ("frame_positions_in_resnets", "caption_in_time_embedding")

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 4,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = ("CrossAttnDownBlock3D",) * 3 + ("DownBlock3D",),
        up_block_types: tuple[str, ...] = ("UpBlock3D",) + ("CrossAttnUpBlock3D",) * 3,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int = 2,
        norm_num_groups: int | None = 32,
        cross_attention_dim: int = 1024,
        attention_head_dim: int | tuple[int] = 64,
        time_cond_proj_dim: int | None = None,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_eps: float = 1e-5,
        num_attention_heads: int | None = None,
        num_frame_positions: int = 8,
        temporal_dropout: float = 0.1,
        spatial_positions: bool = False,
    ):
        # ConfigMixin reads the config keys from this signature, hence the explicit list.
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            cross_attention_dim=cross_attention_dim,
            attention_head_dim=attention_head_dim,
            time_cond_proj_dim=time_cond_proj_dim,
            downsample_padding=downsample_padding,
            mid_block_scale_factor=mid_block_scale_factor,
            act_fn=act_fn,
            norm_eps=norm_eps,
            num_attention_heads=num_attention_heads,
        )
        # diffusers hard-codes dropout 0.1 in the temporal convs; DESIGN §3a's recipe removes it:
        # at this size the temporal path is the only way frames agree on where the object is.
        for layer in self.modules():
            if isinstance(layer, TemporalConvLayer):
                for module in layer.modules():
                    if isinstance(module, torch.nn.Dropout):
                        module.p = temporal_dropout
        # Stills (one frame) skip every temporal layer, as ModelScopeT2V and AnimateDiff train
        # their spatial layers on images: `train teacher --image-batch` mixes them into each step.
        for module in self.modules():
            if isinstance(module, (TemporalConvLayer, TransformerTemporalModel)):
                module.forward = functools.partial(_skip_on_stills, module.forward)
        channels = self.conv_in.out_channels
        self.frame_position_embedding = torch.nn.Parameter(
            torch.randn(num_frame_positions, channels) * 0.1
        )
        self._num_frames = None
        # Fractional table rows, one per frame, set while the pipeline samples in windows
        # (`free_noise.windowed_temporal_layers`); None stretches the table over the clip.
        self.frame_positions: torch.Tensor | None = None
        # Optionally a learned embedding of each latent pixel's place, added with the frame's.
        # Convolutions only learn where they are from the zero padding at the edges, but from
        # pure noise the caption alone must say *where* each frame puts the object ("moving
        # left" starts on the right): on 16×16 latents the UNet learned the colour and never
        # that layout. Zero-initialised, so a model warm-started from one without it starts
        # unchanged.
        self.spatial_position_embedding = None
        if spatial_positions:
            self.spatial_position_embedding = torch.nn.Parameter(
                torch.zeros(channels, sample_size, sample_size)
            )
        self.conv_in.register_forward_hook(self._add_frame_positions)

    @classmethod
    def extract_init_dict(cls, config_dict, **kwargs):
        config_dict = dict(config_dict)
        for key in cls.RETIRED_OPTIONS:
            if config_dict.pop(key, False):
                raise ValueError(f"{key} was a research option and is no longer supported")
        return super().extract_init_dict(config_dict, **kwargs)

    def _per_row(self, table, rows):
        """The table resampled to the current frame count (or read at `frame_positions`), one
        row per (clip, frame)."""
        num_frames = self._num_frames
        if self.frame_positions is not None and len(self.frame_positions) == num_frames:
            places = self.frame_positions.to(table.device).clamp(0, table.shape[0] - 1)
            below = places.floor().long().clamp(max=table.shape[0] - 2)
            a = (places - below)[:, None].to(table.dtype)
            table = (1 - a) * table[below] + a * table[below + 1]
        elif table.shape[0] != num_frames:
            table = F.interpolate(
                table.T[None], size=num_frames, mode="linear", align_corners=True
            )[0].T
        return table.repeat(rows // num_frames, 1)

    def _add_frame_positions(self, module, inputs, output):
        if self._num_frames > 1:  # a still has no place in time
            output = (
                output
                + self._per_row(self.frame_position_embedding, output.shape[0]).to(output.dtype)[
                    :, :, None, None
                ]
            )
        if self.spatial_position_embedding is not None:
            places = self.spatial_position_embedding
            if places.shape[1:] != output.shape[2:]:  # another resolution: stretch the grid to it
                places = F.interpolate(
                    places[None], size=output.shape[2:], mode="bilinear", align_corners=True
                )[0]
            output = output + places.to(output.dtype)
        return output

    def forward(self, sample, *args, **kwargs):
        self._num_frames = sample.shape[2]
        return super().forward(sample, *args, **kwargs)

    # diffusers answers `dtype` and `device` by walking every submodule (it looks for offloading
    # hooks), and UNet3D's forward asks for `dtype` at every call: on this small UNet that walk
    # was a measurable part of a sampling step (docs/performance.md). Its parameters share one
    # dtype and device, so the first one answers.
    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def _skip_on_stills(forward, hidden_states, *args, num_frames: int = 1, **kwargs):
    """A temporal layer's forward that passes one-frame inputs through unchanged."""
    if num_frames > 1:
        return forward(hidden_states, *args, num_frames=num_frames, **kwargs)
    if isinstance(forward.__self__, TransformerTemporalModel):
        if kwargs.get("return_dict", True):
            return TransformerTemporalModelOutput(sample=hidden_states)
        return (hidden_states,)
    return hidden_states
