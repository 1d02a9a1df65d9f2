"""What can be loaded, and the one cached pipeline per teacher.

The only module that knows checkpoint names and where they live.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

WEIGHTS_DIR = Path(os.environ.get("MCM_DEMO_WEIGHTS", Path(__file__).resolve().parent.parent / "weights"))
EMBEDDED_TEACHER = WEIGHTS_DIR / "teacher"
EVALUATOR = WEIGHTS_DIR / "evaluator"

# name → local folder of the embedded default, or hub repo of a public teacher
TEACHERS = {
    "embedded": str(EMBEDDED_TEACHER),
    "modelscope": "ali-vilab/text-to-video-ms-1.7b",
}


class CheckpointMissing(RuntimeError):
    """A checkpoint is not on disk; the message names the command that makes or fetches it."""


_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()


def load_pipeline(teacher: str = "embedded", device: str | None = None, dtype: torch.dtype | None = None):
    """The cached pipeline of `teacher`, loaded once per (teacher, device, dtype)."""
    from .pipeline import TextToVideoPipeline

    if teacher not in TEACHERS and not (os.path.isdir(teacher) or teacher.count("/") == 1):
        raise CheckpointMissing(f"unknown teacher {teacher!r}; choose from {sorted(TEACHERS)}, "
                                "a local pipeline folder or a hub id")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
    key = (teacher, device, dtype)
    with _cache_lock:
        if key not in _cache:
            source = TEACHERS.get(teacher, teacher)
            if teacher == "embedded" and not (Path(source) / "model_index.json").exists():
                raise CheckpointMissing(
                    f"the embedded teacher is missing at {source}; rebuild it with "
                    "`python -m mcm_demo train teacher` (see weights/README.md)")
            pipe = TextToVideoPipeline.from_pretrained(source, dtype=dtype)
            _cache[key] = pipe.to(device)
        return _cache[key]


def load_evaluator():
    from .metrics import ToyEvaluator

    if not (EVALUATOR / "config.json").exists():
        raise CheckpointMissing(f"the evaluator is missing at {EVALUATOR}; rebuild it with "
                                "`python -m mcm_demo train evaluator`")
    return ToyEvaluator.from_pretrained(str(EVALUATOR)).eval()
