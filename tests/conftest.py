import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in a test reaches a hub
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_pipeline():
    """A pipeline of tiny random components: the whole story runs in well under a second."""
    from diffusers import DDIMScheduler

    from mcm_demo import TextToVideoPipeline
    from mcm_demo.embedded.config import TeacherConfig, build_noise_schedule, build_unet, build_vae
    from mcm_demo.embedded.text import build_text_encoder, build_tokenizer

    torch.manual_seed(0)
    cfg = TeacherConfig(
        vae_channels=(8, 8, 8, 8),
        text_hidden=16,
        text_layers=1,
        unet_channels=(8, 8, 8),
        unet_heads=2,
        latent_channels=8,
        unet_plain_levels=0,
        unet_spatial_positions=False,
        text_embedding_std=None,
    )
    tokenizer = build_tokenizer()
    scheduler = DDIMScheduler.from_config(build_noise_schedule().config)
    return TextToVideoPipeline(
        build_vae(cfg), build_text_encoder(cfg, tokenizer), tokenizer, build_unet(cfg), scheduler
    )


@pytest.fixture(scope="session")
def student_weights(tmp_path_factory):
    """A weights folder with the shipped teacher and two small students on it ("lcm",
    "mcm-webvid": random LoRAs saved in the published layout); the other variants missing."""
    from mcm_demo import catalog
    from mcm_demo.adapters import attach_lora, save_adapter
    from mcm_demo.pipeline import TextToVideoPipeline

    root = tmp_path_factory.mktemp("weights")
    for name in ("teacher", "evaluator", "preview"):
        (root / name).symlink_to(catalog.DEFAULT_WEIGHTS / name)
    unet = TextToVideoPipeline.from_pretrained(str(catalog.DEFAULT_WEIGHTS / "teacher")).unet
    torch.manual_seed(0)
    for name in ("lcm", "mcm-webvid"):
        attach_lora(unet, name, rank=4, init="gaussian")
        save_adapter(unet, name, str(root / name))
    return root


@pytest.fixture
def with_students(student_weights):
    """A service whose catalogue has `student_weights` (the teacher is the shipped one)."""
    from mcm_demo.app.service import Service
    from mcm_demo.catalog import Catalog

    return Service(Catalog(student_weights))


# -- the real teachers' hub layouts at toy size (test_real_teachers, test_official_format) -----
def _tiny_config():
    from mcm_demo.embedded.config import TeacherConfig

    return TeacherConfig(
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
    from mcm_demo.embedded.text import build_text_encoder, build_tokenizer

    tokenizer = build_tokenizer()
    return tokenizer, build_text_encoder(_tiny_config(), tokenizer)


@pytest.fixture(scope="session")
def modelscope_folder(tmp_path_factory):
    """A diffusers TextToVideoSDPipeline folder, as ali-vilab/text-to-video-ms-1.7b is laid out."""
    from diffusers import DDIMScheduler, UNet3DConditionModel

    from mcm_demo.embedded.config import build_vae
    from mcm_demo.pipeline import TextToVideoPipeline

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
    TextToVideoPipeline(
        build_vae(_tiny_config()), text_encoder, tokenizer, unet, scheduler
    ).save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "TextToVideoSDPipeline"  # what the hub repo says
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


@pytest.fixture(scope="session")
def animatediff_folders(tmp_path_factory):
    """An SD1.5 base folder and an AnimateDiff motion adapter folder, as on the hub."""
    from diffusers import DDIMScheduler, MotionAdapter, UNet2DConditionModel

    from mcm_demo.embedded.config import build_vae

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
        unet=unet, vae=build_vae(_tiny_config()), text_encoder=text_encoder, tokenizer=tokenizer
    ).items():
        part.save_pretrained(base / name)
    # SD1.5's noise schedule, as its bases' scheduler configs hold it
    DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False
    ).save_pretrained(base / "scheduler")
    motion = tmp_path_factory.mktemp("motion")
    MotionAdapter(
        block_out_channels=channels,
        motion_layers_per_block=1,
        motion_norm_num_groups=4,
        motion_num_attention_heads=2,
        motion_max_seq_length=16,
    ).save_pretrained(motion)
    return base, motion
