"""Calibration rows: the published references scored on a root, kept per root."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from merlib.errors import ConfigError
from merlib.studies.calibration import (CALIBRATION_COLUMNS, TOLERANCE, calibration_rows, calibration_summary,
                                        calibration_table, published_uf1, read_records, write_csv)

PUBLISHED = {k: v for k, (v, _) in published_uf1().items()}


def test_published_values_come_from_the_packaged_table():
    assert published_uf1() == {"lbp_top_svm": (0.5882, "see2019megc"), "biwoof_svm": (0.6296, "liong2018biwoof")}


def _rows(root: str, uf1: float) -> pd.DataFrame:
    return pd.DataFrame([{"reference": "lbp_top_svm", "root": root, "uf1": uf1, "uf1_lo": uf1 - 0.05,
                          "uf1_hi": uf1 + 0.05, "published": PUBLISHED["lbp_top_svm"], "n": 442}])


def test_scores_each_reference_beside_its_published_value(synth_root, tmp_path):
    from merlib.training.crops import prepare_crop_sets

    crops = prepare_crop_sets(synth_root, sets=("composite",), allow_missing=True)["composite"]
    rows = calibration_rows(crops, synth_root, "book", names=("majority", "biwoof_svm"), clip_size=48,
                            clip_frames=4, cache_dir=tmp_path / "refs", n_resamples=50)
    assert list(rows.columns[:6]) == list(CALIBRATION_COLUMNS)
    assert list(rows["reference"]) == ["majority", "biwoof_svm"] and set(rows["root"]) == {"book"}
    assert rows["published"].iloc[0] is None or pd.isna(rows["published"].iloc[0])
    assert rows["published"].iloc[1] == PUBLISHED["biwoof_svm"]
    b = rows.iloc[1]
    assert b["uf1_lo"] <= b["uf1"] <= b["uf1_hi"] and b["n"] == len(crops)
    assert b["within"] == (abs(b["uf1"] - PUBLISHED["biwoof_svm"]) <= TOLERANCE)
    with pytest.raises(ConfigError, match="names"):
        calibration_rows(crops, synth_root, "book", names=())


def test_csv_keeps_one_set_of_rows_per_root(tmp_path):
    path = tmp_path / "results" / "calibration.csv"
    write_csv(_rows("development", 0.60), path)
    write_csv(_rows("book", 0.70), path)
    write_csv(_rows("book", 0.65), path)  # a rerun replaces the book's rows
    back = pd.read_csv(path)
    assert sorted(back["root"]) == ["book", "development"]
    assert back.set_index("root").loc["book", "uf1"] == pytest.approx(0.65)
    with pytest.raises(ConfigError, match="missing columns"):
        write_csv(pd.DataFrame({"reference": ["x"]}), path)


def test_records_are_read_back_with_their_date_and_settings(tmp_path):
    doc = {"date": "2026-12-06T22:00:00+00:00", "code": "merlib 0.1.0 (git abc)", "machine": {"cpu": "EPYC"},
           "data_fingerprint": "d1e7", "generator": {"seed": 7, "appearance": "facs"},
           "results": _rows("dev-s7", 0.62).to_dict("records")}
    (tmp_path / "calibration-dev-s7.json").write_text(json.dumps(doc))
    table = read_records(tmp_path)
    assert len(table) == 1 and table["cpu"].iloc[0] == "EPYC" and table["uf1"].iloc[0] == 0.62
    assert json.loads(table["generator"].iloc[0])["appearance"] == "facs"
    both = calibration_table(_rows("book", 0.70), table)
    assert list(both["root"]) == ["book", "dev-s7"] and list(both["generator"])[1] == "appearance=facs"
    assert both["difference"].tolist() == pytest.approx([0.70 - 0.5882, 0.62 - 0.5882])
    assert both["within"].tolist() == [False, True]
    # A calibrated amplitude range is shown with the realism options.
    doc["generator"] = {"seed": 7, "flicker": 0.02, "micro_amplitude_iod": [0.015, 0.035],
                        "macro_amplitude_iod": [0.1, 0.2]}
    (tmp_path / "calibration-dev-s7.json").write_text(json.dumps(doc))
    shown = calibration_table(_rows("book", 0.70), read_records(tmp_path))["generator"].iloc[1]
    assert shown == "flicker=0.02, micro_amplitude_iod=[0.015, 0.035]"
    (tmp_path / "calibration-broken.json").write_text("{")
    with pytest.raises(ConfigError, match="calibration-broken.json"):
        read_records(tmp_path)


def test_the_figure_compares_this_roots_generator_with_the_latest_record(synth_root, tmp_path):
    from merlib.studies.calibration import generators_to_compare

    for day, strength in (("2026-12-01", 1.0), ("2026-12-05", 2.5)):
        doc = {"date": day, "generator": {"seed": 7, "micro_subjects": 68, "appearance": "facs",
                                          "appearance_strength": strength}, "results": _rows("development", 0.6).to_dict("records")}
        (tmp_path / f"calibration-{day}.json").write_text(json.dumps(doc))
    configs, keys = generators_to_compare(synth_root, read_records(tmp_path))
    mine, latest = configs.values()
    assert mine.appearance == "none" and latest.appearance == "facs" and latest.appearance_strength == 2.5
    assert latest.seed == mine.seed == 0 and latest.micro_subjects == 3  # this root's subjects
    assert len(keys) == 3 and all(k[0] in ("casme2", "samm", "smic") for k in keys)
    assert generators_to_compare(tmp_path, read_records(tmp_path)) is None


def test_a_realistic_root_is_compared_with_the_warp_only_generator(tmp_path):
    from merlib.studies.calibration import generators_to_compare
    from merlib.synth import SynthConfig

    cfg = SynthConfig.preset("realistic", seed=4, micro_subjects=3, macro_subjects=4)
    (tmp_path / "SYNTHME.json").write_text(json.dumps({**cfg.record(), "complete": True}))
    pd.DataFrame([{"dataset": "casme2", "subject": "sub01", "sample": "EP01_01", "label": "negative"}]).to_csv(
        tmp_path / "SYNTHME_composite.csv", index=False)
    configs, keys = generators_to_compare(tmp_path, pd.DataFrame())
    plain, mine = configs.values()
    assert mine == cfg
    assert plain == SynthConfig(seed=4, micro_subjects=3, macro_subjects=4)  # same subjects, warp only
    assert keys == [("casme2", "sub01", "EP01_01")]


def test_summary_is_one_row_per_root_in_the_order_the_records_were_made(tmp_path):
    settings = {"v2": {"seed": 7, "appearance": "facs", "flicker": 0.01},
                "v10": {"seed": 7, "appearance": "facs", "flicker": 0.02}}
    for name, day, uf1 in (("v10", "2026-12-06", 0.66), ("v2", "2026-12-01", 0.52)):
        doc = {"date": day, "generator": settings[name], "results": _rows("dev-s7", uf1).to_dict("records")}
        (tmp_path / f"calibration-dev-s7-{name}.json").write_text(json.dumps(doc))
    records = read_records(tmp_path)
    assert list(pd.unique(records["record"])) == ["calibration-dev-s7-v2.json", "calibration-dev-s7-v10.json"]
    summary = calibration_summary(calibration_table(_rows("book", 0.60), records))
    assert list(summary.index) == ["published (real)", "this book's root", "dev-s7-v2", "dev-s7-v10"]
    assert list(summary.columns) == ["lbp_top_svm", "changed"]
    assert summary.loc["published (real)", "lbp_top_svm"] == "0.588"
    assert summary.loc["this book's root", "lbp_top_svm"] == "0.600 [0.55, 0.65] ok"
    assert summary.loc["dev-s7-v2", "lbp_top_svm"] == "0.520 [0.47, 0.57] off"
    assert summary.loc["dev-s7-v2", "changed"] == "appearance=facs, flicker=0.01"
    assert summary.loc["dev-s7-v10", "changed"] == "flicker=0.02"
    # A changed amplitude range is one setting, named whole (its own ", " is no separator).
    doc = {"date": "2026-12-07", "generator": {**settings["v10"], "micro_amplitude_iod": [0.015, 0.035]},
           "results": _rows("dev-s7", 0.6).to_dict("records")}
    (tmp_path / "calibration-dev-s7-v11.json").write_text(json.dumps(doc))
    doc["date"], doc["generator"]["micro_amplitude_iod"] = "2026-12-08", [0.015, 0.04]
    (tmp_path / "calibration-dev-s7-v12.json").write_text(json.dumps(doc))
    summary = calibration_summary(calibration_table(_rows("book", 0.60), read_records(tmp_path)))
    assert summary.loc["dev-s7-v11", "changed"] == "micro_amplitude_iod=[0.015, 0.035]"
    assert summary.loc["dev-s7-v12", "changed"] == "micro_amplitude_iod=[0.015, 0.04]"
