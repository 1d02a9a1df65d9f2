"""The watermark-ghost and outline measures read what the eye sees: clean renders of every
style read clean and right, a faint stamp or a blunted star does not."""

import cv2
import numpy as np
import pytest

from mcm_demo.embedded.world.grammar import SHAPES, ObjectSpec, Scene, heldout_scenes
from mcm_demo.embedded.world.render import STYLES, render_clip, watermark_mask
from mcm_demo.metrics.cleanliness import (
    GHOST_THRESHOLD,
    object_masks,
    outline_reading,
    score_cleanliness,
    watermark_ghost,
)

SCENES = heldout_scenes(24, seed=5)


def _renders(style: str, scenes=SCENES) -> np.ndarray:
    return np.stack([render_clip(s, style, 100 + i) for i, s in enumerate(scenes)])


@pytest.mark.parametrize("style", [s for s in STYLES if s != "lq"])
def test_clean_renders_read_clean_and_the_right_shape(style):
    summary = score_cleanliness(_renders(style), SCENES).summary()
    assert summary["outline"] == 1.0, summary
    # the pipeline's float frames read as their uint8 rendering does
    as_float = score_cleanliness(_renders(style).astype(np.float32) / 255, SCENES).summary()
    assert as_float["outline"] == 1.0 and as_float["ghost"] == pytest.approx(
        summary["ghost"], abs=0.5
    )
    assert summary["ghost_share"] <= 1 / 12, summary  # the 'real' texture's noise, at most


def test_the_stamp_reads_on_dark_backgrounds_even_when_faint():
    scene = Scene("black", (ObjectSpec("triangle", "green", "right"),))
    clean = render_clip(scene, "laion", 3)
    stamp = watermark_mask()[None, ..., None]
    for strength, expect_above in ((0.5, True), (0.1, True), (0.0, False)):
        # the low-quality set's stamp blends towards white at 0.5; a ghost is a weaker blend
        clip = (clean * (1 - strength * stamp) + 255 * strength * stamp).astype(np.uint8)
        masks = object_masks(clip, "green", "black")
        assert (watermark_ghost(clip, masks) > GHOST_THRESHOLD) == expect_above, strength


def test_a_stamp_hidden_by_the_object_is_not_read():
    """A frame where the object covers the stamp says nothing (NaN), rather than 'clean'."""
    clip = np.zeros((2, 64, 64, 3), np.uint8)
    clip[:] = (220, 40, 40)  # a red object over the whole frame
    assert np.isnan(watermark_ghost(clip, object_masks(clip, "red", "black")))


def test_every_shape_reads_itself_and_a_blunted_star_does_not():
    for shape in SHAPES:
        scene = Scene("gray", (ObjectSpec(shape, "yellow", "growing"),))
        clip = render_clip(scene, "laion", 0)
        for mask in object_masks(clip, "yellow", "gray"):
            assert outline_reading(mask).shape == shape
    # a star whose points are rounded off: what an over-smoothed student draws
    star = render_clip(Scene("gray", (ObjectSpec("star", "yellow", "left"),)), "laion", 0)
    mask = object_masks(star, "yellow", "gray")[0].astype(np.uint8)
    blunt = cv2.morphologyEx(
        mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    )
    reading = outline_reading(blunt.astype(bool))
    assert (
        reading.shape != "star"
        and reading.iou["star"] < outline_reading(mask.astype(bool)).iou["star"]
    )
    assert outline_reading(np.zeros((64, 64), bool)).shape is None  # nothing drawn: no shape


def test_the_low_quality_set_reads_its_stamp_and_blurs_its_crosses():
    scenes = [s for s in heldout_scenes(48, seed=9) if s.background != "white"][:16]
    lq = score_cleanliness(_renders("lq", scenes), scenes)
    assert np.nanmean(lq.ghost) > 4 * GHOST_THRESHOLD
    assert lq.summary()["ghost_share"] >= 0.9
