"""The real-checkpoint path on tiny random models saved in the hub layouts (nothing downloads):
a ModelScope-style pipeline folder, an SD1.5 base + AnimateDiff motion adapter, and the
published MCM adapters' folder layout found through the catalogue."""

import json

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, MotionAdapter, UNet2DConditionModel, UNet3DConditionModel

from mcm_demo import catalog
from mcm_demo.adapters import PUBLISHED_TARGET_MODULES, attach_lora, save_adapter
from mcm_demo.embedded.config import TeacherConfig, build_vae
from mcm_demo.embedded.text import build_text_encoder, build_tokenizer
from mcm_demo.pipeline import TextToVideoPipeline

TINY = TeacherConfig(
    vae_channels=(8, 8, 8, 8),
    text_hidden=16,
    text_layers=1,
    unet_channels=(32, 64, 64),
    latent_channels=8,
    unet_plain_levels=0,
    unet_spatial_positions=False,
    text_embedding_std=None,
)


def _text_parts():
    tokenizer = build_tokenizer()
    return tokenizer, build_text_encoder(TINY, tokenizer)


@pytest.fixture(scope="module")
def modelscope_folder(tmp_path_factory):
    """A diffusers TextToVideoSDPipeline folder, as ali-vilab/text-to-video-ms-1.7b is laid out."""
    torch.manual_seed(0)
    tokenizer, text_encoder = _text_parts()
    unet = UNet3DConditionModel(
        sample_size=8,
        in_channels=8,
        out_channels=8,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=16,
        attention_head_dim=2,
    )
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False
    )
    folder = tmp_path_factory.mktemp("modelscope")
    TextToVideoPipeline(build_vae(TINY), text_encoder, tokenizer, unet, scheduler).save_pretrained(
        folder
    )
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "TextToVideoSDPipeline"  # what the hub repo says
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


@pytest.fixture(scope="module")
def animatediff_folders(tmp_path_factory):
    torch.manual_seed(0)
    tokenizer, text_encoder = _text_parts()
    channels = (8, 16)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=8,
        out_channels=8,
        block_out_channels=channels,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=16,
        attention_head_dim=2,
    )
    base = tmp_path_factory.mktemp("sd15")
    for name, part in dict(
        unet=unet, vae=build_vae(TINY), text_encoder=text_encoder, tokenizer=tokenizer
    ).items():
        part.save_pretrained(base / name)
    DDIMScheduler(beta_schedule="scaled_linear").save_pretrained(base / "scheduler")
    motion = tmp_path_factory.mktemp("motion")
    MotionAdapter(
        block_out_channels=channels,
        motion_layers_per_block=1,
        motion_norm_num_groups=4,
        motion_num_attention_heads=2,
        motion_max_seq_length=16,
    ).save_pretrained(motion)
    return base, motion


def _run(pipe, sampler, steps=2):
    return pipe(
        "a red circle moving left on a black background",
        num_inference_steps=steps,
        sampler=sampler,
        num_frames=4,
        generator=torch.Generator().manual_seed(0),
    )


def test_modelscope_layout_loads_and_samples(modelscope_folder):
    pipe = catalog.Catalog().load_pipeline(str(modelscope_folder))
    assert type(pipe.unet).__name__ == "UNet3DConditionModel"
    assert _run(pipe, "ddim").shape == (1, 4, 64, 64, 3)


def test_animatediff_assembles_with_the_mcm_scheduler_and_samples(animatediff_folders, tmp_path):
    pipe = catalog.assemble_animatediff(*map(str, animatediff_folders))
    assert type(pipe.unet).__name__ == "UNetMotionModel"
    cfg = pipe.scheduler.config
    assert (cfg.beta_schedule, cfg.beta_end, cfg.clip_sample, cfg.steps_offset) == (
        "linear",
        0.012,
        False,
        1,
    )
    teacher = _run(pipe, "ddim")
    # a student in the published layout on the motion UNet, sampled with the consistency sampler
    attach_lora(
        pipe.unet,
        "animatediff-webvid",
        rank=4,
        init="gaussian",
        target_modules=PUBLISHED_TARGET_MODULES,
    )
    save_adapter(pipe.unet, "animatediff-webvid", str(tmp_path / "animatediff-webvid"))
    pipe.load_adapter(str(tmp_path / "animatediff-webvid"), "reloaded")
    pipe.set_adapter("reloaded")
    student = _run(pipe, "consistency", 4)
    pipe.set_adapter("animatediff-webvid")
    assert np.array_equal(student, _run(pipe, "consistency", 4)) and not np.array_equal(
        student[:, :2], teacher[:, :2]
    )


def test_catalogue_finds_published_adapters_in_the_hub_cache(
    modelscope_folder, tmp_path, monkeypatch
):
    """`student_folder` reads <cache>/yhzhai/mcm/modelscopet2v-<variant>; offline and absent → the
    fetch command."""
    pipe = catalog.Catalog().load_pipeline(str(modelscope_folder))
    attach_lora(pipe.unet, "published", rank=4, init="gaussian")
    save_adapter(pipe.unet, "published", str(tmp_path / "hub" / "modelscopet2v-anime"))
    monkeypatch.setattr(
        catalog,
        "_snapshot",
        lambda repo, patterns=None, offline=True, progress=None: (
            str(tmp_path / "hub")
            if repo == catalog.PUBLISHED_ADAPTER_REPO
            else str(modelscope_folder)
        ),
    )
    assert catalog.Catalog().student_folder("modelscope", "mcm-anime") == str(
        tmp_path / "hub" / "modelscopet2v-anime"
    )
    monkeypatch.undo()
    with pytest.raises(
        catalog.CheckpointMissing, match="python -m mcm_demo fetch modelscope --variant anime"
    ):
        catalog.Catalog().student_folder("modelscope", "mcm-anime")
    with pytest.raises(catalog.CheckpointMissing, match="has no student"):
        catalog.Catalog().student_folder("animatediff", "mcm-anime")
