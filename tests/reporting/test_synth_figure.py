"""The old-beside-new generator figure of the data chapter."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from merlib.provenance import Provenance  # noqa: E402
from merlib.synth import SynthConfig, SynthConfigError, render_samples  # noqa: E402


def _keys(root) -> list[tuple[str, str, str]]:
    comp = pd.read_csv(root / "SYNTHME_composite.csv", dtype=str)
    return [tuple(comp[comp["label"] == label].iloc[0][["dataset", "subject", "sample"]])
            for label in ("negative", "positive")]


def test_render_samples_gives_the_frames_generate_wrote(synth_root):
    """The tiny root was generated with seed 0, 3 micro and 4 macro subjects."""
    import cv2

    from merlib.data.layouts import frame_path

    cfg = SynthConfig(seed=0, micro_subjects=3, macro_subjects=4)
    key = _keys(synth_root)[0]
    frames, clip = render_samples(cfg, [key])[key]
    assert len(frames) == len(clip.record.frames) and clip.label == "negative"
    on_disk = cv2.imread(str(frame_path(key[0], synth_root, clip.record, clip.record.frames[3])),
                         cv2.IMREAD_UNCHANGED)
    # JPEG frames on disk: the decoded file is the written array, re-encoded.
    assert np.abs(on_disk.astype(int) - frames[3].astype(int)).mean() < 2.0
    with pytest.raises(SynthConfigError, match="not a sample"):
        render_samples(cfg, [("casme2", "sub99", "EP99")])


def test_generator_comparison_has_a_column_group_per_generator(synth_root):
    from merlib.reporting.synth import generator_comparison

    keys = _keys(synth_root)
    old = SynthConfig(seed=0, micro_subjects=3, macro_subjects=4)
    new = SynthConfig(seed=0, micro_subjects=3, macro_subjects=4, appearance="facs", au_statistics="real")
    fig = generator_comparison({"old": old, "new": new}, keys, Provenance.for_data(synth_root, seed=0))
    axes = fig.axes
    assert len(axes) == 2 * 6
    assert axes[1].get_title().startswith("old") and axes[4].get_title().startswith("new")
    assert "negative" in axes[0].get_ylabel() and "AU" in axes[1].get_xlabel()
    assert axes[0].images[0].get_array().shape == (128, 128)
    # The difference panels are centred on mid-grey: 128 + gain * (apex - onset).
    assert abs(float(np.median(axes[2].images[0].get_array())) - 128) <= 2
