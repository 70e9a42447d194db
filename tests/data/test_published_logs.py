"""The packaged per-sample logs of published methods: verbatim, sourced, parsed, and their
published numbers recomputed from them."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from merlib.data.composite import load_composite_list
from merlib.data.published import published_as_written, published_results
from merlib.data.published_logs import (LOG_COLUMNS, get_log, load_published_log, log_bytes, log_sources,
                                        parse_log, published_logs)
from merlib.errors import AnnotationError
from merlib.scores import accuracy, uar_score, uf1_score

PARTS = ("composite", "smic", "casme2", "samm")
KEY = ["dataset", "subject", "sample"]
CODING = {"0": "negative", "1": "positive", "2": "surprise"}


def _part(table, part):
    return table if part == "composite" else table[table["dataset"] == part]


def _keys(table) -> set[tuple[str, str, str]]:
    return set(map(tuple, table[KEY].astype(str).to_numpy().tolist()))


@pytest.mark.parametrize("name", sorted(published_logs()))
def test_each_file_is_byte_for_byte_as_fetched_and_sourced(name):
    log = get_log(name)
    data = log_bytes(name)
    assert len(data) == log.bytes
    assert hashlib.sha256(data).hexdigest() == log.sha256
    assert re.fullmatch(r"[0-9a-f]{40}", log.commit)
    assert log.url == f"https://github.com/{log.repository}/blob/{log.commit}/{log.path}"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", log.fetched)
    assert log.licence and log.notes and log.format
    assert log.method in set(published_results()["method"])


def test_ststnet_keeps_its_crlf_line_endings():
    data = log_bytes("ststnet")
    assert data.count(b"\r\n") == data.count(b"\n") == 509 and not data.endswith(b"\n")


def test_sources_table_names_every_log():
    t = log_sources()
    assert list(t["name"]) == ["ststnet", "capsulenet", "capsulenet_reproduced"]
    assert t.loc[t["name"] == "ststnet", "repository"].item() == "christy1206/STSTNet"
    assert t.loc[t["name"] == "capsulenet", "path"].item() == "result_log.csv"


def test_ststnet_holds_the_442_composite_samples_and_its_first_number_is_the_truth():
    log = load_published_log("ststnet")
    assert list(log.columns) == list(LOG_COLUMNS)
    listed = load_composite_list()
    assert len(log) == 442 and _keys(log) == _keys(listed)
    merged = log.merge(listed, on=KEY, suffixes=("", "_list"))
    # The coding 0=negative, 1=positive, 2=surprise with the first number as the truth agrees
    # with the list everywhere; the second number (the prediction) only where STSTNet is right.
    assert (merged["label"] == merged["label_list"]).all()
    assert int((merged["pred"] == merged["label_list"]).sum()) == 340
    assert log.groupby("dataset").size().to_dict() == {"casme2": 145, "samm": 133, "smic": 164}


def test_ststnet_reproduces_table_iii_uf1_and_its_uar_is_the_mean_precision():
    log = load_published_log("ststnet")
    published = published_results().set_index("method").loc["STSTNet"]
    # The mean per-class recall of the log: what UAR means (pinned; Table III prints other values).
    recall_uar = {"composite": 0.7186, "smic": 0.6703, "casme2": 0.8190, "samm": 0.6415}
    for part in PARTS:
        t = _part(log, part)
        assert round(uf1_score(t["label"], t["pred"]), 4) == pytest.approx(published[f"uf1_{part}"], abs=1e-9)
        assert round(uar_score(t["label"], t["pred"]), 4) == pytest.approx(recall_uar[part], abs=1e-9)
        # Table III's UAR is recall with truth and prediction swapped, i.e. the mean precision.
        assert round(uar_score(t["pred"], t["label"]), 4) == pytest.approx(published[f"uar_{part}"], abs=1e-9)
    assert round(accuracy(log["label"], log["pred"]), 4) == 0.7692


def test_capsulenet_names_are_padded_to_the_composite_and_seven_smic_samples_are_absent():
    log = load_published_log("capsulenet")
    listed = load_composite_list()
    assert len(log) == 435 and _keys(log) <= _keys(listed)
    absent = sorted(s for d, _, s in _keys(listed) - _keys(log))
    assert absent == ["s01_ne_02", "s02_sur_05", "s03_ne_03", "s03_ne_20", "s04_ne_05", "s04_ne_06", "s09_sur_02"]
    row = log[log["sample_as_written"] == "s1_po_01"].iloc[0]
    assert (row["subject"], row["sample"], row["subject_as_written"]) == ("s01", "s01_po_01", "1")
    assert set(log.loc[log["dataset"] == "samm", "subject"]) >= {"006", "037"}
    merged = log.merge(listed, on=KEY, suffixes=("", "_list"))
    differs = merged[merged["label"] != merged["label_list"]]
    assert differs[["sample", "label", "label_list"]].values.tolist() == [["s18_sur_03", "negative", "surprise"]]


def test_capsulenet_reproduces_its_published_numbers_at_the_precision_printed():
    log = load_published_log("capsulenet")
    written = published_as_written().set_index("method").loc["CapsuleNet"]
    for part in PARTS:
        t = _part(log, part)
        for metric, score in (("uf1", uf1_score), ("uar", uar_score)):
            text = written[f"{metric}_{part}"]
            decimals = len(text.partition(".")[2])
            assert f"{score(t['label'], t['pred']):.{decimals}f}" == text, (part, metric)
    # On the composite's labels (s18_sur_03 a surprise) the composite scores move.
    listed = load_composite_list()
    truth = log.merge(listed, on=KEY, suffixes=("", "_list"))
    assert round(uf1_score(truth["label_list"], truth["pred"]), 4) == 0.6554
    assert round(uar_score(truth["label_list"], truth["pred"]), 4) == 0.6534


def test_the_reproduced_capsulenet_log_repeats_the_same_predictions():
    first, rerun = load_published_log("capsulenet"), load_published_log("capsulenet_reproduced")
    cols = [*KEY, "label", "pred"]
    a = first[cols].sort_values(KEY).reset_index(drop=True)
    b = rerun[cols].sort_values(KEY).reset_index(drop=True)
    assert len(b) == 435 and a.equals(b)
    assert rerun["dataset"].iloc[0] == "smic" and first["dataset"].iloc[0] == "casme2"


def test_parse_log_reads_headers_samples_and_any_line_ending():
    text = "casme2 sub01\r\nEP02_01f 1 0\r\n\r\nsamm 6\r\n006_1_2 0 2\r\n"
    t = parse_log(text, coding=CODING, ids="capsulenet")
    assert t[["dataset", "subject", "sample", "label", "pred"]].values.tolist() == [
        ["casme2", "sub01", "EP02_01f", "positive", "negative"], ["samm", "006", "006_1_2", "negative", "surprise"]]
    assert t["line"].tolist() == [2, 5]
    as_written = parse_log(text, coding=CODING)
    assert as_written["subject"].tolist() == ["sub01", "6"]


@pytest.mark.parametrize("text, message", [
    ("EP02_01f 1 0\n", r"x\.txt: line 1: sample line 'EP02_01f 1 0' before any"),
    ("casme2 sub01\nEP02_01f 1 0 2\n", r"x\.txt: line 2: 'EP02_01f 1 0 2' is neither a header"),
    ("casme2 sub01\nEP02_01f 1\n", r"x\.txt: line 2: header 'EP02_01f 1' names dataset 'EP02_01f'"),
    ("ckplus S005\nS005_001 1 0\n", r"x\.txt: line 1: header 'ckplus S005' names dataset 'ckplus'"),
    ("casme2 sub01\nEP02_01f 1 7\n", r"x\.txt: line 2: code '7' is not in the coding"),
    ("\n\n", r"x\.txt: no sample lines"),
])
def test_parse_log_errors_name_the_file_and_line(text, message):
    with pytest.raises(AnnotationError, match=message):
        parse_log(text, coding=CODING, source="x.txt")


def test_unknown_log_lists_the_packaged_ones():
    with pytest.raises(AnnotationError, match=r"'nope': not packaged; choose from \['capsulenet'"):
        get_log("nope")


def test_every_log_parses_without_losing_a_line():
    for name in published_logs():
        log = load_published_log(name)
        text = log_bytes(name).decode("utf-8")
        sample_lines = [ln for ln in text.splitlines() if len(ln.split()) == 3]
        assert len(log) == len(sample_lines)
        assert np.all(np.diff(log["line"].to_numpy()) > 0)
