"""Motion transfer from a reference clip (VMC tuning, FastVMT-style guidance) and the motion
fidelity metric that scores it."""
from .fidelity import motion_fidelity, motion_fidelity_of_clips, track_points

__all__ = ["motion_fidelity", "motion_fidelity_of_clips", "track_points"]
