"""The real-checkpoint path on tiny random models saved in the hub layouts (nothing downloads):
a ModelScope-style pipeline folder, an SD1.5 base + AnimateDiff motion adapter, and the
published MCM adapters' folder layout found through the catalogue."""

import numpy as np
import pytest
import torch

from mcm_demo import catalog
from mcm_demo.adapters import PUBLISHED_TARGET_MODULES, attach_lora, save_adapter


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
