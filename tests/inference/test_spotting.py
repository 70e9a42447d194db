"""Spotting at a clip's ends (the MJPG first-frame case is in test_end_to_end.py)."""
from __future__ import annotations

import numpy as np

from merlib.inference.spotting import SpotConfig, spot


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
