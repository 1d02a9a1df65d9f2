"""One readable text-to-video pipeline for UNet3D (ModelScope) and UNetMotion (AnimateDiff)
teachers: prompt → text embeddings → noise → sampler loop → VAE decode → frames.

The sampler is a pure function from `samplers.py`; this class only wraps the UNet into a
denoiser (prediction type, classifier-free guidance) and hands it over.
"""

import contextlib
import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, ModelMixin, SchedulerMixin, UNetMotionModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import adapters as adapter_ops
from . import models as _saved_folders_name_this  # noqa: F401 (see models.py)
from . import samplers, windows
from .free_noise import long_clip_layers, per_frame_text
from .schedule import (
    TIMESTEP_SCALING,
    alpha_sigma_at,
    consistency_output,
    consistency_timesteps,
    spaced_timesteps,
    x0_and_eps,
)


class PipelineInputError(ValueError):
    """Bad user input (empty prompt, step count out of range, ...), with a message to show."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a request may ask for, stated once: the pipeline enforces them, and the app's
    validator (`app.service.check_request`), the CLI and the page's sliders read them."""

    prompt_chars: int = 2000
    frames: tuple[int, int] = (2, 128)  # past the trained window: in windows (FreeNoise)
    teacher_steps: tuple[int, int] = (1, 1000)
    student_steps: tuple[int, int] = (1, 8)  # the consistency students are few-step samplers
    guidance: tuple[float, float] = (0.0, 50.0)


LIMITS = Limits()


def check_prompt(prompt, what: str = "The prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise PipelineInputError(f"{what} is empty: describe the video.")
    if len(prompt) > LIMITS.prompt_chars:
        raise PipelineInputError(
            f"{what} has {len(prompt):,} characters; the limit is {LIMITS.prompt_chars:,}."
        )
    return prompt


def whole_number(value, what: str) -> int:
    """`value` as an int, if it is a whole number (a UI may send 4.0)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PipelineInputError(f"{what} must be a whole number, got {value!r}.") from None
    if not number.is_integer():
        raise PipelineInputError(f"{what} must be a whole number, got {value!r}.")
    return int(number)


def check_seed(seed) -> int:
    seed = whole_number(seed, "Seed")
    if not 0 <= seed < 2**63:
        raise PipelineInputError(f"Seed must be from 0 to 2^63−1, got {seed}.")
    return seed


def check_range(value, bounds: tuple, message: str):
    """`value` if it lies in `bounds` (inclusive); else PipelineInputError("<message>, got v.")."""
    lo, hi = bounds
    if not lo <= value <= hi:
        raise PipelineInputError(f"{message.format(lo=lo, hi=hi)}, got {value}.")
    return value


def device_and_dtype(module: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where a model's weights live and in what dtype, from its first parameter (diffusers'
    `.device` / `.dtype` walk every submodule on each access)."""
    first = next(module.parameters())
    return first.device, first.dtype


def unet_forward(unet, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """The UNet's raw output for (B, C, F, H, W) latents and text (B, T, D), one condition per
    clip, or (B, F, T, D), one per frame (prompt travel). UNet3D takes one text row per clip
    (per-frame text reaches its spatial transformers through `per_frame_text`); AnimateDiff's
    UNetMotionModel folds the frames into the batch and wants one per frame."""
    if isinstance(unet, UNetMotionModel):
        rows = text.flatten(0, 1) if text.dim() == 4 else text.repeat_interleave(x.shape[2], 0)
        return unet(x, t, encoder_hidden_states=rows).sample
    if text.dim() == 4:
        with per_frame_text(unet, text.flatten(0, 1)):
            return unet(x, t, encoder_hidden_states=text[:, 0]).sample
    return unet(x, t, encoder_hidden_states=text).sample


def trained_frames(unet) -> int:
    """The clip length a teacher was trained on: the window of windowed sampling. The embedded
    UNet knows it (its frame-position table); ModelScopeT2V was trained on 16 frames, and so
    were AnimateDiff's motion adapters (their position tables may be longer: up to 32)."""
    if isinstance(unet, UNetMotionModel):
        return min(16, int(unet.config.motion_max_seq_length))
    return int(getattr(unet.config, "num_frame_positions", 16))


def long_clip_windowing(
    unet, num_frames: int, stride: int | None = None
) -> windows.Windowing | None:
    """The pipeline's default `windowing` for a clip: windows of the teacher's trained length,
    `stride` frames apart (None: half a window), past that length; none within it."""
    window = trained_frames(unet)
    if stride is not None:
        check_range(
            whole_number(stride, "The window stride"),
            (1, window),
            "The window stride must be from {lo} to {hi} frames (the teacher's trained window)",
        )
    return windows.Windowing(window, stride) if num_frames > window else None


@torch.no_grad()
def encode_clips(vae, clips: np.ndarray) -> torch.Tensor:
    """uint8 clips (B, F, H, W, 3) → the VAE's scaled latents (B, C, F, h, w) in float32, every
    frame encoded as an image (the posterior's mode)."""
    frames = torch.from_numpy(np.ascontiguousarray(clips)).float().div(127.5).sub(1)
    b, f = frames.shape[:2]
    # (B·F, 3, H, W) as a channels-last view: how motion transfer has always encoded its reference
    # (a contiguous copy gives the same latents only to ~1e-7, and transfer's outputs shift)
    x = frames.flatten(0, 1).permute(0, 3, 1, 2)
    z = vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mode().float()
    return (z * vae.config.scaling_factor).view(b, f, *z.shape[1:]).transpose(1, 2)


def encode_prompts(tokenizer, text_encoder, prompts: list[str], return_pooled: bool = False):
    """Per-token states for the UNet; with `return_pooled`, also the pooled vector."""
    ids = tokenizer(
        prompts,
        padding="max_length",
        truncation=True,
        max_length=tokenizer.model_max_length,
        return_tensors="pt",
    ).input_ids
    out = text_encoder(ids.to(text_encoder.device))
    return (out[0], out[1]) if return_pooled else out[0]


class TextToVideoPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        unet: ModelMixin,
        scheduler: SchedulerMixin,
    ):
        super().__init__()
        self.register_modules(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
        )
        # pixels per latent pixel: the VAE halves the size at every level but the last
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    # -- named LoRA students on the one base UNet (switched, never reloaded) ----------------
    def load_adapter(self, folder: str, name: str) -> None:
        adapter_ops.load_adapter(self.unet, folder, name)

    def set_adapter(self, name: str | None, merge: bool = False) -> None:
        """Run a distilled student by name; None runs the teacher itself. `merge` folds the
        student into the base weights (what serving does: a step then costs a teacher's) and
        switches without touching what training needs."""
        adapter_ops.use_adapter(self.unet, name, merge=merge)

    @property
    def adapters(self) -> list[str]:
        return adapter_ops.adapter_names(self.unet)

    # -- pieces the UI and the trainers reuse -------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], return_pooled: bool = False):
        """Per-token states for the UNet; with `return_pooled`, also the pooled vector
        (the distillation discriminator's text condition)."""
        return encode_prompts(self.tokenizer, self.text_encoder, prompts, return_pooled)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk: int = 16) -> np.ndarray:
        """(B, C, F, h, w) latents → float frames (B, F, H, W, 3) in [0, 1]; decoded in chunks."""
        b, c, f, h, w = latents.shape
        flat = latents.transpose(1, 2).reshape(b * f, c, h, w) / self.vae.config.scaling_factor
        vae_dtype = device_and_dtype(self.vae)[1]
        images = torch.cat(
            [self.vae.decode(part.to(vae_dtype)).sample.float() for part in flat.split(chunk)]
        )
        images = (images / 2 + 0.5).clamp(0, 1)
        return images.view(b, f, *images.shape[1:]).permute(0, 1, 3, 4, 2).cpu().numpy()

    def denoised_estimate(
        self, model_output: torch.Tensor, x: torch.Tensor, t: int
    ) -> torch.Tensor:
        """x0 from the UNet's output, whatever it was trained to predict."""
        alpha, sigma = alpha_sigma_at(self.scheduler.alphas_cumprod, t)
        return x0_and_eps(model_output, x, alpha, sigma, self.scheduler.config.prediction_type)[0]

    def denoiser(
        self,
        text: torch.Tensor,
        consistency: bool,
        guidance_scale: float = 1.0,
        timestep_scaling: float = TIMESTEP_SCALING,
    ) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """`denoise(x, t) -> x0` for the samplers. With guidance > 1, `text` is [uncond; cond]
        and classifier-free guidance is applied; a consistency student returns its
        boundary-scaled estimate f(x, t) = c_skip x + c_out x̂0 (of the guided output, where
        a student is run with guidance: AnimateLCM's card guides it; MCM has it distilled in)."""
        device, dtype = device_and_dtype(self.unet)
        do_cfg = guidance_scale > 1.0

        def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
            model_in = torch.cat([x, x]) if do_cfg else x
            steps = torch.tensor([t] * model_in.shape[0], device=device)
            out = unet_forward(self.unet, model_in.to(dtype), steps, text).float()
            if do_cfg:
                out_uncond, out_cond = out.chunk(2)
                out = out_uncond + guidance_scale * (out_cond - out_uncond)
            if consistency:
                return consistency_output(
                    out,
                    x,
                    steps[: len(x)].cpu(),
                    self.scheduler.alphas_cumprod,
                    self.scheduler.config.prediction_type,
                    timestep_scaling,
                )
            return self.denoised_estimate(out, x, t)

        return denoise

    def check_inputs(self, prompt, num_inference_steps, num_frames, guidance_scale, sampler):
        if isinstance(prompt, dict):  # prompt travel: {frame: prompt}
            try:
                windows.check_prompt_schedule(prompt, num_frames or 0)
            except ValueError as error:
                raise PipelineInputError(str(error)) from None
            prompts = list(prompt.values())
        else:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            check_prompt("")
        for p in prompts:
            check_prompt(p)
        if sampler not in samplers.SAMPLERS and sampler != "consistency":
            raise PipelineInputError(
                f"Unknown sampler {sampler!r}; choose from "
                f"{sorted(samplers.SAMPLERS) + ['consistency']}."
            )
        if not isinstance(num_inference_steps, int) or not isinstance(num_frames, int):
            raise PipelineInputError("Steps and frames must be whole numbers.")
        if sampler == "consistency":
            check_range(
                num_inference_steps,
                LIMITS.student_steps,
                "A consistency student samples in {lo} to {hi} steps",
            )
        else:
            check_range(
                num_inference_steps, LIMITS.teacher_steps, "Steps must be from {lo} to {hi}"
            )
        check_range(num_frames, LIMITS.frames, "Frames must be from {lo} to {hi}")
        check_range(guidance_scale, LIMITS.guidance, "Guidance scale must be from {lo} to {hi}")
        return prompts

    # -- the story ----------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | dict[int, str],
        negative_prompt: str = "",
        num_inference_steps: int = 25,
        guidance_scale: float = 5.0,
        sampler: str = "ddim",
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        callback: Callable[[dict], None] | None = None,
        output_type: str = "np",
        timestep_scaling: float = TIMESTEP_SCALING,
        consistency_guidance: float = 1.0,
        windowing: windows.Windowing | bool | None = None,
    ):
        """`prompt` as {frame: prompt} travels between prompts: each holds, then its text
        embedding blends into the next one's over the trained length before the next frame.
        `windowing`: None samples clips longer than the teacher's trained length in
        overlapping windows of that length (FreeNoise) and shorter ones whole (True: the
        same); False samples every clip whole (the frame-position table stretched over it);
        a `windows.Windowing` sets the windows."""
        # 1. Check inputs; the UI shows these messages as they are.
        num_frames = num_frames or 8
        prompts = self.check_inputs(
            prompt, num_inference_steps, num_frames, guidance_scale, sampler
        )
        travel = isinstance(prompt, dict)
        if windowing is None or windowing is True:
            windowing = long_clip_windowing(self.unet, num_frames)
        windowing = windowing or None
        device, dtype = device_and_dtype(self.unet)
        # UNet3D's temporal convs carry a hard-coded dropout: sampling must be in eval mode.
        # (`eval()` walks every submodule, so only a model left in training mode pays for it.)
        for module in (self.unet, self.text_encoder, self.vae):
            if module.training:
                module.eval()

        # 2. Encode the prompt, and the negative prompt for classifier-free guidance
        #    (a consistency student has guidance distilled in: it runs unguided, unless its
        #    authors guide it, as AnimateLCM's card does: `consistency_guidance`).
        consistency = sampler == "consistency"
        guidance_scale = consistency_guidance if consistency else guidance_scale
        do_cfg = guidance_scale > 1.0
        cond = self.encode_prompt(prompts)
        if travel:  # one condition per frame (1, F, T, D), blending over a trained window
            ramp = trained_frames(self.unet)
            cond = windows.interpolate_prompts(cond, list(prompt), num_frames, ramp)[None]
        batch = len(cond)
        if do_cfg:
            uncond = self.encode_prompt([negative_prompt] * batch)
            if travel:
                uncond = uncond[:, None].expand_as(cond)
            text = torch.cat([uncond, cond]).to(dtype)
        else:
            text = cond.to(dtype)

        # 3. Timesteps: trailing spacing, so even one step starts from pure noise at T-1; a
        #    consistency student picks points of its distillation solver's grid as diffusers'
        #    LCMScheduler does, which the official MCM demo samples with (schedule.py).
        num_train = self.scheduler.config.num_train_timesteps
        timesteps = (
            consistency_timesteps(num_inference_steps, num_train_timesteps=num_train)
            if consistency
            else spaced_timesteps(num_inference_steps, num_train)
        )

        # 4. Initial noise, in float32 whatever the UNet's dtype (the sampler math stays exact).
        scale = self.vae_scale_factor
        height, width = (
            height or self.unet.config.sample_size * scale,
            width or self.unet.config.sample_size * scale,
        )
        shape = (
            batch,
            self.unet.config.in_channels,
            num_frames,
            height // scale,
            width // scale,
        )
        if latents is None:
            latents = torch.randn(
                shape, generator=generator, device=generator.device if generator else "cpu"
            )
            if windowing is not None:  # FreeNoise: later windows reuse the first one's noise
                latents = windows.reschedule_noise(latents, windowing, generator)
        latents = latents.to(device, torch.float32)

        # 5. The denoiser the sampler calls: UNet → x0, with guidance (or the student's
        #    boundary-scaled estimate).
        denoise = self.denoiser(text, consistency, guidance_scale, timestep_scaling)

        # 6. Sample; a long clip's temporal layers see it in overlapping windows, fused, and
        #    its spatial layers a window's worth of frames at a time (the same output, less
        #    memory). A clip within one window runs the UNet as it is.
        alphas_cumprod = self.scheduler.alphas_cumprod.to(torch.float64)
        in_windows = (
            long_clip_layers(self.unet, windowing, num_frames)
            if windowing is not None
            else contextlib.nullcontext()
        )
        with in_windows:
            if consistency:
                latents = samplers.sample_consistency(
                    denoise,
                    latents,
                    timesteps,
                    alphas_cumprod,
                    generator=generator,
                    callback=callback,
                )
            else:
                latents = samplers.SAMPLERS[sampler](
                    denoise, latents, timesteps, alphas_cumprod, callback=callback
                )

        # 7. Decode.
        if output_type == "latent":
            return latents
        return self.decode_latents(latents)
