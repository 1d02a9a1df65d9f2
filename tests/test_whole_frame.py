"""The whole-frame discriminator head on tiny random models: its place beside the patch heads,
the mismatched captions, the teaching on the student's own clips, and the detail frames."""

import copy

import numpy as np
import pytest
import torch

from mcm_demo.embedded.world.render import watermark_mask
from mcm_demo.train.discriminator import WholeFrameHead, frame_detail
from mcm_demo.train.distill import DistillConfig, Distiller


def _images(count, generator):
    return torch.rand(count, 3, 64, 64, generator=generator) * 2 - 1, [
        "a red circle moving left"
    ] * count


def test_whole_frame_head_and_mismatched_captions(tiny_pipeline, tmp_path):
    cfg = DistillConfig(rank=4, adv_whole_frame=True, adv_mismatch=True)
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    disc = distiller.discriminator
    assert len(disc.heads) == len(disc.backbone.channels) + 1
    images, _ = _images(3, torch.Generator().manual_seed(0))
    text = torch.randn(3, distiller.pipe.text_encoder.config.hidden_size)
    with torch.no_grad():
        # the patches' mean and the whole frame's judgement, side by side
        scores = disc(images, text)
        assert scores.shape == (3, 2)
        assert torch.equal(scores[:, 1], disc.heads[-1](images, text)[:, 0])
        # a frame of another size is judged at the head's own size
        assert disc(images[:, :, ::2, ::2], text).shape == (3, 2)
        with pytest.raises(ValueError, match="per_patch"):
            disc(images, text, per_patch=True)
    whole = {k: v.clone() for k, v in disc.heads[-1].state_dict().items()}
    losses = distiller.step(
        torch.randn(2, 8, 8, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(1)
    )
    assert np.isfinite(losses["adv_g"]) and np.isfinite(losses["adv_d"])
    assert any(not torch.equal(disc.heads[-1].state_dict()[k], v) for k, v in whole.items())

    # a student trained without the head starts a run with it: the head starts fresh
    plain = Distiller(copy.deepcopy(tiny_pipeline), DistillConfig(rank=4), image_source=_images)
    plain.save(str(tmp_path / "plain"))
    new = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    fresh = {k: v.clone() for k, v in new.discriminator.heads[-1].state_dict().items()}
    new.start_from(str(tmp_path / "plain"))
    kept = new.discriminator.heads[-1].state_dict()
    assert all(torch.equal(kept[k], v) for k, v in fresh.items())


def test_mismatched_captions_change_the_shape_word_or_borrow_a_caption():
    from mcm_demo.data.world import mismatched_captions

    assert mismatched_captions(
        ["a red star moving right on a black background", "a blue cross and a red star"]
    ) == ["a red cross moving right on a black background", "a blue cross and a red cross"]
    assert mismatched_captions(["a cat on a mat", "starry night", "a red square"]) == [
        "starry night",
        "a red square",
        "a red triangle",
    ]


def test_whole_frame_head_taught_on_the_students_sampled_clips(tiny_pipeline):
    with pytest.raises(ValueError, match="adv-whole-frame"):
        Distiller(copy.deepcopy(tiny_pipeline), DistillConfig(rank=4, adv_whole_sampled_every=2))
    cfg = DistillConfig(rank=4, adv_whole_frame=True, adv_mismatch=True, adv_whole_sampled_every=2)
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    teaching, captions = distiller.whole_teaching, ["a red circle", "a blue star"]
    # the pool: the student's own 4-step clips of the batch's captions, every frame decoded
    teaching.refresh_pool(0, captions, 4)
    latents = distiller.pipe(
        captions,
        num_inference_steps=4,
        sampler="consistency",
        num_frames=4,
        generator=torch.Generator().manual_seed(10_000),
        output_type="latent",
    )
    with torch.no_grad():
        first = distiller.vae.decode(latents[:, :, 0] / distiller.vae.config.scaling_factor)
    images, text = teaching.pool
    assert images.shape[0] == 2 * 4 and text.shape[0] == 2 * 4
    assert torch.allclose(images[0], first.sample[0].clamp(-1, 1), atol=1e-5)

    whole = distiller.discriminator.heads[-1]
    before = {k: v.clone() for k, v in whole.state_dict().items()}
    pools = []
    for step in range(3):
        distiller.step(torch.randn(2, 8, 4, 8, 8), captions, torch.Generator().manual_seed(step))
        pools.append(teaching.pool[0])
    assert distiller.step_count == 3
    # refreshed every 2 steps: at steps 0 and 2, kept at step 1
    assert pools[1] is pools[0] and pools[2] is not pools[1]
    assert any(not torch.equal(whole.state_dict()[k], v) for k, v in before.items())

    # its gradients are the teaching's alone: step 7's, from the one-step estimates, are dropped
    for p in whole.parameters():
        p.grad = None
    teaching.teach(3, captions, 4)
    taught = [p.grad.clone() for p in whole.parameters()]
    distiller.accumulate(torch.randn(2, 8, 4, 8, 8), captions, torch.Generator().manual_seed(5))
    assert any(not torch.allclose(a, p.grad) for a, p in zip(taught, whole.parameters()))
    teaching.teach(3, captions, 4)  # step 3: no new pool, the same stills
    assert all(torch.allclose(a, p.grad) for a, p in zip(taught, whole.parameters()))


def test_stills_without_captions_meet_mismatches_and_the_teaching(tiny_pipeline):
    """An own image set may have stills without a caption: their wrong caption is another
    still's or none (a zero text row), never a crash."""

    def uncaptioned(count, generator):
        images, captions = _images(count, generator)
        return images, [None if i % 2 else c for i, c in enumerate(captions)]

    cfg = DistillConfig(rank=4, adv_whole_frame=True, adv_mismatch=True, adv_whole_sampled_every=2)
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=uncaptioned)
    text = distiller.still_text(["a red circle", None, ""])
    assert text[0].abs().sum() > 0 and not text[1:].any()
    losses = distiller.step(
        torch.randn(2, 8, 4, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(0)
    )
    assert np.isfinite(losses["adv_d"])


def test_frame_detail_keeps_strokes_and_drops_colour():
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    detail = frame_detail(frames)
    # a colour added to the whole frame changes nothing; a flat frame has no detail
    assert torch.allclose(frame_detail(frames + 0.3), detail, atol=1e-5)
    assert frame_detail(torch.full((1, 3, 64, 64), 0.4)).abs().max() < 1e-5
    # the low-quality set's stamp (1-px strokes at half strength) passes on a flat background
    stamp = torch.from_numpy(watermark_mask())
    stamped = torch.full((1, 3, 64, 64), -0.6) + 0.8 * stamp
    strokes = frame_detail(stamped)[0, 0][stamp > 0.5]
    assert strokes.mean() > 0.5 * 0.8


def test_a_detail_head_cannot_push_a_background_colour():
    text = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    for detail in (False, True):
        torch.manual_seed(0)
        head = WholeFrameHead(16, 64, detail=detail)
        x = frames.clone().requires_grad_(True)
        head(x, text).sum().backward()
        # the colour part of the gradient: what a constant added to each channel would do
        colour_push = x.grad.sum((2, 3)).abs().max()
        if detail:
            assert colour_push < 1e-4
            with torch.no_grad():
                assert torch.allclose(head(frames - 0.5, text), head(frames, text), atol=1e-5)
        else:
            assert colour_push > 1e-3


def test_distill_with_the_detail_head(tiny_pipeline, tmp_path):
    with pytest.raises(ValueError, match="adv-whole-frame"):
        Distiller(copy.deepcopy(tiny_pipeline), DistillConfig(rank=4, adv_whole_detail=True))
    cfg = DistillConfig(
        rank=4,
        adv_whole_frame=True,
        adv_mismatch=True,
        adv_whole_sampled_every=2,
        adv_whole_detail=True,
    )
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    assert distiller.discriminator.heads[-1].detail
    losses = distiller.step(
        torch.randn(2, 8, 4, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(0)
    )
    assert np.isfinite(losses["adv_g"]) and np.isfinite(losses["adv_d"])
    distiller.save(str(tmp_path / "run"))
    again = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    again.load(str(tmp_path / "run"))
    with torch.no_grad():
        images, _ = _images(2, torch.Generator().manual_seed(3))
        text = torch.randn(2, 16)
        assert torch.equal(again.discriminator(images, text), distiller.discriminator(images, text))
