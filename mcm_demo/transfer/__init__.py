"""Motion transfer from a reference clip onto the few-step sampler (FastVMT-style guidance,
VMC tuning)."""

from .core import METHODS, START_LOOKS, TransferConfig, appearance_invariant_prompt, transfer

__all__ = ["METHODS", "START_LOOKS", "TransferConfig", "appearance_invariant_prompt", "transfer"]
