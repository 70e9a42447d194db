"""The apex-minus-onset input: hand-checked values, the tiny root's samples in order,
and what the truth says should move."""
from __future__ import annotations

import numpy as np
import pytest

from merlib.errors import ConfigError
from merlib.training.difference import difference_crops, difference_image


def test_difference_image_by_hand():
    onset = np.array([[10, 200, 50]], np.uint8)
    apex = np.array([[12, 150, 50]], np.uint8)
    # 128 + 4 * 2 = 136; 128 + 4 * (-50) = -72 -> 0; unchanged -> 128.
    assert difference_image(onset, apex).tolist() == [[136, 0, 128]]
    assert difference_image(onset, apex, gain=1).tolist() == [[130, 78, 128]]
    assert difference_image(apex, onset).tolist() == [[120, 255, 128]]


@pytest.mark.parametrize("gain", [0, -1, float("nan"), "4"])
def test_bad_gain_is_refused_by_name(gain):
    with pytest.raises(ConfigError, match="gain: expected a positive number"):
        difference_image(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), gain)


def test_shapes_must_match():
    with pytest.raises(ConfigError, match=r"onset, apex: expected the same shape, got \(2, 2\) and \(3, 3\)"):
        difference_image(np.zeros((2, 2), np.uint8), np.zeros((3, 3), np.uint8))


def test_difference_crops_of_the_tiny_root(synth_root, tmp_path):
    from merlib.data.composite import megc2019_composite
    from merlib.faces.clips import ClipConfig, load_clips
    from merlib.training.crops import CropSet

    table = megc2019_composite(synth_root, allow_missing=True).table
    table = table[table["label"].notna()].reset_index(drop=True).head(6)
    # Apex "crops" in reversed order: the difference set must follow the crop set's order.
    clips = load_clips(table, synth_root, clip_cfg=ClipConfig(size=48), cache_dir=tmp_path)
    meta = table[["dataset", "subject", "sample", "label"]].astype(str).iloc[::-1].reset_index(drop=True)
    crops = CropSet(clips.key_frames[::-1, 1].copy(), meta)
    diff, report = difference_crops(crops, synth_root, size=48, cache_dir=tmp_path)
    assert report.empty and diff.X.shape == (6, 48, 48) and diff.X.dtype == np.uint8
    assert diff.meta[["sample", "label"]].equals(meta[["sample", "label"]])
    expected = difference_image(clips.key_frames[::-1, 0], clips.key_frames[::-1, 1])
    np.testing.assert_array_equal(diff.X, expected)
    # The face cancels: most pixels are near the neutral 128, the expression is not nothing.
    near = np.abs(diff.X.astype(int) - 128) <= 8
    assert near.mean() > 0.8
    assert (np.abs(diff.X.astype(int) - 128) > 16).any(axis=(1, 2)).all()
