"""The motion reader on references made from real photographs (scikit-image's public-domain
images, by scripts/make_real_references.py), and the evaluation that runs on them."""

from __future__ import annotations

import copy
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from mcm_demo.adapters import attach_lora
from mcm_demo.eval.transfer_real import evaluate_real_transfer, load_real_set
from mcm_demo.metrics.evaluator import ToyEvaluator
from mcm_demo.transfer.core import TransferConfig
from mcm_demo.transfer.reading import read_motion
from mcm_demo.video_io import load_reference

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "make_real_references.py"


def _maker():
    spec = importlib.util.spec_from_file_location("make_real_references", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    assert _maker().main(["--out", str(out)]) == 0
    return out


def test_the_set_covers_every_kind_the_issue_names(real_set):
    refs = json.loads((real_set / "references.json").read_text())
    kinds = {r["kind"] for r in refs}
    assert (
        len(refs) >= 20
        and {
            "object right",
            "object left",
            "object up",
            "object down",
            "object diagonal",
            "pan right",
            "pan left",
            "zoom in",
            "zoom out",
            "rotation",
            "two objects",
        }
        <= kinds
    )


def test_every_real_reference_reads_as_its_motion_when_uploaded(real_set):
    refs = json.loads((real_set / "references.json").read_text())
    for r in refs:
        reading = read_motion(load_reference(str(real_set / r["file"]), 8, 64))
        assert reading.kind == r["motion"], r["name"]
        # over the rocket photo's flat sky the pan reads as the rocket moving: the same motion
        if r["kind"].startswith(("pan", "zoom")) and r["name"] != "pan-left-rocket":
            assert reading.source == "camera", r["name"]
        if r["kind"] == "two objects":
            assert reading.objects == 2 and "the larger one leads" in reading.describe()


def test_the_real_evaluation_scores_each_kind(real_set, tiny_pipeline):
    pipe = copy.deepcopy(tiny_pipeline)
    attach_lora(pipe.unet, "student", rank=4, init="gaussian")
    refs = [
        r for r in load_real_set(str(real_set)) if r["name"] in ("pan-left-rocket", "roll-chelsea")
    ]
    settings = {"none": TransferConfig(method="none", steps=2)}
    settings["fastvmt"] = TransferConfig(method="fastvmt", steps=2, inner_iterations=2)
    table = evaluate_real_transfer(
        pipe, settings, refs, "student", ToyEvaluator(16, 16).eval(), log=lambda *a: None
    )
    for name in settings:
        assert set(table[name]) == {"pan left", "rotation", "all"}
        assert table[name]["all"]["count"] == 4  # two references, two prompts each
        for row in table[name].values():
            assert 0 <= row["agreement"] <= 1 and 0 <= row["track_fidelity"] <= 1
            assert np.isfinite(row["seconds"])
