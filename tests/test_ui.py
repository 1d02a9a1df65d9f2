"""The page's handlers called directly: two streamed columns, playable mp4s, clear messages."""

import gradio as gr
import numpy as np
import pytest

from mcm_demo.app import service, ui
from mcm_demo.video_io import probe, write_mp4

PROMPT = "a red circle moving left on a black background"


def run_compare(svc=None, **overrides):
    args = dict(
        prompt=PROMPT,
        teacher="embedded",
        variant="webvid",
        steps=2,
        seed=0,
        randomize=False,
        frames=8,
        fps=8,
        left="lcm",
        right="mcm-webvid",
        teacher_steps=3,
        guidance=5.0,
    )
    args.update(overrides)
    return list(ui.compare(svc or service.Service(), **args))


def sent(value):
    return value is not None


def test_compare_streams_both_columns_then_videos_and_speedups(with_students):
    updates = run_compare(
        with_students,
    )
    left_previews = {u[3] for u in updates if sent(u[1]) and not sent(u[2])}
    right_previews = {u[6] for u in updates if sent(u[4]) and not sent(u[5])}
    assert len(left_previews) == 2 and len(right_previews) == 2  # one per step
    final = updates[-1]
    videos = [final[2], final[5]]
    assert videos[0] != videos[1]
    for path in videos:
        info = probe(path)
        assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8
    assert "LCM" in final[3] and "measured" in final[3] and "MCM-webvid" in final[6]
    summary = final[7]
    assert "Speedup" in summary and "LCM" in summary and "MCM-webvid" in summary and "×" in summary


def test_teacher_column_and_randomized_seed(with_students):
    updates = run_compare(
        with_students,
        left="teacher",
        right="lcm",
        randomize=True,
        seed=0,
        teacher_steps=2,
        frames=4,
    )
    assert isinstance(updates[0][0], int) and updates[0][0] >= 0  # the seed used is shown
    assert any(sent(u[1]) and "Teacher (DDIM-2" in u[3] for u in updates)
    assert probe([u[2] for u in updates if sent(u[2])][0])["frames"] == 4


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(prompt=""), "prompt is empty"),
        (dict(prompt="x" * 10_000), "limit is"),
        (dict(steps=0), "1 to 8 steps"),
        (dict(steps=1000), "1 to 8 steps"),
        (dict(left="teacher", teacher_steps=0), "1 to 1000 DDIM steps"),
        (dict(seed=-1), "Seed must be"),
        (dict(seed=1.5), "whole number"),
        (dict(right="mcm-watercolour"), "Unknown style variant"),
        (dict(teacher="sora"), "Unknown teacher"),
        (dict(frames=500), "Frames must be"),
        (dict(window_stride=9), "window stride must be from 1 to 8 frames"),
    ],
)
def test_bad_input_is_a_clear_message_and_the_next_request_works(with_students, overrides, message):
    updates = run_compare(with_students, **overrides)
    texts = " ".join(str(v) for u in updates for v in u if isinstance(v, str))
    assert "⚠️" in texts and message in texts
    assert any(
        sent(u[5]) for u in run_compare(with_students, steps=1)
    )  # and the next request works


def test_unknown_variant_from_the_api(with_students):
    updates = run_compare(with_students, variant="watercolour")
    assert "Unknown style variant" in updates[-1][7]


def test_missing_student_names_the_command_and_the_other_column_still_runs(with_students):
    updates = run_compare(with_students, right="mcm-anime")
    right_status = updates[-1][6]
    assert (
        "mcm-anime adapter is missing" in right_status
        and "python -m mcm_demo distill" in right_status
    )
    assert sent(updates[-1][2])  # the LCM column made its video


def test_missing_real_teacher_names_the_fetch_command():
    status = ui.teacher_status(
        service.Service(), "modelscope"
    )  # HF_HUB_OFFLINE: nothing cached, nothing downloaded
    assert "python -m mcm_demo fetch modelscope" in status and "embedded" in status
    updates = run_compare(teacher="modelscope", left="teacher", right="mcm-webvid")
    assert all("python -m mcm_demo fetch modelscope" in updates[-1][i] for i in (3, 6))


def test_frames_and_fps_follow_the_teacher():
    """The published students were distilled and demoed at 16 frames; the embedded world's
    clips have 8. The page's sliders take the teacher's values, and a request that names none
    gets them too."""
    from mcm_demo.app.handlers import teacher_switch

    svc = service.Service()
    pages = {t: teacher_switch(svc, t, "laion") for t in ("embedded", "modelscope", "animatediff")}
    assert {t: (p.frames, p.fps) for t, p in pages.items()} == {
        "embedded": (8, 8.0),
        "modelscope": (16, 7.0),
        "animatediff": (16, 7.0),
    }
    assert (pages["embedded"].left, pages["embedded"].right) == ("lcm", "mcm-laion")
    # no public LCM for ModelScope: the teacher at the students' steps; AnimateLCM on AnimateDiff
    assert (pages["modelscope"].left, pages["modelscope"].right) == (
        service.TEACHER_AT_STEPS,
        "mcm-laion",
    )
    assert (pages["animatediff"].left, pages["animatediff"].right) == ("animatelcm", "mcm-laion")
    for teacher, page in pages.items():
        req = service.check_request(service.Request(PROMPT, page.right, 4, teacher=teacher))
        assert (req.frames, req.fps) == (page.frames, page.fps)
    req = service.check_request(service.Request(PROMPT, "lcm", 4, frames=12, fps=10))
    assert (req.frames, req.fps) == (12, 10)


def test_service_rejects_before_any_work():
    with pytest.raises(service.PipelineInputError, match="offers"):
        service.check_request(service.Request(PROMPT, "lcm", 4, teacher="animatediff"))


def test_page_builds_with_the_controls():
    demo = ui.build_demo()
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {
        "Prompt",
        "Teacher",
        "Style variant (MCM)",
        "Steps",
        "Seed",
        "Randomize seed",
        "Frames",
        "Frames per second",
        "Left column",
        "Right column",
    } <= labels
    assert isinstance(demo, gr.Blocks)
    # the *Long video* inputs have defaults: an API caller that leaves them out gets no travel
    # and half-window strides, as before they were on the page
    params = demo.get_api_info()["named_endpoints"]["/compare"]["parameters"]
    defaults = {p["parameter_name"]: p["parameter_default"] for p in params}
    assert (defaults["travel"], defaults["window_stride"]) == ("", 0)
    stride = next(b for b in demo.blocks.values() if b.elem_id == "window-stride")
    assert stride.label.startswith("Window stride")
    assert stride.preprocess(9) == 9 and stride.preprocess(None) is None  # the request says why


REFERENCE = str(ui.ASSETS + "/right-red-square.mp4")


def test_transfer_tab_returns_reference_result_and_baseline(with_students):
    ref, new, base, status = ui.run_transfer(
        with_students,
        REFERENCE,
        "a yellow star on a gray background",
        "fastvmt",
        "mcm-webvid",
        2,
        0.75,
        3,
        5,
        "",
        0,
        "prompt",
    )
    for path in (ref, new, base):
        assert probe(path)["codec"] == "h264"
    assert "motion fidelity" in status and "measured" in status
    ref, new, base, status = ui.run_transfer(
        with_students,
        REFERENCE,
        "a yellow star on a gray background",
        "vmc",
        "mcm-webvid",
        2,
        0.75,
        3,
        3,
        "",
        0,
        "reference",
    )
    assert new and "Derived motion prompt: 'a star'" in status


@pytest.mark.parametrize(
    "make, overrides, message",
    [
        (lambda p: p.write_bytes(b"\x00" * 64), {}, "could not be decoded"),
        (lambda p: None, dict(reference=None), "No clip"),
        (lambda p: None, dict(method="dense"), "Unknown method"),
        (lambda p: None, dict(steps=0), "1 to 8 steps"),
        (lambda p: None, dict(student="teacher"), "few-step student"),
        (lambda p: None, dict(prompt=""), "prompt is empty"),
        (lambda p: None, dict(strength=3), "Strength"),
        (lambda p: None, dict(start_look="noise"), "Unknown start"),
        (
            lambda p: write_mp4(np.full((8, 64, 64, 3), 90, np.uint8), str(p)),
            {},
            "No usable motion",
        ),
    ],
)
def test_transfer_bad_input_is_a_clear_message(with_students, tmp_path, make, overrides, message):
    bad = tmp_path / "bad.mp4"
    make(bad)
    args = dict(
        reference=str(bad) if bad.exists() else REFERENCE,
        prompt="a star",
        method="fastvmt",
        student="mcm-webvid",
        steps=2,
        strength=0.75,
        inner_iterations=2,
        tune_steps=2,
        motion_prompt="",
        seed=0,
    )
    args.update(overrides)
    *videos, status = ui.run_transfer(with_students, **args)
    assert videos == [None, None, None] and status.startswith("⚠️") and message in status
    if args["reference"]:  # the upload's own preview says the same, or shows the clip
        preview, note = ui.reference_preview(with_students, args["reference"])
        assert (preview is None or "No usable motion" in note) == ("⚠️" in note)


def test_a_finished_comparison_exports_one_labelled_side_by_side(with_students):
    final = run_compare(with_students, steps=1)[-1]
    job = final[8]  # the finished columns, kept for the export that follows them
    assert [p.title for p in job.panels] == ["LCM", "MCM-webvid"]
    assert "1 step · " in job.panels[0].detail and "measured" in job.panels[0].detail
    assert PROMPT in job.caption and "seed 0" in job.caption
    mp4, gif, status = ui.export_comparison(job)
    info = probe(mp4)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8
    assert info["width"] >= 2 * 256 and probe(gif)["frames"] == 8
    assert "built in" in status and "measured" in status
    assert ui.export_comparison(None) == (None, None, "")


def test_nothing_finished_means_nothing_to_export(with_students):
    assert run_compare(with_students, prompt="")[-1][8] is None


def test_the_page_says_what_each_column_and_method_is():
    from mcm_demo.app.notes import RunTimes, column_note, method_note

    assert "LCM baseline" in column_note("lcm")
    assert "anime image set" in column_note("mcm-anime") and "ink outlines" in column_note(
        "mcm-anime"
    )
    assert "25 DDIM steps" in column_note("teacher", 25)
    assert "2-core CPU" in method_note("fastvmt", 60)
    times = RunTimes()
    times.record_transfer("vmc", {"tuning_s": 10.0, "sampling_s": 0.5}, 10.6, 20)
    assert "0.50 s a tuning step, measured on this server" in method_note("vmc", 20, times)
    assert "about **10 s**" in method_note("vmc", 19, times)  # 19 × 0.5 + 0.5


def test_a_transfer_exports_reference_transferred_and_no_transfer(with_students):
    from mcm_demo.app.notes import RunTimes

    times = RunTimes()
    *videos, status, job = ui.transfer_for_page(
        with_students,
        REFERENCE,
        "a yellow star on a gray background",
        "fastvmt",
        "mcm-webvid",
        2,
        0.75,
        2,
        5,
        "",
        0,
        "prompt",
        None,
        times,
    )
    assert all(videos) and [p.title for p in job.panels] == [
        "Reference",
        "fastvmt transfer · MCM-webvid",
        "Same seed, no transfer",
    ]
    assert "motion fidelity" in job.panels[1].detail and "seed 0" in job.caption
    assert times.estimate("fastvmt")[1]  # the method note now quotes this server's time
    mp4, _, _ = ui.export_comparison(job)
    assert probe(mp4)["width"] >= 3 * 256
