"""The adapters shipped in weights/ load onto the shipped teacher and sample in few steps."""

import json

import numpy as np
import pytest
import torch

from mcm_demo import adapters, catalog
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


def _latents(pipe, steps=2, sampler="consistency"):
    return pipe(
        "a yellow star spinning on a gray background",
        num_inference_steps=steps,
        sampler=sampler,
        generator=torch.Generator().manual_seed(1),
        output_type="latent",
    )


@pytest.mark.parametrize("name", SHIPPED)
def test_a_merged_student_samples_what_it_does_unmerged(teacher, name):
    if name not in teacher.adapters:
        teacher.load_adapter(str(catalog.DEFAULT_WEIGHTS / name), name)
    teacher.set_adapter(name)
    unmerged = _latents(teacher)
    teacher.set_adapter(name, merge=True)
    assert adapters.merged_adapters(teacher.unet) == [name]
    merged = _latents(teacher)
    assert (merged - unmerged).abs().max() <= 1e-4


def test_switching_merged_students_and_the_teacher_is_exact(teacher):
    first, second = SHIPPED[0], SHIPPED[-1]
    for name in (first, second):
        if name not in teacher.adapters:
            teacher.load_adapter(str(catalog.DEFAULT_WEIGHTS / name), name)
    teacher.set_adapter(None)
    clean = {k: v.clone() for k, v in teacher.unet.state_dict().items()}
    ddim = _latents(teacher, sampler="ddim")
    teacher.set_adapter(first, merge=True)
    a = _latents(teacher)
    teacher.set_adapter(second, merge=True)
    assert not torch.equal(_latents(teacher), a)
    teacher.set_adapter(first, merge=True)
    assert torch.equal(_latents(teacher), a)  # A → B → A: bit for bit
    teacher.set_adapter(None)  # the teacher never sees a merged adapter
    assert adapters.merged_adapters(teacher.unet) == []
    assert all(torch.equal(v, clean[k]) for k, v in teacher.unet.state_dict().items())
    assert torch.equal(_latents(teacher, sampler="ddim"), ddim)
