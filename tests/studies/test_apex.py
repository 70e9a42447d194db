"""The apex finder against SynthME's true apexes."""
from __future__ import annotations

import pytest

from merlib.errors import DataLayoutError
from merlib.studies.apex import validate_on_truth


def test_validated_on_synthme_casme2_clips(synth_root):
    """The issue's bar: >= 90% of CASME II-style clips within +-2 frames of the truth."""
    check = validate_on_truth(synth_root, ["casme2"], max_clips=12, seed=0)
    shares = check.shares()
    print(f"\napex estimator on {synth_root.name}:\n{shares}")
    assert shares.loc["casme2", "clips"] == 12
    assert shares.loc["casme2", "share"] >= 0.9
    assert list(check.clips.columns) == ["dataset", "subject", "sample", "n_frames",
                                         "true_apex", "estimated_apex", "error"]
    # The paper's middle-frame rule is far worse on the same clips: the check has teeth.
    middle = validate_on_truth(synth_root, ["casme2"], method="middle", max_clips=12, seed=0)
    assert middle.shares().loc["casme2", "share"] < shares.loc["casme2", "share"]


def test_validation_needs_the_truth(tmp_path):
    with pytest.raises(DataLayoutError, match="no SYNTHME_truth.csv"):
        validate_on_truth(tmp_path)
