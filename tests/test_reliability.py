"""Locks, validation, bounded caches and private temp folders (issue 29). Fast and offline; the
load, soak and long fuzz runs are `scripts/reliability.py`."""

import os
import shutil
import stat
import threading
import time

import pytest
import torch

from mcm_demo.app import handlers, handlers_transfer, service
from mcm_demo.app.scratch import PrivateFolder
from mcm_demo.app.service import Request, Service, TransferRequest
from mcm_demo.app.ui import ASSETS
from mcm_demo.catalog import Catalog, CheckpointMissing, device_key
from mcm_demo.pipeline import PipelineInputError

REFERENCE = os.path.join(ASSETS, "growing-cyan-cross.gif")


def test_every_name_of_a_device_is_one_lock():
    svc = Service()
    assert device_key("cuda") == device_key("cuda:0") == device_key(torch.device("cuda", 0))
    assert svc.device_lock("cuda") is svc.device_lock("cuda:0")
    assert svc.device_lock(torch.device("cuda", 0)) is svc.device_lock("cuda")
    assert svc.device_lock("cpu") is not svc.device_lock("cuda")


def test_generation_and_transfer_load_their_pipeline_under_the_device_lock(student_weights):
    svc = Service(Catalog(student_weights))
    held = []

    def load_pipeline(teacher, device=None, dtype=None, rival=None):
        held.append(svc.device_lock(device or "cpu").locked())
        raise CheckpointMissing("stop here")

    svc.catalog.load_pipeline = load_pipeline
    with pytest.raises(CheckpointMissing):
        svc.generate(Request("a red circle", "lcm", 1))
    with pytest.raises(CheckpointMissing):
        svc.run_transfer(TransferRequest(REFERENCE, "a red circle", student="lcm"))
    assert held == [True, True]


def test_teacher_dropdown_and_upload_preview_load_nothing_during_a_run(student_weights):
    svc = Service(Catalog(student_weights))
    loads = []
    svc.catalog._load = lambda *a, **k: loads.append(a)
    answers = {}

    def use_the_page():
        answers["status"] = handlers.teacher_status(svc, "embedded")
        answers["preview"] = handlers_transfer.reference_preview(svc, REFERENCE)

    with svc.device_lock("cpu"):  # a generation is running
        worker = threading.Thread(target=use_the_page)
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the page waited for the running generation"
    assert loads == [] and svc.catalog.loaded() == []
    assert "available" in answers["status"] or "missing" in answers["status"]
    video, status = answers["preview"]
    assert video and "Reference read" in status


class _FakePipe:
    def to(self, device):
        return self


def test_the_pipeline_cache_keeps_the_most_recently_used(tmp_path):
    catalog = Catalog(max_pipelines=2)
    loads = []

    def load(teacher, dtype, rival=None):
        loads.append(teacher)
        time.sleep(0.05)  # slow enough for the concurrent callers below to overlap
        return _FakePipe()

    catalog._load = load
    folders = [str(tmp_path / name) for name in "abc"]
    for folder in folders:
        os.makedirs(folder)
    threads = [threading.Thread(target=catalog.load_pipeline, args=(folders[0],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [folders[0]]  # four callers, one load
    catalog.load_pipeline(folders[1])
    catalog.load_pipeline(folders[0])  # now the most recent
    catalog.load_pipeline(folders[2])  # evicts folders[1], the least recently used
    assert [key[0] for key in catalog.loaded()] == [folders[0], folders[2]]


def test_the_baseline_cache_is_locked_and_bounded():
    svc = Service()
    measured = []

    def generate(req, device=None, previews=False, video=False):
        measured.append(req.frames)
        time.sleep(0.01)
        return service.Result(None, 1.0, None, 0.0, "ddim")

    svc.generate = generate
    threads = [
        threading.Thread(target=svc.teacher_baseline_seconds, args=("embedded", 8))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert measured == [8]  # measured once however many ask at once
    for frames in range(2, 2 + service.MAX_BASELINES + 10):
        svc.teacher_baseline_seconds("embedded", frames)
    assert len(svc._baselines) == service.MAX_BASELINES


@pytest.mark.parametrize(
    "field, value",
    [
        ("model", None),
        ("model", 3),
        ("teacher", None),
        ("teacher", ["embedded"]),
        ("guidance", None),
        ("guidance", "abc"),
        ("guidance", [5.0]),
        ("steps", None),
        ("frames", "x"),
        ("seed", None),
        ("prompt", None),
    ],
)
def test_bad_field_types_give_the_request_error(field, value):
    req = Request("a red circle moving left", "mcm-webvid", 4)
    with pytest.raises(PipelineInputError):
        service.check_request(Request(**{**req.__dict__, field: value}))


@pytest.mark.parametrize(
    "field, value",
    [
        ("method", None),
        ("start_look", 1),
        ("student", None),
        ("strength", "abc"),
        ("strength", None),
        ("invariant_prompt", 5),
        ("reference", 123),
        ("inner_iterations", None),
    ],
)
def test_bad_transfer_field_types_give_the_request_error(field, value):
    req = TransferRequest(REFERENCE, "a red circle")
    with pytest.raises(PipelineInputError):
        service.check_transfer_request(TransferRequest(**{**req.__dict__, field: value}))


def test_the_page_answers_bad_types_with_a_message():
    svc = Service()
    args = ["a red circle", "embedded", "webvid", 1, 0, False, 8, 8, None, "lcm", 3, None]
    *_, last = handlers.compare(svc, *args)
    assert last[3].startswith("⚠️") and last[6].startswith("⚠️")
    args = ["a red circle", "embedded", "webvid", 1, 0, False, 8, None, "lcm", "lcm", 3, 5.0]
    *_, last = handlers.compare(svc, *args)
    assert "Frames per second must be a number" in last[7]


def test_an_upload_is_decoded_once_for_the_preview_and_the_transfer(monkeypatch, tmp_path):
    decoded = []
    real = service.load_reference
    monkeypatch.setattr(
        service, "load_reference", lambda *a, **k: decoded.append(a[0]) or real(*a, **k)
    )
    svc = Service()
    handlers_transfer.reference_preview(svc, REFERENCE)
    again = shutil.copy(REFERENCE, tmp_path / "renamed-by-the-browser.gif")
    assert svc.reference_clip(str(again)).shape == (service.TRANSFER_FRAMES, 64, 64, 3)
    assert decoded == [REFERENCE]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(2000))
    for _ in range(2):  # an unusable upload's message is kept too
        assert "could not be decoded" in handlers_transfer.reference_preview(svc, str(bad))[1]
    assert decoded == [REFERENCE, str(bad)]


def test_private_folders_are_made_by_the_app_swept_and_removed():
    folder = PrivateFolder("mcm-demo-test-", max_age_s=60, max_entries=3, sweep_every_s=0.05)
    paths = [folder.new_path(".mp4") for _ in range(5)]
    root = folder.path
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700 and os.path.dirname(paths[0]) == root
    for i, path in enumerate(paths):
        open(path, "w").write("x")
        os.utime(path, (time.time() - 120 + i, time.time() - 120 + i) if i == 0 else None)
    time.sleep(0.3)  # the timer sweeps: the old one, then the oldest past three
    left = sorted(os.listdir(root))
    assert len(left) == 3 and os.path.basename(paths[0]) not in left
    folder.remove()  # what atexit calls
    assert not os.path.exists(root)


def test_outputs_and_adapters_live_in_private_folders():
    out = service.new_output_path()
    assert os.path.dirname(out) == service.OUTPUTS.path
    for folder in (service.OUTPUTS, service.ADAPTER_CACHE):
        assert stat.S_IMODE(os.stat(folder.path).st_mode) == 0o700


def test_the_page_divides_by_a_teacher_run_through_its_own_column(with_students, monkeypatch):
    """The page's columns write every preview out; the baseline they are divided by must pay
    the same, or the speedups shown flatter the teacher."""
    runs = []

    def baseline(teacher, frames, guidance=5.0, device=None, run=None, window_stride=None):
        runs.append(run)
        return 1.0

    with_students.teacher_baseline_seconds = baseline
    args = ["a red circle moving left", "embedded", "webvid", 1, 0, False, 8, 8, "lcm", "lcm", 3, 5]
    list(handlers.compare(with_students, *args))
    written = []
    write = handlers.filmstrip_file
    monkeypatch.setattr(handlers, "filmstrip_file", lambda f: written.append(1) or write(f))
    result = runs[0](service.Request("a red circle moving left", service.TEACHER_MODEL, 2))
    assert isinstance(result, service.Result) and result.video.endswith(".mp4")
    assert len(written) == 3  # the two steps' previews, then the finished strip


def test_previews_are_files_written_once(with_students):
    """Gradio rewrote an array preview in its cache at every later yield, while clients read it."""
    with_students.teacher_baseline_seconds = lambda *a, **k: 1.0
    args = ["a red circle moving left", "embedded", "webvid", 1, 0, False, 8, 8, "lcm", "lcm", 3, 5]
    updates = list(handlers.compare(with_students, *args))
    left = {u[1] for u in updates if u[1] is not None}
    assert all(isinstance(p, str) and p.endswith(".webp") and os.path.isfile(p) for p in left)
    assert len(left) == 2  # the step's preview, then the finished strip, carried unchanged
    assert updates[-1][1] == updates[-2][1] and updates[-1][4].endswith(".webp")
