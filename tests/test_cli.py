import subprocess
import sys

import pytest

from mcm_demo.video_io import probe


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mcm_demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", ""], "prompt is empty"),
        (["--steps", "0"], "Steps must be from 1 to 1000"),
        (["--seed", "-1"], "Seed must be from 0"),
        (["--frames", "16", "--window-stride", "9"], "window stride must be from 1 to 8 frames"),
    ],
)
def test_bad_generate_input_is_a_clear_error(args, message, tmp_path):
    result = run_cli("generate", *args, "--out", str(tmp_path / "x.mp4"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_generate_writes_a_browser_playable_mp4(tmp_path):
    out = tmp_path / "clip.mp4"
    result = run_cli(
        "generate",
        "--prompt",
        "a red circle moving left on a black background",
        "--steps",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    info = probe(str(out))
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8


def test_missing_checkpoint_names_the_rebuild_command(tmp_path):

    result = run_cli(
        "--weights", str(tmp_path), "generate", "--steps", "2", "--out", str(tmp_path / "y.mp4")
    )
    assert result.returncode == 3 and "python -m mcm_demo train teacher" in result.stderr


def test_every_eval_transfer_setting_is_a_valid_config():
    from mcm_demo.eval.transfer import TRANSFER_SETTINGS
    from mcm_demo.transfer.core import METHODS, START_LOOKS, TransferConfig

    for name, overrides in TRANSFER_SETTINGS.items():
        cfg = TransferConfig(**overrides)
        assert cfg.method in METHODS and cfg.start_look in START_LOOKS, name


def test_the_teacher_training_command_lines_map_onto_the_library(monkeypatch):
    """The rebuild commands of the shipped checkpoints parse and reach `train_component` as
    written."""
    from mcm_demo.app import cli
    from mcm_demo.app import commands_training as commands

    calls = []
    monkeypatch.setattr(commands, "train_component", lambda what, **kw: calls.append((what, kw)))
    monkeypatch.setattr(
        commands,
        "save_snapshot",
        lambda run_dir, out: calls.append((run_dir, out)) or {"step": 1},
    )
    assert (
        cli.main(
            "train teacher --base weights/teacher --run-dir runs/shape --steps 40000 --batch 8 "
            "--image-batch 128 --keep-every 500 --out runs/shape/export".split()
        )
        == 0
    )
    what, kw = calls[-1]
    assert (
        what == "teacher"
        and kw["base"] == "weights/teacher"
        and kw["steps"] == 40000
        and kw["batch"] == 8
    )
    assert kw["image_batch"] == 128 and kw["keep_every"] == 500 and kw["out"] == "runs/shape/export"
    assert kw["size"] == "x4" and kw["spatial_positions"] is None
    assert cli.main("train snapshot --run-dir runs/shape --out weights/teacher-run".split()) == 0
    assert calls[-1] == ("runs/shape/unet", "weights/teacher-run")
    assert (
        cli.main(
            "train evaluator --base weights/evaluator --lr 5e-4 "
            "--run-dir runs/ev2 --steps 600".split()
        )
        == 0
    )
    what, kw = calls[-1]
    assert (
        what == "evaluator"
        and kw["lr"] == 5e-4
        and kw["base"] == "weights/evaluator"
        and kw["steps"] == 600
    )
    assert (
        cli.main(
            "train teacher --resume-from weights/teacher-run --init-unet runs/x "
            "--high-noise-share 0.5 "
            "--no-spatial-positions --plain-levels 0 --text-embedding-std clip --lr 3e-4".split()
        )
        == 0
    )
    _, kw = calls[-1]
    assert (
        kw["resume_from"] == "weights/teacher-run"
        and kw["spatial_positions"] is False
        and kw["plain_levels"] == 0
    )


def test_compare_writes_the_labelled_side_by_side(tmp_path):
    out = tmp_path / "comparison.mp4"
    result = run_cli(
        "compare", "--steps", "1", "--out-dir", str(tmp_path / "cols"), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "side by side:" in result.stdout and "measured" in result.stdout
    info = probe(str(out))
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8
    assert info["width"] >= 2 * 256 and probe(str(tmp_path / "comparison.gif"))["frames"] == 8


@pytest.mark.parametrize(
    "box, message",
    [("1,2", "give four integers TOP,BOTTOM,LEFT,RIGHT or auto"), ("5,5,0,9", "an empty box")],
)
def test_a_bad_overlay_box_is_a_clear_error(box, message, capsys):
    from mcm_demo.app import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["distill", "--adv-whole-frame", "--adv-whole-box", box])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_mismatch_word_is_the_shape_or_the_colour(capsys):
    from mcm_demo.app import cli

    with pytest.raises(SystemExit) as stop:
        cli.main(["distill", "--adv-mismatch", "--adv-mismatch-word", "size"])
    assert stop.value.code == 2 and "invalid choice: 'size'" in capsys.readouterr().err
