"""The embedded default: the teacher's components and the synthetic world it is trained on."""

from .config import TEACHER_SIZES, TeacherConfig, build_noise_schedule, build_unet, build_vae
from .text import build_text_encoder, build_tokenizer
from .unet import UNet3DWithFramePositions

__all__ = [
    "TEACHER_SIZES",
    "TeacherConfig",
    "UNet3DWithFramePositions",
    "build_noise_schedule",
    "build_text_encoder",
    "build_tokenizer",
    "build_unet",
    "build_vae",
]
