"""Distillation on tiny random models: what changes, what reloads, what switches."""

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mcm_demo.adapters import (
    PUBLISHED_TARGET_MODULES,
    adapter_names,
    attach_lora,
    load_adapter,
    resolve_target_modules,
    save_adapter,
    use_adapter,
)
from mcm_demo.pipeline import PipelineInputError
from mcm_demo.schedule import boundary_scalings, consistency_output
from mcm_demo.train.consistency import DDIMSolver
from mcm_demo.train.distill import DistillConfig, Distiller
from mcm_demo.train.motion import MOTION_REPRESENTATIONS, MotionRepresentation


@pytest.fixture()
def pipe(tiny_pipeline):
    return copy.deepcopy(tiny_pipeline)


def _images(count, generator):
    return torch.rand(count, 3, 64, 64, generator=generator) * 2 - 1, [
        "a red circle moving left"
    ] * count


def _unet_out(unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    dtype = next(unet.parameters()).dtype
    x = torch.randn(2, unet.config.in_channels, 4, 8, 8, generator=g).to(dtype)
    text = torch.randn(2, 24, unet.config.cross_attention_dim, generator=g).to(dtype)
    with torch.no_grad():
        return unet(x, torch.tensor([999, 400]), encoder_hidden_states=text).sample


def test_boundary_condition_and_solver_grid(pipe):
    c_skip, c_out = boundary_scalings(torch.tensor([0, 999]))
    assert c_skip[0] == 1 and c_out[0] == 0 and c_skip[1] < 1e-6
    x = torch.randn(2, 8, 4, 8, 8)
    assert torch.equal(
        consistency_output(
            torch.randn_like(x),
            x,
            torch.tensor([0, 0]),
            pipe.scheduler.alphas_cumprod,
            "v_prediction",
        ).float(),
        x,
    )
    solver = DDIMSolver(pipe.scheduler.alphas_cumprod)
    assert solver.timesteps[0] == 19 and solver.timesteps[-1] == 999 and len(solver.timesteps) == 50


@pytest.mark.parametrize("kind", MOTION_REPRESENTATIONS)
def test_motion_representations_shapes(kind):
    z = torch.randn(2, 8, 4, 8, 8)
    m = MotionRepresentation(kind, 8)
    assert torch.isfinite(m(z)).all() and m(z).shape == m.target(z).shape
    if kind == "learnable":  # zero-initialised last layer: starts as the identity
        assert torch.equal(m(z), z)


@pytest.mark.parametrize(
    "motion,adversarial,lambda_real", [("learnable", True, 0.5), ("raw", False, 1.0)]
)
def test_one_step_changes_only_trainable_parts(pipe, motion, adversarial, lambda_real, tmp_path):
    cfg = DistillConfig(
        motion=motion,
        adversarial=adversarial,
        lambda_real=lambda_real,
        rank=4,
        lr=1e-2,
        run_dir=str(tmp_path),
    )
    base = {
        k: v.clone()
        for m in (pipe.unet, pipe.vae, pipe.text_encoder)
        for k, v in m.state_dict().items()
    }
    distiller = Distiller(pipe, cfg, image_source=_images)
    frozen_before = (
        {k: v.clone() for k, v in distiller.discriminator.backbone.state_dict().items()}
        if adversarial
        else {}
    )
    trainable_before = {
        n: p.detach().clone() for n, p in pipe.unet.named_parameters() if "lora_" in n
    }
    losses = distiller.step(
        torch.randn(2, 8, 8, 8, 8),
        ["a red circle moving left", "a blue star spinning"],
        torch.Generator().manual_seed(0),
    )
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    assert ("adv_g" in losses) == adversarial
    after = {
        k: v for m in (pipe.unet, pipe.vae, pipe.text_encoder) for k, v in m.state_dict().items()
    }
    for key, value in after.items():
        if "lora_" not in key:  # the teacher's own weights never move
            assert torch.equal(
                value, base[key.replace(".base_layer", "")] if key not in base else base[key]
            ), key
    changed = [
        n
        for n, p in pipe.unet.named_parameters()
        if "lora_B" in n and not torch.equal(p, trainable_before[n])
    ]
    assert changed, "the LoRA did not learn"
    for k, v in frozen_before.items():
        assert torch.equal(v, distiller.discriminator.backbone.state_dict()[k])


def test_saved_adapter_reloads_to_identical_outputs(pipe, tmp_path):
    cfg = DistillConfig(rank=4, run_dir=str(tmp_path))
    distiller = Distiller(pipe, cfg, image_source=_images)
    distiller.step(
        torch.randn(2, 8, 8, 8, 8),
        ["a red circle moving left"] * 2,
        torch.Generator().manual_seed(1),
    )
    distiller.save(str(tmp_path / "adapter"))
    expected = _unet_out(pipe.unet)
    files = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "motion_head.safetensors",
        "motion_head_target.safetensors",
        "discriminator.safetensors",
    } <= set(files)
    from mcm_demo.embedded.config import TeacherConfig, build_unet

    clean = build_unet(
        TeacherConfig(
            unet_channels=(8, 8, 8),
            unet_heads=2,
            text_hidden=16,
            vae_channels=(8, 8, 8, 8),
            latent_channels=8,
            unet_plain_levels=0,
            unet_spatial_positions=False,
            text_embedding_std=None,
        )
    )
    clean.load_state_dict(
        {
            k.replace(".base_layer", ""): v
            for k, v in pipe.unet.state_dict().items()
            if "lora_" not in k
        }
    )
    load_adapter(clean, str(tmp_path / "adapter"), "mcm")
    assert torch.equal(_unet_out(clean.eval()), expected)


def test_training_loop_resumes_and_keeps_snapshots(tiny_pipeline, tmp_path):
    from mcm_demo.train.checkpoint import snapshot_folder
    from mcm_demo.train.loop import checkpoint_folders, train_distill

    cfg = DistillConfig(
        rank=4,
        run_dir=str(tmp_path / "run"),
        latents=str(tmp_path / "latents.safetensors"),
        num_clips=2,
        batch=1,
        steps=2,
        save_every=2,
        snapshot_every=1,
        adversarial=False,
        motion="raw",
        lambda_real=1.0,
    )
    train_distill(cfg, pipe=copy.deepcopy(tiny_pipeline), log=lambda *a: None)
    run, snapshot = Path(cfg.run_dir), lambda step: Path(snapshot_folder(cfg.run_dir, step))
    for step in (1, 2):
        assert json.loads((snapshot(step) / "distill_config.json").read_text())["step"] == step
    last = (run / "adapter" / "adapter_model.safetensors").read_bytes()
    assert (snapshot(2) / "adapter_model.safetensors").read_bytes() == last
    assert (snapshot(1) / "adapter_model.safetensors").read_bytes() != last
    # asking for more steps resumes from the saved state instead of starting over
    train_distill(
        dataclasses.replace(cfg, steps=3), pipe=copy.deepcopy(tiny_pipeline), log=lambda *a: None
    )
    latest = Path(checkpoint_folders(cfg.run_dir)[-1])
    assert json.loads((latest / "state.json").read_text())["step"] == 3
    assert snapshot(3).exists()


def test_switching_adapters_back_and_forth_is_exact(pipe):
    unet = pipe.unet.eval()
    teacher = _unet_out(unet)
    torch.manual_seed(1)
    attach_lora(unet, "lcm", rank=4, init=False)
    attach_lora(unet, "mcm", rank=4, init=False)
    outs = {}
    for name in ["lcm", "mcm", None, "lcm", "mcm", None]:
        use_adapter(unet, name)
        out = _unet_out(unet)
        if name in outs:
            assert torch.equal(out, outs[name]), name
        outs[name] = out
    # LoRA off is the teacher (peft's wrapped layers may reorder float ops: not bit-exact)
    assert torch.allclose(outs[None], teacher, atol=1e-5)
    assert not torch.equal(outs["lcm"], outs["mcm"])
    with pytest.raises(KeyError):
        use_adapter(unet, "anime")


def test_merged_switching_keeps_the_clean_weights_and_follows_a_dtype_change(pipe):
    """Serving points each layer at kept weights instead of copying them: the clean tensors
    must never be merged into, and a model moved to another dtype must still get its values."""
    unet = pipe.unet.eval()
    torch.manual_seed(3)
    attach_lora(unet, "lcm", rank=4, init=False)
    attach_lora(unet, "mcm", rank=4, init=False)
    clean = {k: v.clone() for k, v in unet.state_dict().items() if "lora_" not in k}
    unmerged = {}
    for name in ["lcm", "mcm"]:
        use_adapter(unet, name)
        unmerged[name] = _unet_out(unet)
    for name in ["lcm", "mcm", None, "lcm", "mcm"]:
        use_adapter(unet, name, merge=True)
        if name is not None:
            assert (_unet_out(unet) - unmerged[name]).abs().max() <= 1e-5, name
    use_adapter(unet, None, merge=True)
    after = {k: v for k, v in unet.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(after[k], v) for k, v in clean.items())
    unet.to(torch.float64)
    use_adapter(unet, "mcm", merge=True)
    assert all(p.dtype == torch.float64 for p in unet.parameters())
    use_adapter(unet, "mcm")
    reference = _unet_out(unet)
    use_adapter(unet, "mcm", merge=True)
    assert (_unet_out(unet) - reference).abs().max() <= 1e-9


def test_published_peft_layout_loads(pipe, tmp_path):
    """A folder in `PeftModel.save_pretrained`'s layout (prefixed keys) whose config lists the
    public code's short target names; the published files list full names, and folders that
    PEFT itself wrote load in test_official_format.py."""
    unet = pipe.unet.eval()
    torch.manual_seed(2)
    reference = copy.deepcopy(unet)
    attach_lora(reference, "x", rank=4, init=False)
    save_adapter(reference, "x", str(tmp_path / "w"))
    cfg = json.loads((tmp_path / "w" / "adapter_config.json").read_text())
    cfg["target_modules"] = list(PUBLISHED_TARGET_MODULES)  # as in yhzhai/mcm's adapter_config.json
    cfg.update(
        task_type=None, base_model_name_or_path="ali-vilab/text-to-video-ms-1.7b", revision=None
    )
    (tmp_path / "w" / "adapter_config.json").write_text(json.dumps(cfg))
    load_adapter(unet, str(tmp_path / "w"), "modelscopet2v-webvid")
    assert adapter_names(unet) == ["modelscopet2v-webvid"]
    assert torch.equal(_unet_out(unet), _unet_out(reference))
    assert not any("temp_convs" in n for n in resolve_target_modules(unet))


def test_adapter_that_does_not_fit_is_refused(pipe, tmp_path):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"r": 4, "lora_alpha": 4, "target_modules": ["to_q"]})
    )
    save_file(
        {"base_model.model.nowhere.lora_A.weight": torch.zeros(4, 4)},
        str(tmp_path / "adapter_model.safetensors"),
    )
    with pytest.raises(ValueError, match="does not fit"):
        load_adapter(pipe.unet, str(tmp_path), "bad")
    with pytest.raises(FileNotFoundError):
        load_adapter(pipe.unet, str(tmp_path / "missing"), "bad2")


def test_pipeline_runs_named_students_with_the_consistency_sampler(pipe, tmp_path):
    attach_lora(pipe.unet, "lcm", rank=4, init=False)
    save_adapter(pipe.unet, "lcm", str(tmp_path / "lcm"))
    pipe.load_adapter(str(tmp_path / "lcm"), "again")
    assert pipe.adapters == ["again", "lcm"]
    seen = []
    for name in ["lcm", "again"]:
        pipe.set_adapter(name)
        seen.append(
            pipe(
                "a red circle moving left",
                num_inference_steps=4,
                sampler="consistency",
                generator=torch.Generator().manual_seed(0),
                callback=lambda d: None,
            )
        )
    assert np.array_equal(seen[0], seen[1]) and seen[0].shape == (1, 8, 64, 64, 3)
    steps = []
    pipe(
        "a red circle",
        num_inference_steps=2,
        sampler="consistency",
        callback=lambda d: steps.append(d["t"]),
    )
    assert steps == [999, 499]
    with pytest.raises(PipelineInputError):
        pipe("a red circle", num_inference_steps=51, sampler="consistency")


def test_signal_weighting_pulls_hardest_at_low_noise(tiny_pipeline):
    def distiller(weighting):
        cfg = DistillConfig(rank=4, adv_timestep_weighting=weighting)
        return Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)

    uniform = distiller("uniform")
    grid = uniform.solver.timesteps
    assert torch.equal(uniform.adv_clip_weights(grid), torch.ones(len(grid)))
    weights = distiller("signal").adv_clip_weights(grid)
    assert weights.mean().item() == pytest.approx(1.0, abs=1e-5)  # the same total pull
    order = torch.argsort(grid)  # low noise first
    assert torch.all(weights[order][:-1] >= weights[order][1:])
    with pytest.raises(ValueError, match="uniform or signal"):
        distiller("late").adv_clip_weights(grid)


def test_a_run_starts_from_another_students_folder(tiny_pipeline, tmp_path):
    def distiller(variant):
        cfg = DistillConfig(rank=4, variant=variant)
        return Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)

    source = distiller("webvid")
    source.step(torch.randn(2, 8, 8, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(1))
    source.save(str(tmp_path / "webvid"))
    lora = {k: v for k, v in source.unet.state_dict().items() if "lora_" in k}
    trained_heads = source.discriminator.trainable_state_dict()

    def started(variant):
        new = distiller(variant)
        before = {k: v.clone() for k, v in new.discriminator.trainable_state_dict().items()}
        new.start_from(str(tmp_path / "webvid"))
        state = new.unet.state_dict()
        assert all(torch.equal(state[k], v) for k, v in lora.items())
        for k, v in source.motion.head.state_dict().items():
            assert torch.equal(new.motion.head.state_dict()[k], v)
        return before, new.discriminator.trainable_state_dict()

    # heads that judged another image set start fresh; the same set's are kept
    before, after = started("laion")
    assert all(torch.equal(after[k], v) for k, v in before.items())
    before, after = started("webvid")
    assert all(torch.equal(after[k], v) for k, v in trained_heads.items())


def test_per_patch_judging_is_the_mean_form_patch_by_patch(tiny_pipeline):
    cfg = DistillConfig(rank=4, adv_per_patch=True, adv_timestep_weighting="signal")
    distiller = Distiller(copy.deepcopy(tiny_pipeline), cfg, image_source=_images)
    images, captions = _images(3, torch.Generator().manual_seed(0))
    text = torch.randn(3, distiller.pipe.text_encoder.config.hidden_size)
    with torch.no_grad():
        patches = distiller.discriminator(images, text, per_patch=True)
        assert patches.shape[0] == 3 and patches.shape[1] > 1
        assert torch.allclose(patches.mean(1), distiller.discriminator(images, text), atol=1e-6)
    heads = {k: v.clone() for k, v in distiller.discriminator.trainable_state_dict().items()}
    losses = distiller.step(
        torch.randn(2, 8, 8, 8, 8), ["a red circle"] * 2, torch.Generator().manual_seed(1)
    )
    assert np.isfinite(losses["adv_g"]) and np.isfinite(losses["adv_d"])
    after = distiller.discriminator.trainable_state_dict()
    assert any(not torch.equal(after[k], v) for k, v in heads.items())
