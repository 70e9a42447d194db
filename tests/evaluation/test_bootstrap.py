"""Subject bootstrap: hand-enumerable resamples, exact limits, agreement with metrics."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.evaluation.bootstrap import (bootstrap_scores, bootstrap_table, format_interval,
                                         interval_columns, paired_difference, paired_table,
                                         resample_weights, scores_from_counts, subject_counts)
from merlib.evaluation.metrics import metrics_table

N, P, S = LABELS


def test_subject_counts_are_per_subject_confusions():
    subjects, counts = subject_counts([N, P, P, S], [N, N, P, S], ["b/2", "a/1", "a/1", "b/2"])
    assert subjects.tolist() == ["a/1", "b/2"]
    # a/1: positive->negative once, positive->positive once; b/2: two correct.
    assert counts[0].tolist() == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert counts[1].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]


def test_scores_from_counts_match_the_hand_example_of_test_metrics():
    hand = np.array([[5, 1, 2], [1, 3, 0], [1, 1, 2]])
    s = scores_from_counts(hand)
    assert s["uf1"] == pytest.approx(11 / 18)
    assert s["uar"] == pytest.approx(0.625)
    assert s["accuracy"] == pytest.approx(10 / 16)
    # A class never true and never predicted scores 0, as scikit-learn's zero_division=0.
    assert scores_from_counts(np.diag([2, 2, 0]))["uf1"] == pytest.approx(2 / 3)


def test_two_subjects_every_resample_enumerated():
    # Subject a: 2 samples, both right. Subject b: 2 samples, both wrong.
    # Resamples of 2 subjects: {a,a} p=1/4, {a,b} p=1/2, {b,b} p=1/4.
    #   {a,a}: negative and positive each 2/2 right -> UF1 = (1 + 1 + 0) / 3 = 2/3, accuracy 1
    #   {b,b}: nothing right -> UF1 0, accuracy 0
    #   {a,b}: negative: TP 1 (a), FN 1 (b's, called positive), FP 1 (b's positive)
    #          -> F1 = 2 / (2 + 1 + 1) = 1/2; positive the same; surprise 0
    #          => UF1 = 1/3, accuracy 1/2 (the observed data is this resample)
    y = [N, P, N, P]
    pred = [N, P, P, N]       # b's negative predicted positive and vice versa
    groups = ["x/a", "x/a", "x/b", "x/b"]
    w = resample_weights(["x", "x"], 4000, seed=1)
    assert set(map(tuple, w.tolist())) == {(2, 0), (1, 1), (0, 2)}
    share = {k: np.mean([tuple(r) == k for r in w.tolist()]) for k in [(2, 0), (1, 1), (0, 2)]}
    assert share[(1, 1)] == pytest.approx(0.5, abs=0.03)
    assert share[(2, 0)] == pytest.approx(0.25, abs=0.03)
    r = bootstrap_scores(y, pred, groups, n_resamples=4000, seed=1)
    assert r["uf1"] == pytest.approx((1 / 3, 0.0, 2 / 3))
    assert r["accuracy"] == pytest.approx((0.5, 0.0, 1.0))


def test_perfect_predictions_give_a_degenerate_interval():
    rng = np.random.default_rng(0)
    y = rng.choice(LABELS, 60)
    groups = [f"casme2/s{i % 7}" for i in range(60)]
    r = bootstrap_scores(y, y, groups)
    assert r == {"uf1": (1.0, 1.0, 1.0), "uar": (1.0, 1.0, 1.0), "accuracy": (1.0, 1.0, 1.0)}


def _table(n_subjects: int = 24, per: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        ds = ("casme2", "samm", "smic")[s % 3]
        for k in range(per):
            y = LABELS[rng.integers(3)]
            rows.append({"dataset": ds, "subject": f"s{s:02d}", "label": y,
                         "pred_good": y if rng.random() < 0.7 else LABELS[rng.integers(3)],
                         "pred_bad": LABELS[rng.integers(3)]})
    return pd.DataFrame(rows)


def test_seeded_result_is_fixed_and_seed_matters():
    t = _table()
    a = bootstrap_table(t, seed=3)
    b = bootstrap_table(t, seed=3)
    c = bootstrap_table(t, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["uf1_lo"], c["uf1_lo"])


def test_table_points_equal_metrics_table_and_intervals_bracket_them():
    t = _table()
    boot = bootstrap_table(t, ["pred_good", "pred_bad"])
    ref = metrics_table(t, ["pred_good", "pred_bad"])
    assert boot["part"].tolist() == ref["part"].tolist() == ["composite", "smic", "casme2", "samm"] * 2
    assert boot["classifier"].tolist()[:4] == ["good"] * 4
    for m in ("uf1", "uar", "accuracy"):
        np.testing.assert_allclose(boot[m], ref[m], atol=1e-12)
        assert (boot[f"{m}_lo"] <= boot[m] + 1e-12).all() and (boot[m] <= boot[f"{m}_hi"] + 1e-12).all()
    assert boot["n"].tolist() == ref["n"].tolist()
    assert boot.loc[boot["part"] == "composite", "n_subjects"].tolist() == [24, 24]
    assert boot.loc[boot["part"] == "smic", "n_subjects"].tolist() == [8, 8]
    good = boot[(boot["classifier"] == "good") & (boot["part"] == "composite")].iloc[0]
    assert good["uf1_hi"] - good["uf1_lo"] > 0.05


def test_paired_difference_of_identical_columns_is_exactly_zero():
    t = _table()
    d = paired_difference(t["label"], t["pred_good"], t["pred_good"],
                          t["dataset"] + "/" + t["subject"])
    assert d == {m: (0.0, 0.0, 0.0) for m in ("uf1", "uar", "accuracy")}
    table = paired_table(t.assign(pred_copy=t["pred_good"]), "pred_good")
    same = table[table["classifier"] == "copy"]
    assert (same[["d_uf1", "d_uf1_lo", "d_uf1_hi"]].to_numpy() == 0).all()


def test_paired_difference_is_the_point_difference_and_excludes_zero_when_clear():
    t = _table()
    d = paired_table(t, "pred_bad", ["pred_good"])
    comp = d[d["part"] == "composite"].iloc[0]
    ref = metrics_table(t, ["pred_good", "pred_bad"]).set_index(["classifier", "part"])
    assert comp["d_uf1"] == pytest.approx(ref.loc[("pred_good", "composite"), "uf1"]
                                          - ref.loc[("pred_bad", "composite"), "uf1"])
    assert comp["d_uf1_lo"] > 0   # 70% right against guessing, over 144 samples


def test_formatting():
    assert format_interval(0.41234, 0.3051, 0.5249) == "0.412 [0.31, 0.52]"
    assert format_interval(0.021, -0.05, 0.09, signed=True) == "+0.021 [-0.05, +0.09]"
    boot = bootstrap_table(_table(), ["pred_good"])
    text = interval_columns(boot)
    assert list(text.columns) == ["classifier", "part", "n", "n_subjects", "uf1", "uar", "accuracy"]
    assert text["uf1"].str.fullmatch(r"0\.\d{3} \[0\.\d\d, [01]\.\d\d\]").all()


def test_bad_input_names_the_problem():
    with pytest.raises(ConfigError, match="y_pred: row 1: 'happy'"):
        bootstrap_scores([N, P], [N, "happy"], ["a/1", "a/2"])
    with pytest.raises(ConfigError, match="n_resamples"):
        bootstrap_scores([N, P], [N, P], ["a/1", "a/2"], n_resamples=0)
    with pytest.raises(ConfigError, match="level"):
        bootstrap_scores([N, P], [N, P], ["a/1", "a/2"], level=95)
    with pytest.raises(ConfigError, match=r"missing columns \['subject'\]"):
        bootstrap_table(pd.DataFrame({"dataset": ["a"], "label": [N], "pred_x": [N]}))
    with pytest.raises(ConfigError, match="more than one stratum"):
        bootstrap_scores([N, P], [N, P], ["s", "s"], strata=["a", "b"])
