"""The synthetic world the embedded default is trained and measured on (DESIGN §3)."""

from .grammar import (
    BACKGROUNDS,
    COLOURS,
    MOTIONS,
    SHAPES,
    ObjectSpec,
    Scene,
    all_objects,
    heldout_scenes,
    parse_caption,
    sample_scene,
)
from .render import NUM_FRAMES, SINGLE_RADIUS, SIZE, STYLES, Pose, render_along, render_clip

IMAGE_SET_VARIANTS = ("webvid", "laion", "anime", "real", "3d-cartoon")


def variant_style(variant: str) -> str:
    """The renderer style behind an image-set variant (webvid images are video-set frames)."""
    if variant not in IMAGE_SET_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {IMAGE_SET_VARIANTS}")
    return "lq" if variant == "webvid" else variant


__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "IMAGE_SET_VARIANTS",
    "MOTIONS",
    "NUM_FRAMES",
    "SHAPES",
    "SIZE",
    "STYLES",
    "ObjectSpec",
    "Pose",
    "SINGLE_RADIUS",
    "Scene",
    "all_objects",
    "heldout_scenes",
    "parse_caption",
    "render_along",
    "render_clip",
    "sample_scene",
    "variant_style",
]
