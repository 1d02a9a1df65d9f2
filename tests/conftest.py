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
