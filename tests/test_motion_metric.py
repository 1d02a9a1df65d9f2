"""The motion fidelity metric on constructed tracklets and on rendered clips."""

import numpy as np

from mcm_demo.embedded.world import parse_caption, render_clip
from mcm_demo.metrics.motion_fidelity import motion_fidelity, motion_fidelity_of_clips, track_points


def _line(start, step, frames=8):
    return np.array(start, float) + np.arange(frames)[:, None] * np.array(step, float)


def test_identical_motion_scores_one_and_opposite_scores_low():
    ref = np.stack([_line((10, 10), (2, 0)), _line((30, 20), (2, 0.5))])
    assert motion_fidelity(ref, ref.copy()) > 0.999
    assert motion_fidelity(ref, ref[:, ::-1].copy()) < -0.9  # the same paths run backwards
    perpendicular = np.stack([_line((10, 10), (0, 2)), _line((30, 20), (0, 2))])
    assert abs(motion_fidelity(ref, perpendicular)) < 0.3


def test_static_points_are_guarded():
    still = np.stack([_line((5, 5), (0, 0))] * 3)
    assert motion_fidelity(still, still) == 1.0  # nothing moves in either: agreement, not NaN
    assert motion_fidelity(still, np.stack([_line((5, 5), (1, 0))])) == 0.0
    assert motion_fidelity(still, np.zeros((0, 8, 2))) == 0.0


def test_lucas_kanade_tracks_a_translated_square():
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    for i in range(8):
        frames[i, 20:36, 8 + 3 * i : 24 + 3 * i] = 255
    tracks = track_points(frames)
    assert len(tracks) >= 2
    steps = np.diff(tracks, axis=1).reshape(-1, 2).mean(0)
    assert abs(steps[0] - 3) < 0.5 and abs(steps[1]) < 0.5


def test_rendered_clips_same_motion_beats_opposite():
    left = render_clip(parse_caption("a red square moving left on a black background"), "laion", 1)
    left_other = render_clip(
        parse_caption("a green star moving left on a white background"), "laion", 2
    )
    right = render_clip(
        parse_caption("a green star moving right on a white background"), "laion", 2
    )
    assert motion_fidelity_of_clips(left, left_other) > motion_fidelity_of_clips(left, right) + 0.5
