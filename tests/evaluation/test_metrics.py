"""UF1 / UAR / accuracy against a confusion matrix written and scored by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.evaluation.metrics import (accuracy, confusion, metrics_table, scores, uar_score,
                                       uf1_score)

# Rows: true class, columns: predicted class, order negative, positive, surprise.
HAND = np.array([[5, 1, 2],
                 [1, 3, 0],
                 [1, 1, 2]])


def _from_matrix(m: np.ndarray) -> tuple[list[str], list[str]]:
    t, p = [], []
    for i, row in enumerate(m):
        for j, n in enumerate(row):
            t += [LABELS[i]] * int(n)
            p += [LABELS[j]] * int(n)
    return t, p


def test_scores_match_hand_computation():
    t, p = _from_matrix(HAND)
    # TP = 5, 3, 2; FP (column sums - TP) = 2, 2, 2; FN (row sums - TP) = 3, 1, 2.
    # F1 = 2TP / (2TP + FP + FN) = 10/15, 6/9, 4/8  ->  UF1 = (2/3 + 2/3 + 1/2) / 3 = 11/18
    # recall = 5/8, 3/4, 2/4  ->  UAR = 1.875 / 3 = 0.625; accuracy = 10/16
    assert uf1_score(t, p) == pytest.approx(11 / 18)
    assert uar_score(t, p) == pytest.approx(0.625)
    assert accuracy(t, p) == pytest.approx(10 / 16)
    assert (confusion(t, p).to_numpy() == HAND).all()
    codes = [LABELS.index(x) for x in t], [LABELS.index(x) for x in p]
    assert scores(*codes) == scores(t, p) | {"n": 16}


def test_a_class_missing_from_a_fold_still_counts():
    # Only negatives and positives present: surprise scores 0 and still divides by 3.
    t = ["negative", "negative", "positive"]
    p = ["negative", "positive", "positive"]
    # F1: neg 2/3, pos 2/3, sur 0 -> 4/9; recall: 1/2, 1, 0 -> 1/2
    assert uf1_score(t, p) == pytest.approx(4 / 9)
    assert uar_score(t, p) == pytest.approx(0.5)


def test_table_pools_predictions_and_scores_each_part():
    t, p = _from_matrix(HAND)
    df = pd.DataFrame({"dataset": ["casme2"] * 8 + ["samm"] * 8, "label": t, "pred": p})
    table = metrics_table(df).set_index("part")
    assert list(table.index) == ["composite", "casme2", "samm"]
    assert table.loc["composite", "uf1"] == pytest.approx(11 / 18)
    for part in ("casme2", "samm"):
        sel = df[df["dataset"] == part]
        assert table.loc[part, "uar"] == pytest.approx(uar_score(sel["label"], sel["pred"]))
    # Pooled UF1 is not the mean of the parts' UF1.
    assert table.loc["composite", "uf1"] != pytest.approx(table.loc[["casme2", "samm"], "uf1"].mean())
    # Every row says over how many samples it holds.
    assert table["n"].to_dict() == {"composite": 16, "casme2": 8, "samm": 8}


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match=r"y_pred: 'happy' is not one of"):
        uf1_score(["negative"], ["happy"])
    with pytest.raises(ValueError, match=r"y_pred: expected 2 predictions"):
        uf1_score(["negative", "positive"], ["negative"])
