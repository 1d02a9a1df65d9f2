"""The whole-frame discriminator head on tiny random models: its place beside the patch heads,
the mismatched captions and the teaching on the student's own clips."""

import copy

import numpy as np
import pytest
import torch

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
    # the colour word instead (`--adv-mismatch-word colour`)
    assert mismatched_captions(
        ["a green triangle moving right on a black background", "a cyan star", "a cat"], "colour"
    ) == [
        "a blue triangle moving right on a black background",
        "a red star",
        "a green triangle moving right on a black background",
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


def test_mismatch_word_and_the_boxed_head(tiny_pipeline, monkeypatch):
    """`adv_mismatch_word="colour"` changes the colour word; a head that sees only the
    overlay's box is taught without wrong captions (a crop holds no shape or colour to check),
    while the patch heads still meet them."""
    cfg = DistillConfig(
        rank=4,
        adv_whole_frame=True,
        adv_mismatch=True,
        adv_mismatch_word="colour",
        adv_whole_sampled_every=2,
        adv_whole_box=(8, 24, 4, 60),
    )
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    with torch.no_grad():
        wrong = distiller.wrong_still_text(["a red circle moving left"])
        assert torch.equal(wrong, distiller.still_text(["a green circle moving left"]))
    asked = []
    wrong_still_text = distiller.wrong_still_text
    monkeypatch.setattr(
        distiller, "wrong_still_text", lambda c: asked.append(len(c)) or wrong_still_text(c)
    )
    distiller.whole_teaching.teach(0, ["a red circle", "a blue star"], 4)
    assert asked == []
    distiller.step(
        torch.randn(2, 8, 4, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(0)
    )
    assert asked  # step 7: the patch heads' half of mismatched stills
