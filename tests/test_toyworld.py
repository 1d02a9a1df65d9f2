import random

import numpy as np
import pytest

from mcm_demo.embedded.world import (
    IMAGE_SET_VARIANTS,
    STYLES,
    Scene,
    all_objects,
    heldout_scenes,
    parse_caption,
    render_clip,
    sample_scene,
    variant_style,
)
from mcm_demo.embedded.world.render import watermark_mask


def test_render_is_deterministic_per_seed():
    scene = sample_scene(random.Random(3))
    for style in STYLES:
        a, b = render_clip(scene, style, seed=5), render_clip(scene, style, seed=5)
        assert a.shape == (8, 64, 64, 3) and a.dtype == np.uint8
        assert np.array_equal(a, b)
    assert not np.array_equal(render_clip(scene, "laion", 5), render_clip(scene, "laion", 6))


def test_styles_share_the_scene_layout():
    """The same scene and seed put objects at the same place in every style."""
    scene = Scene("black", (sample_scene(random.Random(0)).objects[0],))
    masks = [
        (np.abs(render_clip(scene, s, 1).astype(int) - 15).max(-1) > 60) for s in ("laion", "anime")
    ]
    overlap = (masks[0] & masks[1]).sum() / masks[1].sum()  # anime's ink outline is not counted
    assert overlap > 0.9


def test_objects_move_as_captioned():
    scene = parse_caption("a red square moving left on a black background")
    clip = render_clip(scene, "laion", seed=0).astype(int)
    xs = [np.nonzero((f[..., 0] > 150) & (f[..., 1] < 100))[1].mean() for f in clip]
    assert all(b < a for a, b in zip(xs, xs[1:]))
    assert xs[0] - xs[-1] > 20


def test_low_quality_set_carries_the_watermark_and_clean_sets_do_not():
    scene = parse_caption("a blue circle moving up on a black background")
    mask = watermark_mask() > 0.5
    lq = render_clip(scene, "lq", 0).astype(float).mean(-1)
    clean = render_clip(scene, "laion", 0).astype(float).mean(-1)
    assert lq[:, mask].mean() > clean[:, mask].mean() + 40


def test_heldout_split_is_disjoint_and_every_attribute_still_trains():
    train, held = set(all_objects("train")), set(all_objects("heldout"))
    assert train.isdisjoint(held) and len(held) > 20
    for attr in ("shape", "colour", "motion"):
        assert {getattr(o, attr) for o in held} <= {getattr(o, attr) for o in train}
    for s in heldout_scenes(50):
        assert all(o in held for o in s.objects)


def test_captions_parse_back():
    rng = random.Random(1)
    for _ in range(100):
        scene = sample_scene(rng, "all")
        assert parse_caption(scene.caption) == scene
    assert parse_caption("a photo of a cat") is None


def test_variants_map_to_styles():
    assert [variant_style(v) for v in IMAGE_SET_VARIANTS] == [
        "lq",
        "laion",
        "anime",
        "real",
        "3d-cartoon",
    ]
    with pytest.raises(ValueError):
        variant_style("oil-painting")
