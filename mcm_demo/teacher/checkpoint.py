"""Resumable training state: modules as safetensors, optimiser state as a weights-only file."""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save_file


def save_state(folder: str, step: int, modules: dict, optimizer: torch.optim.Optimizer, extra: dict | None = None):
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
