"""Results tables: method and references with intervals, n per part, readable numbers."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.evaluation.metrics import metrics_table
from merlib.evaluation.splits import loso_folds
from merlib.reporting.results import (differences_wide, format_number, format_table, intervals_wide, styled,
                                      with_references)
from merlib.training.crops import synthetic_crop_set


@pytest.fixture(scope="module")
def run():
    """A crop set and a fake LOSO run on it: SVM head right 80% of the time, softmax guessing."""
    crops = synthetic_crop_set(n_subjects=6, per_subject=9, size=32, seed=2)
    rng = np.random.default_rng(0)
    preds = crops.meta[["dataset", "subject", "sample", "label"]].astype(str).copy()
    fold = np.empty(len(crops), int)
    for f in loso_folds(crops.groups):
        fold[f.test_idx] = f.index
    preds["fold"] = fold
    preds["pred_svm"] = [y if rng.random() < 0.8 else LABELS[rng.integers(3)] for y in preds["label"]]
    preds["pred_softmax"] = rng.choice(LABELS, len(preds))
    return crops, SimpleNamespace(predictions=preds)


def test_method_rows_and_majority_with_intervals(run):
    _, result = run
    table = with_references(result)
    assert table["classifier"].unique().tolist() == ["svm", "softmax", "majority"]
    assert table.loc[table["classifier"] == "majority", "kind"].unique().tolist() == ["reference"]
    assert table.loc[table["classifier"] == "svm", "label"].iloc[0] == "method, SVM head"
    ref = metrics_table(result.predictions, ["pred_svm"])
    comp = table[(table["classifier"] == "svm")].reset_index(drop=True)
    np.testing.assert_allclose(comp["uf1"], ref["uf1"])
    assert comp["n"].tolist() == ref["n"].tolist()
    assert (comp["uf1_lo"] <= comp["uf1"]).all() and (comp["uf1"] <= comp["uf1_hi"]).all()


def test_pixel_and_hog_references_on_the_same_folds(run, tmp_path):
    crops, result = run
    table = with_references(result, crops, references=("majority", "pixels_lr", "hog_svm"),
                            cache_dir=tmp_path)
    assert table["classifier"].unique().tolist() == ["svm", "softmax", "majority", "pixels_lr", "hog_svm"]
    assert len(list(tmp_path.glob("*.csv"))) == 2          # one cached table per computed reference
    again = with_references(result, crops, references=("majority", "pixels_lr", "hog_svm"),
                            cache_dir=tmp_path)
    pd.testing.assert_frame_equal(table, again)


def test_references_need_the_runs_crops(run):
    crops, result = run
    with pytest.raises(ConfigError, match="crops: the references"):
        with_references(result, references=("pixels_lr",))
    with pytest.raises(ConfigError, match="not the run's predictions in the same order"):
        with_references(result, crops.subset(np.arange(len(crops))[::-1]), references=("hog_svm",))


def test_wide_table_has_n_per_part_and_interval_text(run):
    _, result = run
    wide = intervals_wide(with_references(result))
    assert list(wide.index) == ["method, SVM head", "method, softmax head", "majority class"]
    parts = list(dict.fromkeys(wide.columns.get_level_values(0)))
    assert parts[0] == "composite"
    for part in parts:
        assert (part, "n") in wide.columns
    n = result.predictions["dataset"].value_counts()
    assert wide[("composite", "n")].tolist() == [str(len(result.predictions))] * 3
    assert wide[("smic", "n")].iloc[0] == str(n["smic"])
    assert wide[("composite", "uf1")].str.fullmatch(r"0\.\d{3} \[0\.\d\d, [01]\.\d\d\]").all()


def test_numbers_for_reading():
    assert format_number(0.0003) == "3e-04"
    assert format_number(0.00035) == "3.5e-04"
    assert format_number(0.007, scientific=True) == "7e-03"
    assert format_number(0.41234) == "0.412"
    assert format_number(0.41234, 4) == "0.4123"
    assert format_number(32) == "32" and format_number(np.int64(5)) == "5"
    assert format_number(float("nan")) == "" and format_number("svm") == "svm"
    chosen = pd.DataFrame({"fold": [0, 1], "batch_size": [32, 64], "lr": [0.0003, 0.007],
                           "uf1": [0.41234, 0.5]})
    text = format_table(chosen)
    assert text["lr"].tolist() == ["3e-04", "7e-03"]
    assert text["uf1"].tolist() == ["0.412", "0.500"]
    assert text["batch_size"].tolist() == ["32", "64"]
    with pytest.raises(ConfigError, match="decimals"):
        format_table(chosen, 9)


def test_styled_carries_the_simulated_label(run):
    from merlib.provenance import Provenance

    prov = Provenance("SIMULATED (SynthME, seed 0)", "abc", "v0", {})
    html = styled(pd.DataFrame({"lr": [0.0003]}), prov, "Chosen settings").to_html()
    assert "SIMULATED DATA" in html and "3e-04" in html


def test_variant_columns_are_method_rows_and_differences_are_signed(run):
    from merlib.evaluation.bootstrap import paired_table

    _, result = run
    preds = result.predictions.rename(columns={"pred_svm": "pred_full", "pred_softmax": "pred_no_svm"})
    table = with_references(preds, method_columns=("pred_full", "pred_no_svm"))
    assert table.set_index("classifier").loc[["full", "no_svm", "majority"], "kind"].drop_duplicates().tolist() \
        == ["method", "reference"]
    paired = paired_table(preds, "pred_full", ["pred_no_svm"])
    wide = differences_wide(paired, labels={"no_svm": "no SVM", "full": "full method"})
    assert list(wide.index) == ["no SVM"]
    assert wide[("composite", "vs")].iloc[0] == "full method"
    d = paired[paired["part"] == "composite"].iloc[0]
    assert wide[("composite", "Δuf1")].iloc[0] == (f"{d['d_uf1']:+.3f} [{d['d_uf1_lo']:+.2f}, "
                                                   f"{d['d_uf1_hi']:+.2f}]")
    assert d["d_uf1"] < 0                              # guessing is worse than 80 % right
    with pytest.raises(ConfigError, match="metrics"):
        differences_wide(paired, ("f2",))


def test_sample_accounting_counts_evaluated_and_excluded_per_part():
    from merlib.reporting.results import sample_accounting

    preds = pd.DataFrame({"dataset": ["casme2"] * 3 + ["samm"] * 2, "label": ["negative"] * 5})
    excluded = pd.DataFrame({"dataset": ["samm", "smic"], "status": ["failed", "failed"],
                             "reason": ["flat crop", "truncated JPEG"]})
    table = sample_accounting(SimpleNamespace(predictions=preds, excluded=excluded))
    assert table.loc["casme2", ["in this root", "excluded", "evaluated"]].tolist() == [3, 0, 3]
    assert table.loc["samm", ["in this root", "excluded", "evaluated"]].tolist() == [3, 1, 2]
    assert table.loc["smic", ["in this root", "excluded", "evaluated"]].tolist() == [1, 1, 0]
    assert table.loc["composite", ["in this root", "excluded", "evaluated", "listed"]].tolist() == [7, 2, 5, 442]
    unknown = sample_accounting(SimpleNamespace(predictions=preds, excluded=None))
    assert unknown["excluded"].isna().all() and unknown.loc["composite", "evaluated"] == 5
