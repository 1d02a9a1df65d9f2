"""The paper's competitors on the AnimateDiff teacher (competitors.py), from tiny files in the
published formats: AnimateLCM's diffusers MotionAdapter folder and kohya-format spatial LoRA
(`lora_unet_<module path>.lora_down.weight` / `.lora_up.weight` / `.alpha`), Lightning's bare
MotionAdapter state dicts, one per step count. Loaded through the catalogue (hub cache faked by
local folders), they sample as diffusers' own `AnimateDiffPipeline` does when set up as their
model cards say, and run through the page's columns beside an MCM student."""

import numpy as np
import pytest
import torch
from diffusers import (
    AnimateDiffPipeline,
    AutoencoderKL,
    EulerDiscreteScheduler,
    LCMScheduler,
    MotionAdapter,
    UNet2DConditionModel,
)
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer

from mcm_demo import catalog, competitors
from mcm_demo.adapters import attach_lora, resolve_target_modules, save_adapter
from mcm_demo.app import handlers, service

PROMPT = "a red circle moving left on a black background"
LCM = competitors.COMPETITORS["animatelcm"]
LIGHTNING = competitors.COMPETITORS["animatediff-lightning"]


def _motion_adapter(motion_folder, seed: int) -> MotionAdapter:
    """The teacher's motion adapter layout with other weights (a competitor's own module)."""
    adapter = MotionAdapter.from_pretrained(motion_folder)
    torch.manual_seed(seed)
    for p in adapter.parameters():
        p.data += 0.05 * torch.randn_like(p)
    return adapter


def _kohya_lora(unet, rank: int = 4, alpha: float = 2.0, seed: int = 0) -> dict:
    """A LoRA on the SD1.5 UNet's spatial layers as AnimateLCM's file stores it: kohya's key
    names over the diffusers module path, conv LoRAs with the layer's kernel in `lora_down`."""
    torch.manual_seed(seed)
    state = {}
    for name in resolve_target_modules(unet):
        layer = unet.get_submodule(name)
        key = "lora_unet_" + name.replace(".", "_")
        if isinstance(layer, torch.nn.Conv2d):
            down = torch.randn(rank, layer.in_channels, *layer.kernel_size)
            up = torch.randn(layer.out_channels, rank, 1, 1)
        else:
            down = torch.randn(rank, layer.in_features)
            up = torch.randn(layer.out_features, rank)
        state[f"{key}.lora_down.weight"] = 0.1 * down
        state[f"{key}.lora_up.weight"] = 0.1 * up
        state[f"{key}.alpha"] = torch.tensor(alpha)
    return state


@pytest.fixture(scope="module")
def competitor_folders(animatediff_folders, tmp_path_factory):
    """wangfuyun/AnimateLCM and ByteDance/AnimateDiff-Lightning as snapshots hold them."""
    base, motion = animatediff_folders
    lcm = tmp_path_factory.mktemp("animatelcm")
    _motion_adapter(motion, 1).save_pretrained(lcm)
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    save_file(_kohya_lora(unet), str(lcm / LCM.lora))
    lightning, file = tmp_path_factory.mktemp("lightning"), LIGHTNING.step_file
    for n in LIGHTNING.published_steps:
        state = _motion_adapter(motion, 10 + n).state_dict()  # stored in fp16, as published
        save_file({k: v.half() for k, v in state.items()}, str(lightning / file.format(steps=n)))
    return {LCM.repo: lcm, LIGHTNING.repo: lightning}


@pytest.fixture
def hub_cache(animatediff_folders, competitor_folders, tmp_path, monkeypatch):
    """The catalogue's hub lookups answered from local folders, an MCM adapter among them."""
    base, motion = animatediff_folders
    teacher = catalog.TEACHERS["animatediff"]
    folders = {
        teacher.repo: base,
        teacher.motion_adapter: motion,
        catalog.PUBLISHED_ADAPTER_REPO: tmp_path / "mcm",
        **competitor_folders,
    }
    pipe = catalog.assemble_animatediff(str(base), str(motion))
    attach_lora(pipe.unet, "webvid", rank=4, init="gaussian")
    save_adapter(pipe.unet, "webvid", str(tmp_path / "mcm" / "animatediff-webvid"))
    monkeypatch.setattr(catalog, "_snapshot", lambda repo, *a, **k: str(folders[repo]))
    return folders


def _as_their_card(model: str, base, motion, folder, steps: int) -> torch.Tensor:
    """diffusers' AnimateDiffPipeline set up as the model card does it; its final latents."""
    if model == "animatelcm":
        adapter = MotionAdapter.from_pretrained(folder)
    else:
        # the card builds the default MotionAdapter(): the teacher's layout, here a tiny one
        adapter = MotionAdapter.from_config(MotionAdapter.load_config(motion))
        adapter.load_state_dict(load_file(folder / LIGHTNING.step_file.format(steps=steps)))
    pipe = AnimateDiffPipeline(
        vae=AutoencoderKL.from_pretrained(base / "vae"),
        text_encoder=CLIPTextModel.from_pretrained(base / "text_encoder"),
        tokenizer=CLIPTokenizer.from_pretrained(base / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(base / "unet"),
        motion_adapter=adapter,
        scheduler=LCMScheduler.from_pretrained(base / "scheduler"),
    )
    if model == "animatelcm":
        pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config, beta_schedule="linear")
        pipe.load_lora_weights(str(folder), weight_name=LCM.lora, adapter_name="lcm-lora")
        pipe.set_adapters(["lcm-lora"], [0.8])
        guidance = 2.0
    else:
        pipe.scheduler = EulerDiscreteScheduler.from_config(
            pipe.scheduler.config, timestep_spacing="trailing", beta_schedule="linear"
        )
        guidance = 1.0
    return pipe(
        prompt=PROMPT,
        num_frames=4,
        guidance_scale=guidance,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
    ).frames


@pytest.mark.parametrize(
    "model, steps", [("animatelcm", 4), ("animatediff-lightning", 1), ("animatediff-lightning", 4)]
)
def test_competitor_samples_as_its_model_card(hub_cache, animatediff_folders, model, steps):
    base, motion = animatediff_folders
    c = competitors.COMPETITORS[model]
    pipe = catalog.Catalog().load_pipeline(
        "animatediff", "cpu", torch.float32, competitors.checkpoint(model, steps)
    )
    ours = pipe(
        PROMPT,
        num_inference_steps=steps,
        num_frames=4,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
        **c.run(),
    )
    theirs = _as_their_card(model, base, motion, hub_cache[c.repo], steps)
    assert theirs.abs().mean() > 0.1  # a real sample
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_lightning_runs_the_nearest_published_checkpoint(hub_cache):
    """3 steps run the 4-step checkpoint (ties go to the larger; 5 → 4, 6 → 8), and the
    column's label says so; a published count runs its own."""
    assert [LIGHTNING.checkpoint_steps(n) for n in range(1, 9)] == [1, 2, 4, 4, 4, 8, 8, 8]
    assert competitors.label("animatediff-lightning", 3) == (
        "AnimateDiff-Lightning (4-step checkpoint)"
    )
    assert competitors.label("animatediff-lightning", 4) == "AnimateDiff-Lightning"
    cat = catalog.Catalog(max_pipelines=4)

    def load(steps):
        rival = competitors.checkpoint("animatediff-lightning", steps)
        return cat.load_pipeline("animatediff", "cpu", None, rival)

    assert load(3) is load(4) and load(4) is not load(8)
    four = load(4)
    assert isinstance(four.scheduler, EulerDiscreteScheduler)
    assert (four.scheduler.config.timestep_spacing, four.scheduler.config.beta_schedule) == (
        "trailing",
        "linear",
    )


def test_mcm_animatelcm_and_lightning_through_the_page_columns(hub_cache):
    """The three AnimateDiff students side by side as the page runs them: same steps and seed,
    each its own clip, each column named; the teacher's pipeline is not touched by the
    competitors (an MCM column after them gives the same clip)."""
    svc = service.Service(catalog.Catalog(max_pipelines=3))
    page = handlers.teacher_switch(svc, "animatediff", "webvid")
    listed = [value for _, value in page.choices]
    assert {"mcm-webvid", "mcm-laion", "animatelcm", "animatediff-lightning"} <= set(listed)
    assert (page.left, page.right) == ("animatelcm", "mcm-webvid")

    def column(model):
        req = handlers._column_request(PROMPT, model, 3, 25, 7, 4, 5.0, "animatediff", 8.0)
        *_, (preview, video, status, result) = handlers.run_column(svc, req)
        assert result is not None, status
        return status, result.frames

    runs = {m: column(m) for m in ("mcm-webvid", "animatelcm", "animatediff-lightning")}
    assert "**AnimateLCM** · 3 steps" in runs["animatelcm"][0]
    assert (
        "**AnimateDiff-Lightning (4-step checkpoint)** · 3 steps"
        in runs["animatediff-lightning"][0]
    )
    clips = [frames for _, frames in runs.values()]
    assert all(c.shape == (4, 64, 64, 3) for c in clips)
    assert not np.array_equal(clips[0], clips[1]) and not np.array_equal(clips[1], clips[2])
    assert np.array_equal(column("mcm-webvid")[1], clips[0])


def test_modelscope_has_no_competitors_and_says_its_left_column(modelscope_folder, monkeypatch):
    monkeypatch.setattr(catalog, "_snapshot", lambda repo, *a, **k: str(modelscope_folder))
    svc = service.Service(catalog.Catalog())
    page = handlers.teacher_switch(svc, "modelscope", "anime")
    assert page.left == service.TEACHER_AT_STEPS and page.right == "mcm-anime"
    assert "No public LCM exists for ModelScopeT2V" in page.status
    assert not any(c in competitors.COMPETITORS for _, c in page.choices)
    with pytest.raises(service.PipelineInputError, match="offers"):
        service.check_request(
            service.Request(PROMPT, "animatelcm", teacher="modelscope"), svc.catalog
        )
