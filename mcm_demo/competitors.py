"""The paper's competitors on the AnimateDiff teacher, put together as their model cards run them:
AnimateLCM (`wangfuyun/AnimateLCM`) and AnimateDiff-Lightning (`ByteDance/AnimateDiff-Lightning`).

MCM's students are LoRAs switched on one teacher pipeline; a competitor replaces the motion
module (and AnimateLCM adds a LoRA to the spatial layers), so each is a pipeline of its own over
the same SD1.5 base, loaded once and cached by the catalogue like a teacher:

- AnimateLCM: its `MotionAdapter` (the diffusers folder at the repo's root) and its spatial LoRA
  `AnimateLCM_sd15_t2v_lora.safetensors`, merged at weight 0.8 (scaled by alpha / rank, as
  diffusers' `load_lora_weights` + `set_adapters([0.8])` scales it), sampled at
  `LCMScheduler`'s timesteps with linear betas and its default timestep scaling (10), with CFG
  2, as its card runs it.
- AnimateDiff-Lightning: one motion-module state dict per step count
  (`animatediff_lightning_{1,2,4,8}step_diffusers.safetensors`, `MotionAdapter`'s own key names,
  loaded strictly into the teacher's motion adapter layout), sampled by Euler as
  `EulerDiscreteScheduler` steps trailing timesteps with linear betas, unguided. At a step
  count it was not
  published for, the nearest published checkpoint runs (ties to the larger) and the page's column
  names it.

The catalogue names the folders; this module only builds from them.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from . import hub
from .pipeline import TextToVideoPipeline
from .real_teachers import assemble_animatediff


@dataclasses.dataclass(frozen=True)
class Competitor:
    name: str  # the model name a request and the page's columns use
    label: str
    repo: str
    sampler: str  # ours: "consistency" (diffusers' LCMScheduler) or "euler" (EulerDiscrete)
    guidance: float  # the CFG scale of its model card; 1 = unguided
    timestep_scaling: float = 10.0  # LCMScheduler's default (MCM's students use 4)
    lora: str | None = None  # a kohya-format spatial LoRA file, merged at `lora_weight`
    lora_weight: float = 1.0
    step_file: str | None = None  # a motion state dict per published step count: "…{steps}…"
    published_steps: tuple[int, ...] = ()

    def checkpoint_steps(self, steps: int) -> int | None:
        """The step count of the checkpoint that runs at `steps`: the nearest published one
        (ties to the larger); None where one checkpoint serves every step count."""
        if not self.published_steps:
            return None
        return min(self.published_steps, key=lambda n: (abs(n - steps), -n))

    def files(self) -> tuple[str, ...]:
        """The single files it loads besides a diffusers folder at the repo's root."""
        if self.step_file:
            return tuple(self.step_file.format(steps=n) for n in self.published_steps)
        return (self.lora,) if self.lora else ()

    def run(self) -> dict:
        """Our pipeline's sampling arguments for it (they replace the page's guidance)."""
        if self.sampler == "consistency":
            return {
                "sampler": "consistency",
                "consistency_guidance": self.guidance,
                "timestep_scaling": self.timestep_scaling,
            }
        return {"sampler": self.sampler, "guidance_scale": self.guidance}


COMPETITORS = {
    c.name: c
    for c in (
        Competitor(
            "animatelcm",
            "AnimateLCM",
            "wangfuyun/AnimateLCM",
            sampler="consistency",
            guidance=2.0,
            lora="AnimateLCM_sd15_t2v_lora.safetensors",
            lora_weight=0.8,
        ),
        Competitor(
            "animatediff-lightning",
            "AnimateDiff-Lightning",
            "ByteDance/AnimateDiff-Lightning",
            sampler="euler",
            guidance=1.0,
            step_file="animatediff_lightning_{steps}step_diffusers.safetensors",
            published_steps=(1, 2, 4, 8),
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What one competitor pipeline is loaded from: the competitor and, for Lightning, the
    step count of its checkpoint."""

    competitor: str
    steps: int | None = None

    @property
    def name(self) -> str:
        return self.competitor + (f"-{self.steps}step" if self.steps else "")


def checkpoint(model: str, steps: int) -> Checkpoint:
    return Checkpoint(model, COMPETITORS[model].checkpoint_steps(steps))


def label(model: str, steps: int | None = None) -> str:
    """ "AnimateDiff-Lightning (4-step checkpoint)" where `steps` has no checkpoint of its own."""
    c = COMPETITORS[model]
    ran = c.checkpoint_steps(steps) if steps else None
    return c.label + (f" ({ran}-step checkpoint)" if ran is not None and ran != steps else "")


def repo_parts() -> list[hub.RepoPart]:
    """The hub files the competitors load: AnimateLCM's motion adapter folder (one weight
    format) and LoRA, Lightning's four diffusers-format checkpoints (not the ComfyUI copies)."""
    return [
        hub.RepoPart(c.repo, ("",) if c.lora else (), c.files(), c.label)
        for c in COMPETITORS.values()
    ]


def merge_kohya_lora(pipe: TextToVideoPipeline, state_dict: dict, weight: float) -> None:
    """Fold a kohya-format LoRA into the pipeline's UNet (`lora_unet_<module path with dots as
    underscores>`) and text encoder (`lora_te_…`): W += weight · alpha / rank · up · down, per
    layer, as diffusers' kohya loader and `set_adapters([weight])` scale it (rank = alpha
    where the file has no `.alpha`)."""
    layers = {}
    for prefix, model in (("lora_unet_", pipe.unet), ("lora_te_", pipe.text_encoder)):
        layers.update({prefix + n.replace(".", "_"): m for n, m in model.named_modules() if n})
    for name in sorted({key.split(".")[0] for key in state_dict}):
        if name not in layers:
            raise KeyError(f"the LoRA names {name!r}, which is no layer of this pipeline")
        module = layers[name]
        down = state_dict[f"{name}.lora_down.weight"].float()
        up = state_dict[f"{name}.lora_up.weight"].float()
        rank = down.shape[0]
        scale = weight * float(state_dict.get(f"{name}.alpha", rank)) / rank
        delta = (up.flatten(1) @ down.flatten(1)).view(module.weight.shape) * scale
        with torch.no_grad():
            merged = module.weight.float() + delta.to(module.weight.device)
            module.weight.copy_(merged.to(module.weight.dtype))


def _scheduler(c: Competitor, base: str):
    """The scheduler of its card, from the base's own config: our pipeline reads its noise
    schedule (linear betas) and prediction type; the sampler is ours (samplers.py)."""
    from diffusers import EulerDiscreteScheduler, LCMScheduler

    if c.sampler == "euler":
        return EulerDiscreteScheduler.from_pretrained(
            base, subfolder="scheduler", timestep_spacing="trailing", beta_schedule="linear"
        )
    return LCMScheduler.from_pretrained(base, subfolder="scheduler", beta_schedule="linear")


def assemble(
    ckpt: Checkpoint, base: str, motion_layout: str, folder: str, dtype=torch.float32
) -> TextToVideoPipeline:
    """A competitor's pipeline: the SD1.5 `base`, its motion module from `folder` (its hub
    snapshot), its LoRA merged, its card's scheduler. `motion_layout` is the teacher's motion
    adapter folder, whose config Lightning's bare state dicts load into (the card builds a
    default `MotionAdapter()`, the same layout as animatediff-motion-adapter-v1-5-2)."""
    from diffusers import MotionAdapter
    from safetensors.torch import load_file

    c = COMPETITORS[ckpt.competitor]
    if c.step_file:
        adapter = MotionAdapter.from_config(MotionAdapter.load_config(motion_layout))
        path = os.path.join(folder, c.step_file.format(steps=ckpt.steps))
        adapter.load_state_dict(load_file(path))  # strict: every key as the card loads it
    else:
        adapter = MotionAdapter.from_pretrained(folder, variant=hub.weights_variant(folder))
    pipe = assemble_animatediff(base, adapter, dtype)
    if c.lora:
        merge_kohya_lora(pipe, load_file(os.path.join(folder, c.lora)), c.lora_weight)
    pipe.scheduler = _scheduler(c, base)
    return pipe
