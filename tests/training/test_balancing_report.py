"""The pre-processing chapter's balancing table: one training split per set, counts
before and after, the held-out subject of the composite untouched."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.training.balance import balance_training_set, balancing_report


@pytest.fixture
def crops():
    """11 crops filled with their row number + 1 (so origins can be traced).

    composite: s1 = rows 0-3 (neg, neg, neg, pos), s2 = rows 4-6 (neg, pos, sur),
    s3 = row 7 (sur; the smallest subject, held out); macro: rows 8-10 (neg, neg, pos).
    """
    X = np.stack([np.full((8, 8), i + 1, np.uint8) for i in range(11)])
    rows = pd.DataFrame({
        "set": ["composite"] * 8 + ["macro"] * 3,
        "subject": ["s1"] * 4 + ["s2"] * 3 + ["s3"] + ["m1", "m1", "m2"],
    })
    labels = np.array(["neg", "neg", "neg", "pos", "neg", "pos", "sur", "sur", "neg", "neg", "pos"])
    return X, labels, rows


def test_counts_before_and_after_per_split(crops):
    X, labels, rows = crops
    counts, (bal, split) = balancing_report(X, labels, rows, ["composite", "macro"], seed=0)
    fold = "composite, fold without subject s3"
    assert list(counts.index) == [fold, "macro"] and counts.index.name == "split"
    assert counts.dtypes.eq(int).all()
    # s3's one 'sur' crop is held out: the training side has 4 neg, 2 pos, 1 sur.
    assert counts.loc[fold, "before"].to_dict() == {"neg": 4, "pos": 2, "sur": 1}
    assert counts.loc[fold, "after"].to_dict() == {"neg": 4, "pos": 4, "sur": 4}
    # The macro set has no 'sur': 0, not NaN, on both sides.
    assert counts.loc["macro", "before"].to_dict() == {"neg": 2, "pos": 1, "sur": 0}
    assert counts.loc["macro", "after"].to_dict() == {"neg": 2, "pos": 2, "sur": 0}
    # The example is the split with the most new samples: the fold (5 against 1).
    assert split == fold and (bal.op != "").sum() == 5
    assert not np.isin(bal.origin, [7]).any() and np.isin(bal.origin, np.arange(7)).all()


def test_same_call_and_seed_as_balancing_directly(crops):
    X, labels, rows = crops
    _, (bal, _) = balancing_report(X, labels, rows, ["composite"], seed=7)
    direct = balance_training_set(X, labels, np.arange(7), seed=7, test_idx=np.array([7]))
    assert np.array_equal(bal.X, direct.X) and np.array_equal(bal.op, direct.op)
    assert np.array_equal(bal.origin, direct.origin)


def test_single_subject_composite_and_row_labels(crops):
    X, labels, rows = crops
    rows = rows.assign(subject="s1")
    # Index labels other than 0..N-1: positions still index X.
    counts, (bal, split) = balancing_report(X, labels, rows.set_axis(range(100, 111)), ["composite"], seed=0)
    assert split == "composite" and list(counts.index) == ["composite"]
    assert counts.loc["composite", "before"].to_dict() == {"neg": 4, "pos": 2, "sur": 2}
    assert np.isin(bal.origin, np.arange(8)).all()


def test_sets_without_rows_are_skipped_and_none_at_all_raises(crops):
    X, labels, rows = crops
    counts, _ = balancing_report(X, labels, rows, ["macro", "jaffe"], seed=0)
    assert list(counts.index) == ["macro"]
    with pytest.raises(ValueError, match="set_names"):
        balancing_report(X, labels, rows, ["jaffe"], seed=0)
    with pytest.raises(ValueError, match="X, labels, rows"):
        balancing_report(X, labels[:-1], rows, ["macro"], seed=0)
    with pytest.raises(ValueError, match="rows: missing columns \\['subject'\\]"):
        balancing_report(X, labels, rows.drop(columns="subject"), ["macro"], seed=0)
