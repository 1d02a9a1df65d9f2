"""The adapters shipped in weights/ load onto the shipped teacher and sample in few steps."""

import json

import numpy as np
import pytest
import torch

from mcm_demo import catalog
from mcm_demo.pipeline import TextToVideoPipeline

SHIPPED = [
    n
    for n in catalog.student_names("embedded")
    if (catalog.DEFAULT_WEIGHTS / n / "adapter_model.safetensors").exists()
]


def test_the_baseline_and_at_least_one_mcm_student_are_shipped():
    assert "lcm" in SHIPPED and any(n.startswith("mcm-") for n in SHIPPED)


@pytest.fixture(scope="module")
def teacher():
    return TextToVideoPipeline.from_pretrained(str(catalog.DEFAULT_WEIGHTS / "teacher"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_adapter_loads_switches_and_samples(teacher, name):
    folder = catalog.DEFAULT_WEIGHTS / name
    config = json.loads((folder / "distill_config.json").read_text())
    assert config["teacher"] == "embedded" and config["adapter_name"] == name
    if name.startswith("mcm-"):
        assert config["variant"] == name[4:] and (folder / "motion_head.safetensors").exists()
    teacher.load_adapter(str(folder), name)
    teacher.set_adapter(name)
    run = lambda: teacher(
        "a red circle moving left on a black background",
        num_inference_steps=2,  # noqa: E731
        sampler="consistency",
        generator=torch.Generator().manual_seed(0),
    )
    frames = run()
    assert frames.shape == (1, 8, 64, 64, 3) and np.isfinite(frames).all()
    teacher.set_adapter(None)
    teacher.set_adapter(name)
    assert np.array_equal(frames, run())
