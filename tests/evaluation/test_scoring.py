"""Scoring a predictions file on the MEGC2019 composite: reading, matching, issues, scores,
paired differences, and the packaged published logs checked against their papers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.data.composite import load_composite_list
from merlib.errors import BrokenFileError, ConfigError
from merlib.evaluation.scoring import (ISSUES, check_wide, compare_published, issue_lines, match_composite,
                                       paired_scores, paired_wide, parse_label_map, read_predictions,
                                       score_predictions, scores_text)
from merlib.scores import scores

LISTED = load_composite_list()
KEY = ["dataset", "subject", "sample"]


def _pick(dataset: str, label: str, k: int = 0) -> dict[str, str]:
    rows = LISTED[(LISTED["dataset"] == dataset) & (LISTED["label"] == label)]
    return {c: str(rows.iloc[k][c]) for c in KEY}


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reading

def test_label_map_parses_and_names_what_is_wrong():
    assert parse_label_map("0=negative, 1=Positive,2=surprise") == {"0": "negative", "1": "positive",
                                                                    "2": "surprise"}
    assert parse_label_map({0: "negative", 4: "negative"}) == {"0": "negative", "4": "negative"}
    with pytest.raises(ConfigError, match=r"--label-map: '0:negative' is not code=class"):
        parse_label_map("0:negative")
    with pytest.raises(ConfigError, match=r"--label-map: 3=happy: 'happy' is not one of negative, positive"):
        parse_label_map("0=negative,3=happy")
    with pytest.raises(ConfigError, match=r"code '0' is given twice"):
        parse_label_map("0=negative,0=positive")


def test_read_predictions_names_any_case_integer_codes_and_line_numbers(tmp_path):
    path = _write(tmp_path / "p.csv", "Dataset,Subject,Sample,Pred,Label,score\n"
                                      "CASME2,sub01,EP02_01f,1,positive,0.9\n"
                                      "\n"
                                      "smic,s01,s01_ne_01,Negative,0,0.1\n")
    t = read_predictions(path, "0=negative,1=positive,2=surprise")
    assert list(t.columns) == ["dataset", "subject", "sample", "pred", "label", "line"]
    assert t.values.tolist() == [["casme2", "sub01", "EP02_01f", "positive", "positive", 2],
                                 ["smic", "s01", "s01_ne_01", "negative", "negative", 4]]
    no_label = read_predictions(_write(tmp_path / "q.csv",
                                       "dataset,subject,sample,pred\nsamm,006,006_1_2,surprise\n"))
    assert list(no_label.columns) == ["dataset", "subject", "sample", "pred", "line"]
    empty_label = read_predictions(_write(tmp_path / "r.csv", "dataset,subject,sample,pred,label\n"
                                                              "samm,006,006_1_2,surprise,\n"))
    assert empty_label["label"].isna().all()


def test_read_predictions_takes_any_prediction_column(tmp_path):
    path = _write(tmp_path / "loso.csv", "dataset,subject,sample,label,fold,pred,pred_svm,pred_softmax\n"
                                         "casme2,sub01,EP02_01f,positive,0,positive,negative,surprise\n")
    assert read_predictions(path)["pred"].tolist() == ["positive"]
    assert read_predictions(path, pred_column="pred_softmax")["pred"].tolist() == ["surprise"]
    with pytest.raises(BrokenFileError, match=r"lacks \['pred_lr'\]"):
        read_predictions(path, pred_column="pred_lr")
    with pytest.raises(ConfigError, match="pred_column: expected the name of a prediction column, got 'label'"):
        read_predictions(path, pred_column="label")


@pytest.mark.parametrize("text, message", [
    ("", r"bad\.csv: empty; expected a CSV header"),
    ("dataset,subject,pred\nsmic,s01,negative\n", r"bad\.csv: line 1: the header .* lacks \['sample'\]"),
    ("dataset,subject,sample,pred\nsmic,s01,s01_ne_01,negative\nsmic,s01\n",
     r"bad\.csv: line 3: 2 fields where the header has 4"),
    ("dataset,subject,sample,pred\nsmic,s01,s01_ne_01,\n", r"bad\.csv: line 2: empty pred"),
    ("dataset,subject,sample,pred\nsmic,s01,s01_ne_01,happy\n",
     r"bad\.csv: line 2: pred 'happy' is not one of negative, positive, surprise"),
    ("dataset,subject,sample,pred\nsmic,s01,s01_ne_01,2\n",
     r"bad\.csv: line 2: pred '2' is an integer code; .*--label-map 0=negative"),
    ("dataset,subject,sample,pred\n", r"bad\.csv: no rows under the header"),
    ("dataset,subject,sample,pred,pred\nsmic,s01,s01_ne_01,negative,negative\n",
     r"bad\.csv: line 1: the header repeats the column\(s\) \['pred'\]"),
])
def test_malformed_file_is_one_error_naming_file_and_line(tmp_path, text, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(BrokenFileError, match=message):
        read_predictions(path)


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere\.csv: cannot be read \(No such file"):
        read_predictions(tmp_path / "nowhere.csv")
    binary = tmp_path / "model.npz"
    binary.write_bytes(b"dataset,subject,sample,pred\n" + bytes(range(128, 256)))
    with pytest.raises(BrokenFileError, match=r"model\.npz: line 2: not UTF-8 text"):
        read_predictions(binary)
    with pytest.raises(BrokenFileError, match=r"line 2: pred '7' is neither a code of the label map"):
        read_predictions(_write(tmp_path / "c.csv", "dataset,subject,sample,pred\nsmic,s01,s01_ne_01,7\n"),
                         "0=negative,1=positive,2=surprise")


# --------------------------------------------------------------------------- matching and scoring

def _messy() -> pd.DataFrame:
    """Four composite samples, a repeat, and one row of each kind that cannot be scored."""
    neg, neg2 = _pick("casme2", "negative"), _pick("casme2", "negative", 1)
    pos, sur = _pick("casme2", "positive"), _pick("samm", "surprise")
    rows = [
        {**pos, "pred": "positive", "label": "positive"},
        {**neg, "pred": "negative", "label": "negative"},
        {**neg2, "pred": "positive", "label": "surprise"},       # label differs from the list's
        {**sur, "pred": "surprise", "label": "surprise"},
        {**neg, "pred": "surprise", "label": "negative"},        # duplicate, another prediction
        {"dataset": "smic", "subject": "s07", "sample": "s07_po_01", "pred": "positive", "label": "positive"},
        {"dataset": "ckplus", "subject": "S005", "sample": "S005_001", "pred": "negative", "label": "negative"},
        {"dataset": "casme2", "subject": "sub01", "sample": "EP99_99", "pred": "negative", "label": "negative"},
    ]
    t = pd.DataFrame(rows)
    t["line"] = np.arange(2, 2 + len(t))
    return t


def test_every_row_not_scored_and_every_sample_not_predicted_is_reported():
    scored, issues = match_composite(_messy())
    assert len(scored) == 4 and scored["line"].tolist() == [2, 3, 4, 5]
    counts = issues["kind"].value_counts().to_dict()
    assert counts == {"unknown_subject": 2, "not_in_composite": 1, "duplicate": 1, "label_differs": 1,
                      "absent": 442 - 4}
    assert list(pd.unique(issues["kind"])) == [k for k in ISSUES if k in counts]  # report order
    by = issues.set_index("kind")
    assert by.loc["duplicate", "line"] == 6
    assert "repeats line 3 (prediction differs: negative there, surprise here)" == by.loc["duplicate", "detail"]
    unknown = issues[issues["kind"] == "unknown_subject"]["detail"].tolist()
    assert "no subject 's07' in the composite's smic (it writes subjects as 's01')" in unknown
    assert any("dataset 'ckplus' is not a part of the composite" in d for d in unknown)
    assert by.loc["not_in_composite", "sample"] == "EP99_99"
    assert by.loc["label_differs", "detail"] == ("the file says surprise, the composite negative; "
                                                 "scored with the composite's")
    lines = issue_lines(issues, named=2)
    assert lines[-1].startswith("438 samples: composite sample not in the file: not scored:")
    assert lines[-1].endswith("and 436 more")


def test_the_truth_is_the_composites_unless_the_files_is_asked_for():
    by_list, _ = match_composite(_messy())
    by_file, issues = match_composite(_messy(), labels="file")
    assert by_list["label"].tolist() == ["positive", "negative", "negative", "surprise"]
    assert by_file["label"].tolist() == ["positive", "negative", "surprise", "surprise"]
    assert issues.set_index("kind").loc["label_differs", "detail"].endswith("scored with the file's")
    with pytest.raises(ConfigError, match="labels='file': the predictions have no label column"):
        match_composite(_messy().drop(columns="label"), labels="file")


def test_scores_are_merlib_scores_of_the_scored_rows_with_intervals():
    # Hand-checked: truth pos, neg, neg, sur; pred pos, neg, pos, sur -> per-class F1 2/3, 2/3, 1;
    # recall 1/2 (negative), 1, 1; accuracy 3/4.
    report = score_predictions(_messy(), n_resamples=200, seed=1)
    comp = report.scores.set_index("part").loc["composite"]
    assert comp["uf1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert comp["uar"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert comp["accuracy"] == pytest.approx(0.75)
    assert comp["n"] == 4 and comp["n_subjects"] == 2
    assert list(report.scores["part"]) == ["composite", "casme2", "samm"]
    for _, row in report.scores.iterrows():
        rows = report.scored if row["part"] == "composite" else report.scored[report.scored["dataset"] == row["part"]]
        expected = scores(rows["label"], rows["pred"])
        for m in ("uf1", "uar", "accuracy"):
            assert row[m] == pytest.approx(expected[m])
            assert row[f"{m}_lo"] <= row[m] + 1e-12 and row[m] <= row[f"{m}_hi"] + 1e-12
    assert report.n_rows == 8 and report.labels == "composite"
    assert report.counts() == {"unknown_subject": 2, "not_in_composite": 1, "duplicate": 1, "label_differs": 1,
                               "absent": 438}
    text = scores_text(report.scores)
    assert text.loc[0, "uf1"].startswith("0.7778 [") and list(text.columns) == [
        "part", "n", "n_subjects", "uf1", "uar", "accuracy"]


def test_same_seed_same_intervals_and_nothing_scoreable_is_an_error():
    a = score_predictions(_messy(), n_resamples=100, seed=3).scores
    b = score_predictions(_messy(), n_resamples=100, seed=3).scores
    pd.testing.assert_frame_equal(a, b)
    junk = _messy().iloc[5:]
    with pytest.raises(ConfigError, match=r"no row is a sample of the composite list; .*unknown_subject|no subject"):
        score_predictions(junk)


def test_a_custom_composite_list_scores_a_subset():
    subset = LISTED[LISTED["dataset"] == "casme2"].head(3)
    t = subset.rename(columns={"label": "pred"})
    report = score_predictions(t, composite=subset, n_resamples=50)
    assert report.counts()["absent"] == 0 and report.scores.loc[0, "accuracy"] == 1.0


# --------------------------------------------------------------------------- paired

def test_paired_differences_are_a_minus_b_on_the_shared_samples():
    listed = LISTED.copy()
    good = listed.rename(columns={"label": "pred"})[[*KEY, "pred"]]
    # b: always "negative"; a: right everywhere, but lacks the SAMM samples.
    worse = good.assign(pred="negative")
    better = good[good["dataset"] != "samm"]
    report = paired_scores(better, worse, names=("a", "b"), n_resamples=200)
    shared = listed[listed["dataset"] != "samm"]
    comp = report.differences.set_index("part").loc["composite"]
    always_negative = ["negative"] * len(shared)
    expected = scores(shared["label"], shared["label"])["uf1"] - scores(shared["label"], always_negative)["uf1"]
    assert comp["d_uf1"] == pytest.approx(expected)
    assert comp["n"] == len(shared) == 309
    assert comp["d_uf1_lo"] > 0  # a is right everywhere: every resample favours it
    assert len(report.only["b"]) == 133 and len(report.only["a"]) == 0
    assert list(report.differences["part"]) == ["composite", "smic", "casme2"]
    assert set(report.scores["classifier"]) == {"a", "b"}
    same = paired_scores(better, better, names=("x", "y"), n_resamples=50).differences
    assert (same[["d_uf1", "d_uf1_lo", "d_uf1_hi"]] == 0).all().all()
    with pytest.raises(ConfigError, match="two distinct non-empty names"):
        paired_scores(better, worse, names=("a", "a"))


# --------------------------------------------------------------------------- published logs

def test_published_logs_are_checked_against_their_papers():
    result = compare_published(n_resamples=200)
    assert list(result.reports) == ["ststnet", "capsulenet"]
    check = result.check.set_index(["method", "part", "metric"])
    for part in ("composite", "smic", "casme2", "samm"):
        assert check.loc[("STSTNet", part, "uf1"), "equal"]
        assert not check.loc[("STSTNet", part, "uar"), "equal"]  # Table III's UAR is the mean precision
        assert check.loc[("CapsuleNet", part, "uf1"), "equal"] and check.loc[("CapsuleNet", part, "uar"), "equal"]
    assert check.loc[("STSTNet", "composite", "uar"), "difference"] == pytest.approx(0.7186 - 0.7605, abs=6e-5)
    assert check.loc[("STSTNet", "smic", "uf1"), "decimals"] == 4
    assert check.loc[("CapsuleNet", "smic", "uf1"), "decimals"] == 2
    assert check.loc[("CapsuleNet", "composite", "uf1"), "n"] == 435
    assert result.reports["capsulenet"].counts()["absent"] == 7
    assert result.reports["capsulenet"].counts()["label_differs"] == 1
    (pair,) = result.paired
    assert pair.names == ("STSTNet", "CapsuleNet")
    comp = pair.differences.set_index("part").loc["composite"]
    assert comp["n"] == 435 and comp["d_uf1"] == pytest.approx(0.7432 - 0.6554, abs=1e-4)
    wide = check_wide(result.check)
    assert wide.loc[("STSTNet", "composite"), "UF1 check"] == "equal (4 d.p.)"
    assert wide.loc[("STSTNet", "composite"), "UAR check"] == "differs: -0.0419"
    assert wide.loc[("CapsuleNet", "samm"), "UAR check"] == "equal (2 d.p.)"
    assert wide.loc[("CapsuleNet", "samm"), "UAR published"] == "0.60"
    pairs = paired_wide(result.paired)
    assert list(pairs.columns) == ["n", "ΔUF1", "ΔUAR", "Δaccuracy"]
    assert pairs.loc[("STSTNet − CapsuleNet", "composite"), "ΔUF1"].startswith("+0.0878 [")
