"""Consistency distillation of a teacher UNet into a LoRA student: LCM, MCM and every ablation row.

One training step (MCM Alg. / Eq. 9, with the public code's choices from DESIGN §4):
  1. a batch of video latents and captions; with probability 1 − λ_real a clip is replaced by
     the student's own one-step sample from pure noise (mixed trajectory distillation);
  2. a solver grid point t_n and its predecessor t_{n−1}; noise the clips to x_{t_n};
  3. the student's consistency estimate f_θ(x_{t_n}, t_n) (boundary scalings, timestep ×4);
  4. the teacher (LoRA off) takes one DDIM step to x_{t_{n−1}} with guidance w ~ U[w_min, w_max];
  5. the target f_θ⁻(x_{t_{n−1}}, t_{n−1}) from the same LoRA UNet under no_grad;
  6. L = d(M(student), M⁻(target)) + λ_adv · L_adv^G on a few decoded frames per clip;
  7. the discriminator learns real image-set frames vs those frames (hinge or WGAN + R1).
The loop runs on `accelerate` (one CPU here, `accelerate launch` on many GPUs), seeded and
resumable from `run_dir`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os

import torch
from safetensors.torch import load_file, save_file

from ..adapters import attach_lora, load_adapter_weights, lora_parameters, save_adapter, use_adapter
from ..data.world import mismatched_captions
from ..pipeline import unet_forward
from ..schedule import (
    SOLVER_STEPS,
    TIMESTEP_SCALING,
    alpha_sigma,
    consistency_output,
    to_x0_and_eps,
)
from .consistency import DDIMSolver, pseudo_huber
from .discriminator import (
    DinoBackbone,
    FrameDiscriminator,
    VAEEncoderBackbone,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from .motion import MotionRepresentation
from .whole_frame import SampledFrameTeaching

PRESETS = {
    # the LCM baseline: raw latents, no adversarial loss, real trajectories only
    "lcm": dict(motion="raw", adversarial=False, lambda_real=1.0),
    # MCM: learnable motion head, frame adversarial loss, half the trajectories generated
    "mcm": dict(motion="learnable", adversarial=True, lambda_real=0.5),
}


@dataclasses.dataclass
class DistillConfig:
    teacher: str = "embedded"  # catalogue name, local folder or hub id
    adapter_name: str = "student"
    motion: str = "learnable"
    adversarial: bool = True
    lambda_real: float = 0.5
    variant: str = "webvid"  # the image set the discriminator calls real
    adv_weight: float = 1.0
    adv_loss: str = "hinge"
    gp_weight: float = 1.0
    adv_frames: int = 2
    # "uniform": every clip's adversarial term weighs the same; "signal": weighed by ᾱ_t, the
    # signal fraction at its timestep (normalised to mean 1 over the solver grid), so the frame
    # discriminator pulls hardest at low noise, where MCM-laion's watermark ghost came in
    # (docs/cleanliness.md, "Where the ghost comes in")
    adv_timestep_weighting: str = "uniform"
    # judge every patch of every feature level on its own instead of their mean (a faint stamp
    # covers a few patches; averaged with the rest, it hardly moved the score: docs/cleanliness.md)
    adv_per_patch: bool = False
    # a whole-frame head on the pixels beside the patch heads, and image-set stills with a
    # mismatched caption among the fakes (matching-aware, Reed et al. 2016): the one head the
    # discriminator probe saw rank stars' and crosses' outlines against their caption
    # (docs/cleanliness.md)
    adv_whole_frame: bool = False
    adv_mismatch: bool = False
    adv_mismatch_word: str = "shape"  # the word a wrong caption changes: "shape" or "colour"
    # > 0: the whole-frame head learns from the student's own 4-step clips, sampled every this
    # many steps, and mismatched stills, not from the one-step estimates, on which it forgot
    # what it was taught (`train.whole_frame`)
    adv_whole_sampled_every: int = 0
    # (top, bottom, left, right): the whole-frame head judges only this crop of the frame, the
    # place of the video set's fixed overlay; "auto": found in the video set (`train.overlay`)
    adv_whole_box: tuple[int, int, int, int] | str | None = None
    # the whole-frame head's own weight, `adv_weight` then the patch heads' (None: both at
    # `adv_weight`, scores averaged); with the box, patch heads at 2 rounded 3d-cartoon's shapes
    # (docs/cleanliness.md, "The box's head with the patch heads held back")
    adv_whole_weight: float | None = None
    backbone: str = "vae"  # "vae" (synthetic world) or a DINOv2 path / hub id
    rank: int = 16
    lr: float = 1e-4
    # None: 1e-3 on the VAE-encoder backbone, 1e-4 on DINOv2. The public code's 5e-5…1e-4 is for
    # DINOv2 features at batch 128; our heads on the VAE encoder, 16 frames a step, stayed at
    # chance with it (d_loss ≈ 1.95 through 300 steps) and never learned the watermark that MCM
    # is meant to remove.
    disc_lr: float | None = None
    guidance_min: float = 3.0  # w in the pipeline's convention: uncond + w (cond − uncond)
    guidance_max: float = 7.0
    solver_steps: int = SOLVER_STEPS
    timestep_scaling: float = TIMESTEP_SCALING
    huber_c: float = 0.001
    motion_ema: float = 0.95
    batch: int = 8
    steps: int = 600
    seed: int = 0
    run_dir: str = "runs/distill/mcm-webvid"
    latents: str = "runs/distill/latents.safetensors"
    num_clips: int = 4000
    save_every: int = 50
    # > 0: also keep the adapter folder at every multiple of this many steps (run_dir/snapshots/
    # step-NNNNN), so the student can be chosen by evaluation: with the stronger discriminator,
    # alignment peaked before the end of the run (weights/README, "Table 1 candidates").
    snapshot_every: int = 0
    # an adapter folder the student starts from (its LoRA and motion head; the discriminator's
    # heads too when that folder learned the same image set), e.g. a webvid student cleaned up
    # against an image set (weights/README.md, mcm-laion)
    init_from: str | None = None

    @classmethod
    def preset(cls, method: str, **overrides) -> DistillConfig:
        if method not in PRESETS:
            raise ValueError(f"unknown method {method!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[method], **overrides})


class Distiller:
    """Holds the teacher with its LoRA student, the motion representation and the discriminator."""

    def __init__(self, pipe, cfg: DistillConfig, image_source=None, accelerator=None):
        self.pipe, self.cfg, self.accelerator = pipe, cfg, accelerator
        self.unet, self.vae = pipe.unet, pipe.vae
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.requires_grad_(False)
        self.lora_config = attach_lora(self.unet, cfg.adapter_name, rank=cfg.rank)
        self.alphas_cumprod = pipe.scheduler.alphas_cumprod.float()
        self.prediction_type = pipe.scheduler.config.prediction_type
        self.solver = DDIMSolver(self.alphas_cumprod, cfg.solver_steps)
        self.motion = MotionRepresentation(cfg.motion, self.unet.config.in_channels, cfg.motion_ema)
        self.discriminator = None
        if cfg.adv_whole_frame and cfg.adv_per_patch:
            raise ValueError("--adv-whole-frame judges whole frames: it does not go with per-patch")
        for asked, why in (
            (cfg.adv_whole_sampled_every, "--adv-whole-sampled-every teaches"),
            (cfg.adv_whole_box is not None, "--adv-whole-box is the crop judged by"),
            (cfg.adv_whole_weight is not None, "--adv-whole-weight weighs"),
        ):
            if asked and not (cfg.adversarial and cfg.adv_whole_frame):
                raise ValueError(f"{why} the --adv-whole-frame head")
        if isinstance(cfg.adv_whole_box, str):
            raise ValueError("--adv-whole-box auto is found by the training loop (`train_distill`)")
        if cfg.adversarial:
            backbone = (
                VAEEncoderBackbone(self.vae)
                if cfg.backbone == "vae"
                else DinoBackbone(cfg.backbone)
            )
            self.discriminator = FrameDiscriminator(
                backbone,
                pipe.text_encoder.config.hidden_size,
                whole_frame_size=self.vae.config.sample_size if cfg.adv_whole_frame else 0,
                whole_frame_box=cfg.adv_whole_box,
            )
        self.image_source = (
            image_source  # callable(count, generator) -> (images (N,3,H,W) in [-1,1], captions)
        )
        self.generator_params = lora_parameters(self.unet, cfg.adapter_name) + (
            list(self.motion.head.parameters()) if self.motion.head is not None else []
        )
        self.opt_g = torch.optim.AdamW(self.generator_params, lr=cfg.lr, weight_decay=0.0)
        self.whole_teaching = (
            SampledFrameTeaching(self, cfg.adv_whole_sampled_every, cfg.batch)
            if cfg.adv_whole_sampled_every
            else None
        )
        self.step_count, self.last_batch = 0, None  # the loop sets step_count when it resumes
        disc_lr = (
            cfg.disc_lr if cfg.disc_lr is not None else (1e-3 if cfg.backbone == "vae" else 1e-4)
        )
        self.discriminator_params = (
            list(self.discriminator.heads.parameters()) if self.discriminator is not None else []
        )
        self.opt_d = (
            torch.optim.AdamW(self.discriminator_params, lr=disc_lr, betas=(0.0, 0.99))
            if self.discriminator is not None
            else None
        )
        if accelerator is not None:  # fp16 loss scaling and the checkpoints go through it
            self.opt_g = accelerator.prepare(self.opt_g)
            if self.opt_d is not None:
                self.opt_d = accelerator.prepare(self.opt_d)

    # -- pieces --------------------------------------------------------------------------
    def student(self, x, t, text):
        out = unet_forward(self.unet, x, t, text)
        return consistency_output(
            out, x, t, self.alphas_cumprod, self.prediction_type, self.cfg.timestep_scaling
        )

    @torch.no_grad()
    def teacher_step(self, x, t, t_prev, text, uncond, w):
        """One guided DDIM step of the bare teacher from t to t_prev."""
        use_adapter(self.unet, None)
        try:
            out = unet_forward(
                self.unet, torch.cat([x, x]), torch.cat([t, t]), torch.cat([text, uncond])
            )
        finally:
            use_adapter(self.unet, self.cfg.adapter_name)
        x0, eps = to_x0_and_eps(
            out, torch.cat([x, x]), torch.cat([t, t]), self.alphas_cumprod, self.prediction_type
        )
        (x0_c, x0_u), (eps_c, eps_u) = x0.chunk(2), eps.chunk(2)
        w = w.view(-1, *([1] * (x.ndim - 1)))
        return self.solver.step_back(x0_u + w * (x0_c - x0_u), eps_u + w * (eps_c - eps_u), t_prev)

    def decode_frames(
        self, latents: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode `adv_frames` randomly chosen frames per clip (sparse sampling), with gradients."""
        b, c, f = latents.shape[:3]
        idx = torch.stack(
            [torch.randperm(f, generator=generator)[: self.cfg.adv_frames] for _ in range(b)]
        )
        picked = latents.transpose(1, 2)[torch.arange(b)[:, None], idx].flatten(0, 1)
        images = self.vae.decode(picked / self.vae.config.scaling_factor).sample
        return images.clamp(-1, 1), torch.arange(b).repeat_interleave(self.cfg.adv_frames)

    # -- one step ------------------------------------------------------------------------
    def accumulate(
        self, latents: torch.Tensor, captions: list[str], generator: torch.Generator, scale=1.0
    ) -> dict:
        """Steps 1–7 up to the gradients: both losses, times `scale` (1 / accumulation
        steps), are added to the parameters' gradients; `apply` then takes the step."""
        cfg, b = self.cfg, latents.shape[0]
        self.last_batch = (captions, latents.shape[2])
        with self.autocast():
            text, pooled = self.pipe.encode_prompt(captions, return_pooled=True)
            uncond = self.pipe.encode_prompt([""] * b)

        # 1. Mixed trajectories: some clips become the student's one-step sample from noise.
        generated = torch.rand(b, generator=generator) >= cfg.lambda_real
        if generated.any():
            with torch.no_grad(), self.autocast():
                noise_t = torch.randn(latents[generated].shape, generator=generator)
                t_max = torch.full((int(generated.sum()),), len(self.alphas_cumprod) - 1)
                latents = latents.clone()
                latents[generated] = self.student(
                    noise_t.to(latents.device), t_max.to(latents.device), text[generated]
                ).to(latents.dtype)

        # 2. Grid points and the noised clips (drawn on the CPU: any device, the same run).
        t, t_prev = self.solver.sample_timesteps(b, generator)
        noise = torch.randn(latents.shape, generator=generator).to(latents.device)
        t, t_prev = t.to(latents.device), t_prev.to(latents.device)
        alpha, sigma = alpha_sigma(self.alphas_cumprod, t, latents)
        x_t = alpha * latents + sigma * noise
        w = cfg.guidance_min + (cfg.guidance_max - cfg.guidance_min) * torch.rand(
            b, generator=generator
        ).to(latents.device)

        # 3.–5. Student, teacher ODE step, target.
        with self.autocast():
            prediction = self.student(x_t, t, text)
            x_prev = self.teacher_step(x_t, t, t_prev, text, uncond, w)
            with torch.no_grad():
                target = self.student(x_prev, t_prev.clamp(min=0), text)

            # 6. Motion consistency + frame adversarial loss (the heads only pass gradients
            #    through to the student here: they learn in step 7).
            mcd = pseudo_huber(self.motion(prediction), self.motion.target(target), cfg.huber_c)
            losses = {"mcd": mcd.item()}
            loss = mcd
            if self.discriminator is not None:
                fake, owner = self.decode_frames(prediction, generator)
                self.discriminator.heads.requires_grad_(False)
                scores = self.discriminator(fake, pooled[owner], cfg.adv_per_patch)
                weights = self.adv_clip_weights(t)[owner].to(scores)
                scores = scores * weights.view(-1, *([1] * (scores.ndim - 1)))
                if cfg.adv_whole_weight is None:
                    adv = generator_loss(scores)
                    loss = loss + cfg.adv_weight * adv
                else:  # columns: the patch heads' mean, the whole frame's
                    patch, whole = generator_loss(scores[:, 0]), generator_loss(scores[:, 1])
                    adv = patch + whole
                    loss = loss + cfg.adv_weight * patch + cfg.adv_whole_weight * whole
                self.discriminator.heads.requires_grad_(True)
                losses["adv_g"] = adv.item()
        self._backward(loss * scale if scale != 1.0 else loss)

        # 7. Discriminator: image-set frames are real, the student's decoded frames fake; a
        #    still without a caption is judged without the text term (its text row is zero).
        if self.discriminator is not None:
            real, real_captions = self.image_source(len(fake), generator)
            real = real.to(fake.device, fake.dtype)
            with self.autocast():
                real_text = self.still_text(real_captions)
                fake_scores = self.discriminator(fake.detach(), pooled[owner], cfg.adv_per_patch)
                if cfg.adv_mismatch:  # half the fakes: real stills under another caption
                    half = len(real) // 2
                    wrong_text = self.wrong_still_text(real_captions[:half])
                    fake_scores = torch.cat(
                        [
                            fake_scores[: len(fake_scores) - half],
                            self.discriminator(real[:half], wrong_text, cfg.adv_per_patch),
                        ]
                    )
                d_loss = discriminator_loss(
                    self.discriminator(real, real_text, cfg.adv_per_patch),
                    fake_scores,
                    cfg.adv_loss,
                )
                if cfg.gp_weight:
                    d_loss = d_loss + cfg.gp_weight * gradient_penalty(
                        self.discriminator, real, real_text
                    )
            self._backward(d_loss * scale if scale != 1.0 else d_loss)
            losses["adv_d"] = d_loss.item()
        return losses

    def still_text(self, captions: list[str | None]) -> torch.Tensor:
        """The pooled text the discriminator judges image-set stills with: a still without a
        caption gets a zero row (judged without the text term)."""
        text = self.pipe.encode_prompt([c or "" for c in captions], return_pooled=True)[1]
        has_caption = torch.tensor([bool(c) for c in captions], device=text.device)
        return text * has_caption[:, None].to(text.dtype)

    def wrong_still_text(self, captions: list[str | None]) -> torch.Tensor:
        """`still_text` of another caption for each still (`mismatched_captions`): the
        discriminator calls a still under it fake."""
        wrong = mismatched_captions([c or "" for c in captions], self.cfg.adv_mismatch_word)
        return self.still_text(wrong)

    def adv_clip_weights(self, t: torch.Tensor) -> torch.Tensor:
        """The adversarial term's weight per clip at its timestep t (`adv_timestep_weighting`)."""
        kind = self.cfg.adv_timestep_weighting
        if kind == "uniform":
            return torch.ones(t.shape, dtype=torch.float32)
        if kind == "signal":
            signal = self.alphas_cumprod[t.cpu().clamp(min=0)]
            return signal / self.alphas_cumprod[self.solver.timesteps].mean()
        raise ValueError(
            f"unknown adversarial timestep weighting {kind!r}; choose uniform or signal"
        )

    def autocast(self):
        """Mixed precision where the run asked for it (a no-op at fp32)."""
        acc = self.accelerator
        return acc.autocast() if acc is not None else contextlib.nullcontext()

    def _backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is not None:
            self.accelerator.backward(loss)  # scales the loss under fp16
        else:
            loss.backward()

    def apply(self) -> None:
        """The optimiser steps on the accumulated gradients, averaged over the processes."""
        acc = self.accelerator
        if self.whole_teaching is not None:
            self.whole_teaching.teach(self.step_count, *self.last_batch)
        self.step_count += 1
        if acc is not None and acc.num_processes > 1:
            average_gradients(self.generator_params + self.discriminator_params)
        if acc is not None:
            acc.clip_grad_norm_(self.generator_params, 1.0)
        else:
            torch.nn.utils.clip_grad_norm_(self.generator_params, 1.0)
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)
        self.motion.update_target()
        if self.opt_d is not None:
            self.opt_d.step()
            self.opt_d.zero_grad(set_to_none=True)

    def step(self, latents: torch.Tensor, captions: list[str], generator: torch.Generator) -> dict:
        """One whole step on one batch."""
        losses = self.accumulate(latents, captions, generator)
        self.apply()
        return losses

    # -- checkpoints in the published layout, plus what the release lacks ------------------
    def save(self, folder: str, step: int | None = None) -> None:
        save_adapter(self.unet, self.cfg.adapter_name, folder, self.lora_config)
        if self.motion.head is not None:
            save_file(
                self.motion.head.state_dict(), os.path.join(folder, "motion_head.safetensors")
            )
            save_file(
                self.motion.target_head.state_dict(),
                os.path.join(folder, "motion_head_target.safetensors"),
            )
        if self.discriminator is not None:
            save_file(
                {k: v.contiguous() for k, v in self.discriminator.trainable_state_dict().items()},
                os.path.join(folder, "discriminator.safetensors"),
            )
        with open(os.path.join(folder, "distill_config.json"), "w") as f:
            json.dump(
                {**dataclasses.asdict(self.cfg), **({"step": step} if step is not None else {})},
                f,
                indent=2,
            )

    def start_from(self, folder: str) -> None:
        """A new run's student from another run's adapter folder (`init_from`)."""
        with open(os.path.join(folder, "distill_config.json")) as f:
            same_set = json.load(f).get("variant") == self.cfg.variant
        # heads that learned another image set would call this one fake: they start fresh, as
        # does a whole-frame head built for another crop (`adv_whole_box`)
        self.load(folder, discriminator=same_set, fitting_only=True)

    def load(self, folder: str, discriminator: bool = True, fitting_only: bool = False) -> None:
        """The trained parts back from an adapter folder written by `save` (the discriminator's
        heads too, unless `discriminator` is False; only those of the same shape with
        `fitting_only`)."""
        load_adapter_weights(self.unet, folder, self.cfg.adapter_name)
        if self.motion.head is not None:
            for module, name in (
                (self.motion.head, "motion_head"),
                (self.motion.target_head, "motion_head_target"),
            ):
                module.load_state_dict(load_file(os.path.join(folder, f"{name}.safetensors")))
        if discriminator and self.discriminator is not None:
            self.discriminator.load_trainable(
                load_file(os.path.join(folder, "discriminator.safetensors")), fitting_only
            )


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce the gradients of what a process trains, as one flat buffer (DDP's job, done
    by hand: the student runs three times a step with the LoRA switched on and off, and the
    discriminator's R1 penalty differentiates twice, which DDP's wrapper does not support)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n
