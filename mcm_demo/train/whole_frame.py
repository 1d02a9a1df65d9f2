"""The whole-frame discriminator head kept on its task during a run: it judges the student's
own few-step clips, not its one-step estimates.

Taught before a run on the student's 4-step frames against the image set's stills, some
under a wrong caption, the whole-frame head ranks outlines the right way round; trained in
the run on the one-step estimates the patch heads see, it drifts back to chance within 50
steps and the outlines stop improving (docs/cleanliness.md, "The whole-frame head in
training"). Here it goes on learning what the probe taught it, from a pool of the current
student's 4-step frames sampled every few steps, so the student is asked for the outlines
its sampled clips show.
"""

from __future__ import annotations

import torch

from .discriminator import discriminator_loss

# the probe's batch: 16 sampled frames and 16 mismatched stills against 32 stills
TEACHING_BATCH = 32
SAMPLING_STEPS = 4


class SampledFrameTeaching:
    """`teach(step, captions, frames)` adds one hinge + R1 step's gradients to the whole-frame head:
    fakes are frames of the pool (refreshed every `every` steps: the student's 4-step clips
    of the step's first `clips` captions) and stills under a wrong caption; reals are stills."""

    def __init__(self, distiller, every: int, clips: int):
        self.distiller, self.every, self.clips = distiller, every, clips
        self.pool: tuple[torch.Tensor, torch.Tensor] | None = None
        acc = distiller.accelerator
        # one seed per step, a different one per process (process 0's does not depend on the
        # number of processes)
        self.seed_offset = 7_777_777 * (acc.process_index if acc is not None else 0)

    @property
    def head(self) -> torch.nn.Module:
        return self.distiller.discriminator.heads[-1]

    @torch.no_grad()
    def refresh_pool(self, step: int, captions: list[str], frames: int) -> None:
        d = self.distiller
        captions = list(captions[: self.clips])
        latents = d.pipe(
            captions,
            num_inference_steps=SAMPLING_STEPS,
            sampler="consistency",
            num_frames=frames,
            generator=torch.Generator().manual_seed(10_000 + step + self.seed_offset),
            output_type="latent",
        )
        flat = latents.transpose(1, 2).flatten(0, 1)
        images = d.vae.decode(flat / d.vae.config.scaling_factor).sample.clamp(-1, 1)
        text = d.pipe.encode_prompt(captions, return_pooled=True)[1]
        self.pool = (images, text.repeat_interleave(frames, 0))

    def teach(self, step: int, captions: list[str], frames: int) -> float:
        """`captions` and `frames`: the step's batch. The head's gradients from step 7 (the
        one-step estimates) are dropped first."""
        for p in self.head.parameters():
            p.grad = None
        if self.pool is None or step % self.every == 0:
            self.refresh_pool(step, captions, frames)
        d, head = self.distiller, self.head
        generator = torch.Generator().manual_seed(20_000 + step + self.seed_offset)
        images, text = self.pool
        # half the fakes are stills under a wrong caption with --adv-mismatch, unless the head
        # sees only the overlay's box: a crop holds no caption's shape or colour to check
        half = TEACHING_BATCH // 2 if d.cfg.adv_mismatch and d.cfg.adv_whole_box is None else 0
        pick = torch.randperm(len(images), generator=generator)[: TEACHING_BATCH - half]
        real, real_captions = d.image_source(TEACHING_BATCH, generator)
        real = real.to(images.device, images.dtype)
        with d.autocast():
            real_text = d.still_text(real_captions)
            fake_scores = head(images[pick], text[pick])
            if half:
                wrong_text = d.wrong_still_text(real_captions[:half])
                fake_scores = torch.cat([fake_scores, head(real[:half], wrong_text)])
            real_in = real.detach().requires_grad_(True)
            real_scores = head(real_in, real_text)
            loss = discriminator_loss(real_scores, fake_scores, "hinge")
            # R1 on the stills, as the other heads have it (`gradient_penalty` would run the
            # head on them a second time)
            if d.cfg.gp_weight:
                (grad,) = torch.autograd.grad(real_scores.sum(), real_in, create_graph=True)
                loss = loss + d.cfg.gp_weight * grad.pow(2).flatten(1).sum(1).mean()
        d._backward(loss)
        return loss.item()
