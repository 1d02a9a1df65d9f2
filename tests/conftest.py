import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in a test reaches a hub
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_pipeline():
    """A pipeline of tiny random components: the whole story runs in well under a second."""
    from diffusers import DDIMScheduler

    from mcm_demo import TextToVideoPipeline
    from mcm_demo.models import (TeacherConfig, build_noise_schedule, build_text_encoder, build_tokenizer,
                                 build_unet, build_vae)

    torch.manual_seed(0)
    cfg = TeacherConfig(vae_channels=(8, 8, 8, 8), text_hidden=16, text_layers=1, unet_channels=(8, 8, 8), unet_heads=2)
    tokenizer = build_tokenizer()
    scheduler = DDIMScheduler.from_config(build_noise_schedule().config)
    return TextToVideoPipeline(build_vae(cfg), build_text_encoder(cfg, tokenizer), tokenizer, build_unet(cfg), scheduler)
