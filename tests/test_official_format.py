"""Adapters written the official way (PEFT's own `get_peft_model` + `save_pretrained`, full
module names as `target_modules`, as yhzhai/mcm's were) load through our catalogue and run as
the official demo runs them: a PEFT merge, diffusers' `LCMScheduler(timestep_scaling=4)` and a
plain loop over its timesteps. Nothing downloads: the hub cache is a folder here."""

import json

import pytest
import torch
from diffusers import LCMScheduler, UNet3DConditionModel, UNetMotionModel
from peft import LoraConfig, PeftModel, get_peft_model

from mcm_demo import catalog
from mcm_demo.adapters import PUBLISHED_TARGET_MODULES
from mcm_demo.pipeline import encode_prompts

PROMPT = "a red circle moving left on a black background"


def _full_names(unet) -> list[str]:
    """The public code's layer list spelled out in full, temporal convs left out (as the
    official adapters' adapter_config.json lists them)."""
    return [
        name
        for name, module in unet.named_modules()
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))
        and "temp_convs" not in name
        and any(name == s or name.endswith("." + s) for s in PUBLISHED_TARGET_MODULES)
    ]


def _save_official(unet, folder, seed: int, full_names: bool = True) -> None:
    """`get_peft_model` + random LoRA weights (B ≠ 0, else it is the teacher) +
    `save_pretrained`. Today's PEFT shrinks a long target list to the shortest suffixes that
    pick the same layers ("conv", "proj", "resnets.0.conv1", …) when it writes the config; the
    published files, from a 2024 PEFT, list every full name: `full_names` writes them back."""
    names = _full_names(unet)
    model = get_peft_model(unet, LoraConfig(r=4, lora_alpha=8, target_modules=names))
    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = torch.randn_like(param) * 0.1
    model.save_pretrained(str(folder))
    if full_names:
        config = json.loads((folder / "adapter_config.json").read_text())
        config["target_modules"] = names
        (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))


@pytest.fixture
def hub_cache(modelscope_folder, animatediff_folders, tmp_path, monkeypatch):
    """The catalogue's hub lookups answered from local folders; published adapters go under
    tmp_path/mcm/<prefix>-<variant> as in yhzhai/mcm."""
    base, motion = animatediff_folders
    folders = {
        "ali-vilab/text-to-video-ms-1.7b": modelscope_folder,
        catalog.TEACHERS["animatediff"].repo: base,
        catalog.TEACHERS["animatediff"].motion_adapter: motion,
        catalog.PUBLISHED_ADAPTER_REPO: tmp_path / "mcm",
    }
    monkeypatch.setattr(catalog, "_snapshot", lambda repo, *a, **k: str(folders[repo]))
    return tmp_path / "mcm"


@pytest.mark.parametrize("full_names", [True, False], ids=["published-config", "peft-today"])
def test_official_modelscope_adapter_samples_as_the_official_loop(
    modelscope_folder, hub_cache, full_names
):
    adapter = hub_cache / "modelscopet2v-webvid"
    unet = UNet3DConditionModel.from_pretrained(modelscope_folder / "unet")
    _save_official(unet, adapter, 0, full_names)
    targets = json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
    assert ("down_blocks.0.attentions.0.proj_in" in targets) == full_names

    # ours: the catalogue's pipeline and student, the page's consistency sampler
    cat = catalog.Catalog()
    pipe = cat.load_pipeline("modelscope", device="cpu")
    sampler = cat.use_student(pipe, "modelscope", "mcm-webvid")
    ours = pipe(
        PROMPT,
        num_inference_steps=4,
        sampler=sampler,
        num_frames=4,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
    )

    # the official way: PEFT merges the adapter, LCMScheduler steps a plain loop
    unet = PeftModel.from_pretrained(
        UNet3DConditionModel.from_pretrained(modelscope_folder / "unet"), str(adapter)
    ).merge_and_unload()
    scheduler = LCMScheduler.from_pretrained(modelscope_folder / "scheduler", timestep_scaling=4.0)
    scheduler.set_timesteps(4)
    assert scheduler.timesteps.tolist() == [999, 759, 499, 259]
    text = encode_prompts(pipe.tokenizer, pipe.text_encoder, [PROMPT])
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(ours.shape, generator=generator)
    with torch.no_grad():
        for t in scheduler.timesteps:
            out = unet(latents, t, encoder_hidden_states=text).sample
            latents, denoised = scheduler.step(out, t, latents, generator, return_dict=False)
    assert denoised.abs().mean() > 0.1  # a real sample, not zeros
    torch.testing.assert_close(ours, denoised, rtol=1e-4, atol=1e-4)


def test_official_animatediff_adapter_equals_peft_merge(animatediff_folders, hub_cache):
    """On the motion UNet (SD1.5 base + motion adapter) the loaded student's output equals
    `PeftModel.from_pretrained(...).merge_and_unload()`'s."""
    cat = catalog.Catalog()
    pipe = cat.load_pipeline("animatediff", device="cpu")
    adapter = hub_cache / "animatediff-laion"
    reference = UNetMotionModel.from_config(pipe.unet.config)
    reference.load_state_dict(pipe.unet.state_dict())
    _save_official(reference, adapter, 1)
    reference = UNetMotionModel.from_config(pipe.unet.config)
    reference.load_state_dict(pipe.unet.state_dict())
    reference = PeftModel.from_pretrained(reference, str(adapter)).merge_and_unload().eval()

    cat.use_student(pipe, "animatediff", "mcm-laion")
    x = torch.randn(1, 8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    text = torch.randn(3, 77, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([499])
    with torch.no_grad():
        ours = pipe.unet(x, t, encoder_hidden_states=text).sample
        theirs = reference(x, t, encoder_hidden_states=text).sample
    assert torch.equal(ours, theirs)
    cat.use_student(pipe, "animatediff", None)
    with torch.no_grad():
        assert not torch.equal(pipe.unet(x, t, encoder_hidden_states=text).sample, theirs)
