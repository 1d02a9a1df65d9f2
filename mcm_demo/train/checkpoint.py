"""Resumable training state: modules as safetensors, optimiser state as a weights-only file;
and where a distillation run keeps its adapter folders (snapshots, the exported student)."""

from __future__ import annotations

import json
import os
import shutil

import torch
from safetensors.torch import load_file, save_file


def save_state(
    folder: str,
    step: int,
    modules: dict,
    optimizer: torch.optim.Optimizer,
    extra: dict | None = None,
):
    os.makedirs(folder, exist_ok=True)
    for name, module in modules.items():
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(state, os.path.join(folder, f"{name}.safetensors"))
    torch.save(optimizer.state_dict(), os.path.join(folder, "optimizer.pt"))
    with open(os.path.join(folder, "state.json"), "w") as f:
        json.dump({"step": step, **(extra or {})}, f)


def load_state(folder: str, modules: dict, optimizer: torch.optim.Optimizer) -> dict | None:
    """Restore a run saved by `save_state`; None when `folder` holds no state yet."""
    path = os.path.join(folder, "state.json")
    if not os.path.exists(path):
        return None
    for name, module in modules.items():
        module.load_state_dict(load_file(os.path.join(folder, f"{name}.safetensors")))
    # weights_only: the optimiser file is read without unpickling arbitrary objects
    optimizer.load_state_dict(torch.load(os.path.join(folder, "optimizer.pt"), weights_only=True))
    with open(path) as f:
        return json.load(f)


# The modules a run's snapshot keeps: the frozen text encoder comes from the run's base again.
SNAPSHOT_MODULES = ("unet", "ema_unet")


def save_snapshot(run_dir: str, out: str) -> dict:
    """A run's state in fp16, small enough to commit: the live and the EMA UNet and the step.

    The optimiser state is left out (it would double the size); `load_snapshot` restarts it, and
    the run's learning-rate warm-up (200 steps) covers the restart.
    """
    with open(os.path.join(run_dir, "state.json")) as f:
        state = json.load(f)
    os.makedirs(out, exist_ok=True)
    for name in SNAPSHOT_MODULES:
        tensors = load_file(os.path.join(run_dir, f"{name}.safetensors"))
        save_file(
            {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
            os.path.join(out, f"{name}.safetensors"),
        )
    with open(os.path.join(out, "state.json"), "w") as f:
        json.dump(state, f)
    return state


def load_snapshot(folder: str, modules: dict) -> dict:
    for name in SNAPSHOT_MODULES:
        module = modules[name]
        dtypes = {k: v.dtype for k, v in module.state_dict().items()}
        module.load_state_dict(
            {
                k: v.to(dtypes[k])
                for k, v in load_file(os.path.join(folder, f"{name}.safetensors")).items()
            }
        )
    with open(os.path.join(folder, "state.json")) as f:
        return json.load(f)


def snapshot_folder(run_dir: str, step: int) -> str:
    """Where `snapshot_every` keeps the adapter of `step` (an adapter folder that eval and the app
    load)."""
    return os.path.join(run_dir, "snapshots", f"step-{step:05d}")


def export_adapter(run_dir: str, out: str) -> None:
    """Copy a finished run's adapter folder to `out`, its LoRA weights in fp16 (half the size in
    git, the same clips: the deltas are small)."""
    shutil.copytree(os.path.join(run_dir, "adapter"), out, dirs_exist_ok=True)
    path = os.path.join(out, "adapter_model.safetensors")
    save_file({k: v.half() for k, v in load_file(path).items()}, path)
