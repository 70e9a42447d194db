"""Spotting at a clip's ends (the MJPG first-frame case is in test_end_to_end.py)."""
from __future__ import annotations

import numpy as np

from merlib.faces.apex import SpotConfig, spot


def _clip(n: int, moved: list[int]) -> np.ndarray:
    """n still motion crops; the frames in ``moved`` carry a local change (a mouth corner)."""
    crops = np.zeros((n, 64, 64), np.float32)
    for i in moved:
        crops[i, 40:52, 20:32] += 30.0
    return crops


def test_a_movement_inside_the_clip_is_still_spotted() -> None:
    intervals, _ = spot(_clip(120, list(range(55, 66))), 60.0)
    assert len(intervals) == 1 and 55 <= intervals[0].apex <= 65
    # A tight clip (a dataset's onset..offset folder): the margin stays below k.
    cfg = SpotConfig()
    intervals, _ = spot(_clip(29, list(range(10, 18))), 30.0, cfg)
    assert len(intervals) == 1 and 10 <= intervals[0].apex <= 17


def test_a_movement_longer_than_the_half_window_gives_one_interval() -> None:
    """Rise over 10 frames, fall over 18 (28 frames, k = 15 at 60 fps, as a SynthME clip):
    the mean-of-ends signal alone also peaks where one end sits on the apex and the frame
    is neutral; the three-way minimum does not."""
    n, onset, apex, offset = 230, 100, 110, 128
    weight = np.interp(np.arange(n), [onset, apex, offset], [0.0, 1.0, 0.0], left=0.0, right=0.0)
    crops = np.zeros((n, 64, 64), np.float32)
    crops[:, 40:52, 20:32] = 20.0 * weight[:, None, None]
    intervals, signal = spot(crops, 60.0)
    assert [(iv.apex - 2 <= apex <= iv.apex + 2, iv.start <= apex <= iv.end) for iv in intervals] == [(True, True)]
    # Neutral frames (outside onset..offset) score under a tenth of the apex.
    outside = np.r_[0:onset, offset + 1:n]
    assert signal[outside].max() < 0.1 * signal.max()
