import subprocess
import sys

import pytest

from mcm_demo.video_io import probe


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mcm_demo", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--prompt", ""], "prompt is empty"),
    (["--steps", "0"], "--steps must be 1 or more"),
    (["--seed", "-1"], "Seed must be 0 or more"),
])
def test_bad_generate_input_is_a_clear_error(args, message, tmp_path):
    result = run_cli("generate", *args, "--out", str(tmp_path / "x.mp4"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_generate_writes_a_browser_playable_mp4(tmp_path):
    out = tmp_path / "clip.mp4"
    result = run_cli("generate", "--prompt", "a red circle moving left on a black background",
                     "--steps", "2", "--seed", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    info = probe(str(out))
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["frames"] == 8


def test_missing_checkpoint_names_the_rebuild_command(tmp_path):
    import os

    env = dict(os.environ, MCM_DEMO_WEIGHTS=str(tmp_path))
    result = run_cli("generate", "--steps", "2", "--out", str(tmp_path / "y.mp4"), env=env)
    assert result.returncode == 3 and "python -m mcm_demo train teacher" in result.stderr


def test_every_eval_transfer_setting_is_a_valid_config():
    from mcm_demo.cli import TRANSFER_SETTINGS
    from mcm_demo.motion.transfer import METHODS, START_LOOKS, TransferConfig

    for name, overrides in TRANSFER_SETTINGS.items():
        cfg = TransferConfig(**overrides)
        assert cfg.method in METHODS and cfg.start_look in START_LOOKS, name
    assert TransferConfig(**TRANSFER_SETTINGS["fastvmt-reference-look"]).start_look == "reference"
