"""An annotation's apex cell: used as coded, or replaced by a registered estimator."""
from __future__ import annotations

from pathlib import Path

import pytest

import merlib.data.apex as A
from merlib.data.apex import FLAGS, apex_estimator, apex_from_cell, middle_apex, register_apex_estimator
from merlib.errors import ConfigError

from .conftest import clip_on_disk


def test_apex_from_cell(tmp_path):
    frames = clip_on_disk(tmp_path / "clip", range(96, 110), peak=105)
    assert apex_from_cell(100, 96, 109, frames) == (100, [])
    assert apex_from_cell("100.0", 96, 109, frames) == (100, [])
    assert apex_from_cell("/", 96, 109, frames) == (105, ["apex_uncoded:/", FLAGS["motion"]])
    assert apex_from_cell("", 96, 109, frames)[1][0] == "apex_uncoded:empty"
    assert apex_from_cell(6000, 96, 109, frames) == (
        105, ["apex_outside_clip:6000", "apex_estimated:motion"])
    assert apex_from_cell(12, 96, 109, frames, "middle") == (
        102, ["apex_outside_clip:12", "apex_estimated:middle"])




def test_middle_apex_reads_no_pixels():
    frames = [(n, Path(f"missing{n}.jpg")) for n in range(96, 110)]
    assert middle_apex(frames, 96, 109) == (102, "apex_estimated:middle")
    assert middle_apex(frames, 100, 104) == (102, "apex_estimated:middle")
    assert middle_apex(frames, 500, 600) == (102, "apex_estimated:middle")  # no frame inside: all
    with pytest.raises(ConfigError, match="at least one frame"):
        middle_apex([], 1, 2)


def test_the_motion_estimator_is_injected(monkeypatch):
    """data/ does not import the pre-processing step: it calls whatever is registered."""
    seen = []

    def stand_in(frames, onset, offset):
        seen.append((len(frames), onset, offset))
        return 7, FLAGS["motion"]

    monkeypatch.setitem(A._ESTIMATORS, "motion", stand_in)
    frames = [(n, Path(f"missing{n}.jpg")) for n in range(1, 11)]
    assert apex_from_cell("/", 1, 10, frames) == (7, ["apex_uncoded:/", "apex_estimated:motion"])
    assert seen == [(10, 1, 10)]
    monkeypatch.delitem(A._ESTIMATORS, "motion")
    with pytest.raises(ConfigError, match="no 'motion' estimator is registered"):
        apex_estimator("motion")
    with pytest.raises(ConfigError, match="method: expected one of"):
        register_apex_estimator("nearest", stand_in)
    with pytest.raises(ConfigError, match="estimator: expected a callable"):
        register_apex_estimator("motion", 3)
