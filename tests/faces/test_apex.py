"""The apex finder (pre-processing): in memory, from files, and on annotated clips."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from merlib.faces.apex import ApexEstimate, clip_apex, estimate_apex, estimate_clip_apex
from merlib.errors import ConfigError

from tests.data.conftest import clip_on_disk, moving_frames


@pytest.mark.parametrize("n, peak", [(20, 9), (28, 8), (16, 12), (5, 2)])
def test_finds_the_peak_of_a_drifting_noisy_clip(n, peak):
    est = estimate_apex(moving_frames(n, peak, seed=n), box=None)
    assert isinstance(est, ApexEstimate)
    assert abs(est.index - peak) <= 1 and est.method == "motion" and est.box is None
    assert est.scores.shape == (n,) and est.scores[0] == 0.0
    assert est.flag == "apex_estimated:motion"


def test_files_and_arrays_give_the_same_estimate(tmp_path):
    frames = moving_frames(12, 7)
    paths = []
    for i, image in enumerate(frames):
        paths.append(tmp_path / f"img{i + 40}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))  # colour on disk
    from_files = estimate_apex(paths, box=None, frame_numbers=range(40, 52))
    from_memory = estimate_apex(np.stack(frames), box=None)
    assert (from_files.index, from_files.frame) == (from_memory.index, 47)
    np.testing.assert_allclose(from_files.scores, from_memory.scores, atol=1e-6)


def test_onset_index_and_frames_before_it():
    frames = [moving_frames(3, 1)[0]] * 4 + moving_frames(12, 6)
    est = estimate_apex(frames, onset_index=4, box=None)
    assert est.index == 10
    assert np.isnan(est.scores[:4]).all() and est.scores[4] == 0.0


def test_middle_method_and_a_still_clip():
    frames = moving_frames(9, 6)
    middle = estimate_apex(frames, method="middle", frame_numbers=range(100, 109))
    assert (middle.index, middle.frame, middle.flag) == (4, 104, "apex_estimated:middle")
    assert np.isnan(middle.scores).all()
    still = estimate_apex([frames[0]] * 7, box=None)
    # Nothing moves: no peak to find, so the middle frame, and the estimate says so.
    assert (still.index, still.method) == (3, "middle")


def test_face_box_is_detected_on_the_onset_frame(synth_root):
    clip = sorted((synth_root / "SAMM").glob("*/*/"))[0]
    frames = sorted(clip.glob("*.jpg"))[:6]
    est = estimate_apex(frames)
    assert est.box is not None
    x1, y1, x2, y2 = est.box
    assert 0 <= x1 < x2 and 0 <= y1 < y2 and (x2 - x1) > 60  # a face, not a sliver


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "peak"}, r"method: expected one of \['motion', 'middle'\], got 'peak'"),
    ({"onset_index": 5}, r"onset_index: expected an integer in 0\.\.4, got 5"),
    ({"frame_numbers": [1, 2]}, r"frame_numbers: expected 5 numbers"),
    ({"box": "face"}, r"box: expected 'detect'"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        estimate_apex(moving_frames(5, 2), **kwargs)


def test_bad_frames_are_named():
    frames = moving_frames(4, 2)
    with pytest.raises(ConfigError, match=r"frames\[2\]: size \(32, 32\) differs"):
        estimate_apex(frames[:2] + [frames[2][:32, :32]], box=None)
    with pytest.raises(ConfigError, match=r"frames\[0\]: expected uint8"):
        estimate_apex([f.astype(np.float32) for f in frames], box=None)
    with pytest.raises(ConfigError, match="at least one frame"):
        estimate_apex([])


def test_clip_estimate_uses_only_frames_within_onset_offset(tmp_path):
    frames = clip_on_disk(tmp_path / "clip", range(1, 21), peak=15)
    assert estimate_clip_apex(frames, 1, 20).frame == 15
    # The coded range ends before the true peak: the estimate stays inside it.
    assert estimate_clip_apex(frames, 1, 10).frame == 10
    # A range that misses every file: all frames are used.
    assert estimate_clip_apex(frames, 50, 60).frame == 15




def test_clip_apex_is_the_readers_motion_estimator(tmp_path):
    from merlib.data.apex import apex_estimator

    frames = clip_on_disk(tmp_path / "clip", range(1, 21), peak=15)
    assert clip_apex(frames, 1, 20) == (15, "apex_estimated:motion")
    # Wired in by the package root: the readers' "motion" is this function's answer.
    assert apex_estimator("motion")(frames, 1, 20) == (15, "apex_estimated:motion")
