"""Pooled confusion matrices and per-class reports, on a hand-checkable table."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from merlib.errors import ConfigError
from merlib.reporting.confusion import (class_report, class_reports, confusion_figure, parts_of,
                                        pooled_confusion)
from merlib.provenance import Provenance


@pytest.fixture()
def preds() -> pd.DataFrame:
    # casme2: 4 rows, samm: 3 rows; nobody predicts "surprise" in samm.
    return pd.DataFrame({
        "dataset": ["casme2"] * 4 + ["samm"] * 3,
        "subject": ["a", "a", "b", "b", "c", "c", "d"],
        "label": ["negative", "positive", "surprise", "negative", "negative", "surprise", "positive"],
        "pred_svm": ["negative", "negative", "surprise", "positive", "negative", "negative", "positive"],
        "pred_softmax": ["negative"] * 7,
    })


def test_counts_by_hand(preds):
    m = pooled_confusion(preds, "pred_svm")
    assert m.index.tolist() == ["negative", "positive", "surprise"]
    assert m.columns.tolist() == ["negative", "positive", "surprise"]
    np.testing.assert_array_equal(m.to_numpy(), [[2, 1, 0], [1, 1, 0], [1, 0, 1]])
    samm = pooled_confusion(preds, "pred_svm", "samm")
    np.testing.assert_array_equal(samm.to_numpy(), [[1, 0, 0], [0, 1, 0], [1, 0, 0]])


def test_row_normalised_rows_sum_to_one_and_empty_class_is_nan(preds):
    m = pooled_confusion(preds, "pred_svm", normalize=True)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    assert m.loc["negative", "negative"] == pytest.approx(2 / 3)
    only_neg = preds[preds["label"] == "negative"]
    partial = pooled_confusion(only_neg, "pred_svm", normalize=True)
    assert partial.loc["positive"].isna().all()        # no true positive sample: NaN, not 0


def test_class_report_matches_the_counts(preds):
    r = class_report(preds, "pred_svm")
    # negative: TP 2, FP 2 (positive->neg, surprise->neg), FN 1.
    assert r.loc["negative", "precision"] == pytest.approx(0.5)
    assert r.loc["negative", "recall"] == pytest.approx(2 / 3)
    assert r.loc["surprise", "precision"] == pytest.approx(1.0)
    assert r["support"].tolist()[:3] == [3, 2, 2]
    soft = class_report(preds, "pred_softmax")
    assert soft.loc["positive", "precision"] == 0.0     # never predicted: zero_division=0
    f1 = r.loc[["negative", "positive", "surprise"], "f1-score"].mean()
    assert r.loc["macro avg", "f1-score"] == pytest.approx(f1)


def test_stacked_reports_and_parts(preds):
    assert parts_of(preds) == ["composite", "casme2", "samm"]
    table = class_reports(preds, ["pred_svm", "pred_softmax"])
    assert table.index.names == ["classifier", "part", "class"]
    assert len(table) == 2 * 3 * 5


def test_bad_input_names_the_problem(preds):
    with pytest.raises(ConfigError, match=r"missing columns \['pred_x'\]"):
        pooled_confusion(preds, "pred_x")
    with pytest.raises(ConfigError, match="no sample of 'smic'"):
        pooled_confusion(preds, "pred_svm", "smic")


def test_figure_is_stamped_simulated(preds):
    prov = Provenance("SIMULATED (SynthME, seed 0)", "abc", "merlib test")
    fig = confusion_figure(preds, "pred_svm", prov)
    assert len(fig.axes) == 6
    assert fig._suptitle.get_text().startswith("SIMULATED DATA")
    assert any("fingerprint abc" in t.get_text() for t in fig.texts)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:3] == ["2", "1", "0"]
