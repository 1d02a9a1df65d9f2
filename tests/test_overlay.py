"""The video set's fixed overlay (`train.overlay`) and the whole-frame head judging only its box."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from mcm_demo.embedded.world.datasets import SceneStream
from mcm_demo.train.distill import DistillConfig, Distiller
from mcm_demo.train.overlay import overlay_box

# the world's stamp: its rectangle's rows and columns (`render.watermark_mask`)
STAMP = (26, 39, 14, 51)


def _world_frames(style: str, count: int = 96) -> np.ndarray:
    clips, _, _ = SceneStream(3, split="train", two_object_prob=0.3).clips(count, style=style)
    return clips[:, 2].astype(np.float32)


def _encloses(box, inner, slack: int = 4) -> bool:
    """`box` holds `inner` with at most `slack` pixels to spare on any side."""
    spare = [inner[0] - box[0], box[1] - inner[1], inner[2] - box[2], box[3] - inner[3]]
    return all(0 <= s <= slack for s in spare)


def test_overlay_box_finds_the_video_sets_stamp_and_nothing_in_clean_sets():
    assert _encloses(overlay_box(_world_frames("lq")), STAMP)
    for style in ("laion", "real", "3d-cartoon", "anime"):
        assert overlay_box(_world_frames(style)) is None, style


def test_overlay_box_on_a_users_footage_with_a_corner_logo():
    """Noise-textured scenes of every brightness with a logo blended into the top-right corner."""
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 255, (1, 1, 3)) + rng.normal(0, 25, (120, 48, 80, 3))
    frames = frames + rng.uniform(-80, 80, (120, 1, 1, 1))
    logo = np.zeros((48, 80), np.float32)
    logo[4:12, 60:76] = 1
    logo[6:10, 62:74] = 0  # a hollow frame, as stamps are
    frames = frames * (1 - 0.4 * logo[..., None]) + 255 * 0.4 * logo[..., None]
    assert _encloses(overlay_box(np.clip(frames, 0, 255)), (4, 12, 60, 76))
    assert overlay_box(np.clip(frames * 0 + rng.normal(128, 30, frames.shape), 0, 255)) is None


def test_video_set_overlay_box_through_the_shipped_vae():
    """The box is found on the frames the student's go through: the VAE's decoded latents."""
    from mcm_demo.catalog import Catalog
    from mcm_demo.train.clips import CachedBatches
    from mcm_demo.train.overlay import video_set_overlay_box
    from mcm_demo.train.teacher import encode_clips

    vae = Catalog("weights").load_pipeline("embedded", device="cpu", dtype=torch.float32).vae
    clips, scenes, _ = SceneStream(4, split="train", two_object_prob=0.3).clips(64, style="lq")
    latents = encode_clips(vae, clips[:, :2])
    batches = CachedBatches(latents, [s.caption for s in scenes], 0, 1, 0, 0, "lq")
    assert _encloses(video_set_overlay_box(batches, vae, batch=16, clips=64), STAMP)
    # a head judging frames at half the size gets the box at half the size
    vae.register_to_config(sample_size=32)
    half = tuple((v + 1) // 2 for v in STAMP)
    assert _encloses(video_set_overlay_box(batches, vae, batch=16, clips=64), half)


def _images(count, generator):
    return torch.rand(count, 3, 64, 64, generator=generator) * 2 - 1, ["a red circle"] * count


def test_whole_frame_head_on_a_box_sees_nothing_outside_it(tiny_pipeline, tmp_path):
    box = (10, 30, 4, 60)
    with pytest.raises(ValueError, match="adv-whole-frame"):
        Distiller(copy.deepcopy(tiny_pipeline), DistillConfig(rank=4, adv_whole_box=box))
    with pytest.raises(ValueError, match="training loop"):
        Distiller(
            copy.deepcopy(tiny_pipeline),
            DistillConfig(rank=4, adv_whole_frame=True, adv_whole_box="auto"),
        )
    cfg = DistillConfig(rank=4, adv_whole_frame=True, adv_whole_box=box, adv_whole_sampled_every=2)
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    head = distiller.discriminator.heads[-1]
    images, _ = _images(3, torch.Generator().manual_seed(0))
    text = torch.randn(3, distiller.pipe.text_encoder.config.hidden_size)
    images.requires_grad_(True)
    score = head(images, text)
    (grad,) = torch.autograd.grad(score.sum(), images)
    outside = torch.ones(64, 64, dtype=torch.bool)
    outside[10:30, 4:60] = False
    assert grad[..., outside].abs().max() == 0 and grad[..., ~outside].abs().max() > 0
    changed = images.detach().clone()
    changed[..., outside] = -changed[..., outside]
    with torch.no_grad():
        assert torch.allclose(head(changed, text), score)
    # a run on another crop starts from this student: the patch heads come along, the
    # whole-frame head (another shape) starts fresh
    distiller.save(str(tmp_path / "boxed"))
    other = dataclasses.replace(cfg, adv_whole_box=(0, 16, 0, 64))
    new = Distiller(copy.deepcopy(tiny_pipeline), other, image_source=_images)
    fresh = {k: v.clone() for k, v in new.discriminator.heads[-1].state_dict().items()}
    patch_out = distiller.discriminator.heads[0].out.weight
    assert not torch.equal(new.discriminator.heads[0].out.weight, patch_out)
    new.start_from(str(tmp_path / "boxed"))
    assert all(
        torch.equal(new.discriminator.heads[-1].state_dict()[k], v) for k, v in fresh.items()
    )
    assert torch.equal(new.discriminator.heads[0].out.weight, patch_out)
    # a run steps with it; without --adv-mismatch its teaching's fakes are the sampled frames
    losses = distiller.step(
        torch.randn(2, 8, 4, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(1)
    )
    assert np.isfinite(losses["adv_g"]) and np.isfinite(losses["adv_d"])


def test_auto_box_is_found_before_the_first_step_and_kept(tiny_pipeline, tmp_path, monkeypatch):
    import json

    from mcm_demo.data import DataSetError
    from mcm_demo.train import loop

    cfg = DistillConfig(
        rank=4,
        run_dir=str(tmp_path / "run"),
        latents=str(tmp_path / "latents.safetensors"),
        num_clips=4,
        batch=2,
        steps=1,
        adv_whole_frame=True,
        adv_whole_box="auto",
    )
    said = []
    distiller = loop.train_distill(cfg, pipe=copy.deepcopy(tiny_pipeline), log=said.append)
    # the tiny random VAE draws the same pattern into every frame: that is its "overlay"
    box = distiller.cfg.adv_whole_box
    assert isinstance(box, tuple) and len(box) == 4
    assert distiller.discriminator.heads[-1].box == box
    assert any(f"--adv-whole-box {','.join(map(str, box))}" in line for line in said)
    saved = json.loads((tmp_path / "run" / "adapter" / "distill_config.json").read_text())
    assert tuple(saved["adv_whole_box"]) == box

    # a set without one stops before the first step, saying what to do
    monkeypatch.setattr(loop, "video_set_overlay_box", lambda *a, **k: None)
    with pytest.raises(DataSetError, match="no fixed overlay.*TOP,BOTTOM,LEFT,RIGHT"):
        loop.train_distill(
            dataclasses.replace(cfg, run_dir=str(tmp_path / "other")),
            pipe=copy.deepcopy(tiny_pipeline),
            log=lambda *a: None,
        )
    assert not (tmp_path / "other" / "adapter").exists()


def test_the_whole_frame_head_can_be_weighed_apart_from_the_patch_heads(tiny_pipeline):
    """`--adv-whole-weight`: at `--adv-weight 0` the patch heads still learn but do not pull."""
    with pytest.raises(ValueError, match="adv-whole-frame"):
        Distiller(copy.deepcopy(tiny_pipeline), DistillConfig(rank=4, adv_whole_weight=2.0))

    def student_grad(patch_weight: float, patch_scale: float) -> torch.Tensor:
        torch.manual_seed(0)
        cfg = DistillConfig(
            rank=4,
            adv_weight=patch_weight,
            adv_whole_frame=True,
            adv_whole_box=(10, 30, 4, 60),
            adv_whole_weight=2.0,
        )
        distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
        with torch.no_grad():
            for head in distiller.discriminator.heads[:-1]:
                head.out.weight.mul_(patch_scale)
        latents = torch.randn(2, 8, 4, 8, 8, generator=torch.Generator().manual_seed(2))
        distiller.accumulate(latents, ["a red circle"] * 2, torch.Generator().manual_seed(1))
        return torch.cat(
            [p.grad.flatten() for p in distiller.generator_params if p.grad is not None]
        )

    assert torch.allclose(student_grad(0.0, 1.0), student_grad(0.0, 5.0))
    assert not torch.allclose(student_grad(1.0, 1.0), student_grad(1.0, 5.0))
