"""The embedded teacher's components built from one small config: VAE, UNet, noise schedule.

The architecture is ModelScopeT2V's (CLIP-style text encoder, KL-VAE, UNet3DConditionModel) at
a size that trains on a CPU.
"""

from __future__ import annotations

import dataclasses

from diffusers import AutoencoderKL, DDPMScheduler

from .unet import UNet3DWithFramePositions


@dataclasses.dataclass
class TeacherConfig:
    """Sizes of the embedded teacher; the defaults are the shipped one's (docs/teacher.md).

    A ×4 VAE (64 px → 16×16 latents, 4 channels): the ×8 VAE's reconstructions read back shape
    0.60, a ceiling no UNet on its latents can pass; the ×4's read back 0.90. The 16×16 top UNet
    level goes without cross-attention at 16 channels; no temporal-conv dropout; a learned
    embedding of place beside the frame positions.
    """

    latent_channels: int = 4
    vae_channels: tuple[int, ...] = (16, 32, 64)  # three levels: 64 px → 16×16 latents
    text_hidden: int = 64
    text_layers: int = 2
    unet_channels: tuple[int, ...] = (16, 32, 64, 64)
    unet_plain_levels: int = (
        1  # top UNet levels without cross-attention (the costly full-size ones)
    )
    unet_heads: int = 4
    unet_temporal_dropout: float = 0.0
    unet_spatial_positions: bool = True
    text_embedding_std: float | None = 0.5  # None: CLIP's 0.02 (see build_text_encoder)
    num_frames: int = 8

    @property
    def latent_size(self) -> int:
        return 64 // 2 ** (len(self.vae_channels) - 1)


# `train teacher --size`: the one shipped size (the first, ×8 teacher is retired).
TEACHER_SIZES = {"x4": TeacherConfig()}


def build_vae(cfg: TeacherConfig) -> AutoencoderKL:
    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=cfg.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=cfg.vae_channels,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
    )


def build_unet(cfg: TeacherConfig) -> UNet3DWithFramePositions:
    n, plain = len(cfg.unet_channels), cfg.unet_plain_levels
    return UNet3DWithFramePositions(
        sample_size=cfg.latent_size,
        in_channels=cfg.latent_channels,
        out_channels=cfg.latent_channels,
        # cross-attention at every level below the plain ones: DESIGN §3a found the caption
        # otherwise barely steers
        down_block_types=("DownBlock3D",) * plain + ("CrossAttnDownBlock3D",) * (n - plain),
        up_block_types=("CrossAttnUpBlock3D",) * (n - plain) + ("UpBlock3D",) * plain,
        block_out_channels=cfg.unet_channels,
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=cfg.text_hidden,
        attention_head_dim=cfg.unet_heads,
        num_frame_positions=cfg.num_frames,
        temporal_dropout=cfg.unet_temporal_dropout,
        spatial_positions=cfg.unet_spatial_positions,
    )


def build_noise_schedule() -> DDPMScheduler:
    """SD's betas rescaled to zero terminal SNR, v-prediction, trailing spacing.

    With the plain schedule ~7% of the signal survives at t=999, the model reads the
    background from the noise instead of the caption, and samples drift (DESIGN §3a).
    """
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        timestep_spacing="trailing",
        clip_sample=False,
    )
