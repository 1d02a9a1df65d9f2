"""The real teachers' parts put together as our pipeline: AnimateDiff's SD1.5 base and motion
adapter around `UNetMotionModel`, and the memory savings a CUDA device runs them with. The
catalogue names the folders; this module only builds from them."""

from __future__ import annotations

import importlib.util
import os

import torch

from . import hub
from .pipeline import TextToVideoPipeline


def assemble_animatediff(base: str, motion_adapter, dtype: torch.dtype = torch.float32):
    """An SD1.5 folder + a motion adapter (its folder, or a loaded `MotionAdapter`) → our
    pipeline around `UNetMotionModel`, with the scheduler MCM's AnimateDiff checkpoints were
    distilled with (DESIGN §4)."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        MotionAdapter,
        UNet2DConditionModel,
        UNetMotionModel,
    )
    from transformers import CLIPTextModel, CLIPTokenizer

    def variant(sub: str = "") -> dict:  # `fetch` gets the fp16 files where a repo has them
        return {"variant": hub.weights_variant(os.path.join(base, sub))}

    if isinstance(motion_adapter, str):
        weights = hub.weights_variant(motion_adapter)
        motion_adapter = MotionAdapter.from_pretrained(motion_adapter, variant=weights)
    unet = UNetMotionModel.from_unet2d(
        UNet2DConditionModel.from_pretrained(base, subfolder="unet", **variant("unet")),
        motion_adapter,
    )
    scheduler = DDIMScheduler.from_pretrained(
        base,
        subfolder="scheduler",
        beta_schedule="linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        timestep_spacing="linspace",
        steps_offset=1,
    )
    return TextToVideoPipeline(
        AutoencoderKL.from_pretrained(base, subfolder="vae", torch_dtype=dtype, **variant("vae")),
        CLIPTextModel.from_pretrained(
            base, subfolder="text_encoder", torch_dtype=dtype, **variant("text_encoder")
        ),
        CLIPTokenizer.from_pretrained(base, subfolder="tokenizer"),
        unet.to(dtype),
        scheduler,
    )


def enable_cuda_savings(pipe) -> None:
    """Sliced/tiled VAE decoding, and xformers attention when it is installed (else SDPA)."""
    for name in ("enable_slicing", "enable_tiling"):
        if hasattr(pipe.vae, name):
            getattr(pipe.vae, name)()
    if importlib.util.find_spec("xformers") is None:
        return  # PyTorch's SDPA, diffusers' default
    try:
        pipe.unet.enable_xformers_memory_efficient_attention()
    except Exception:  # a build that does not support this GPU or UNet: keep SDPA
        pass
