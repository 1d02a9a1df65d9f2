"""The motion-transfer knobs, their defaults (the app's, the CLI's) and their allowed values."""

from __future__ import annotations

import dataclasses

METHODS = ("fastvmt", "vmc", "none")
START_LOOKS = ("layout", "prompt", "reference")


@dataclasses.dataclass
class TransferConfig:
    """The knobs of both methods; the defaults are the app's (docs/transfer.md: how they were
    chosen)."""

    method: str = "fastvmt"
    steps: int = 4
    strength: float = 0.75  # start timestep as a share of T: lower keeps more of the reference
    turn_strength: float = 0.45  # the layout start of a spin starts no higher than this
    seed: int = 0
    # fastvmt
    inner_iterations: int = 24
    guided_steps: int = 2  # how many of the first informative sampling steps are guided
    lr: float = 0.05
    window: int | None = (
        1  # attention window radius; None = dense attention (the speedup's baseline)
    )
    reuse_every: int = (
        4  # a full backward every this many inner iterations; 1 = every one (baseline)
    )
    # vmc
    tune_steps: int = 60
    tune_lr: float = 1e-3
    tune_rank: int = 4
    invariant_prompt: str | None = None  # None: derived from the prompt
    # "layout": on the embedded teacher, the prompt's object on the prompt's background laid
    # along the track read from the reference (layout.py; other teachers start from the
    # reference as it is, the papers' path); "prompt": the reference recoloured to a one-step
    # sample of the prompt (with_look); "reference": the reference as it is
    start_look: str = "layout"
