from __future__ import annotations

import shutil

import pytest

import pandas as pd

from merlib.cli import main
from merlib.data.index import (
    DATASET_FOLDERS, ERROR_COLUMNS, READERS, DatasetSkippedWarning, frame_pattern,
    index_datasets, index_report,
)
from merlib.data.schema import COLUMNS, DATASETS
from merlib.errors import AnnotationError, ConfigError, DataLayoutError


def test_registries_cover_every_dataset():
    assert list(DATASET_FOLDERS) == list(DATASETS) == list(READERS)
    assert DATASET_FOLDERS["ckplus"] == "CK+" and DATASET_FOLDERS["oulu"] == "Oulu-CASIA"


def test_indexes_everything_found_in_canonical_order(all_root):
    t = index_datasets(all_root)
    assert list(t.columns) == list(COLUMNS)
    counts = t.groupby("dataset", sort=False).size().to_dict()
    assert counts == {"casme2": 4, "samm": 3, "smic": 5, "ckplus": 4, "oulu": 4,
                      "jaffe": 4, "mug": 5}
    assert list(dict.fromkeys(t["dataset"])) == list(DATASETS)
    casme2 = t[t["dataset"] == "casme2"]
    assert casme2["sample"].tolist() == ["EP02_01f", "EP03_02", "EP19_06f", "EP01_11f"]
    assert t.equals(index_datasets(all_root))  # deterministic
    assert not t["clip_dir"].str.startswith("/").any()


def test_subset_and_named_folder_missing(all_root):
    t = index_datasets(all_root, ["jaffe", "samm"])
    assert t["dataset"].unique().tolist() == ["samm", "jaffe"]
    shutil.rmtree(all_root / "CK+")
    assert "ckplus" not in set(index_datasets(all_root)["dataset"])
    with pytest.raises(DataLayoutError, match=r"ckplus: expected folder CK\+/ under data root"):
        index_datasets(all_root, ["ckplus"])


def test_root_without_datasets_lists_expected_folders(tmp_path):
    (tmp_path / "SYNTHME.json").write_text("{}")
    with pytest.raises(DataLayoutError, match=r"none of the dataset folders.*'CASME2'.*'MUG'"):
        index_datasets(tmp_path)
    with pytest.raises(DataLayoutError, match="does not exist"):
        index_datasets(tmp_path / "nowhere")


def test_unknown_dataset_key(all_root):
    with pytest.raises(ValueError, match="unknown"):
        index_datasets(all_root, ["fer2013"])


def _break_mug_and_samm(root):
    """Two datasets with faults of the owners' kind; the other five are fine."""
    (root / "MUG" / "subjects3" / "001" / "Joy").mkdir()
    sheet = root / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx"
    sheet.write_bytes(sheet.read_bytes()[:100])


def test_one_odd_dataset_does_not_sink_the_others(all_root):
    _break_mug_and_samm(all_root)
    result = index_report(all_root)
    assert result.table["dataset"].unique().tolist() == ["casme2", "smic", "ckplus", "oulu", "jaffe"]
    assert list(result.errors.columns) == ERROR_COLUMNS
    errors = result.errors.set_index("dataset")
    assert errors.index.tolist() == ["samm", "mug"]
    assert errors.loc["mug", "error"] == "DataLayoutError"
    assert "001/Joy: unknown folder" in errors.loc["mug", "message"]
    assert "SAMM_Micro_FACS_Codes_v2.xlsx: not a readable .xlsx" in errors.loc["samm", "message"]
    # index_datasets without a list: the same table, each error a warning.
    with pytest.warns(DatasetSkippedWarning) as warned:
        t = index_datasets(all_root)
    messages = [str(w.message) for w in warned]
    assert messages[0].startswith("samm left out of the index: ") and "BadZipFile" in messages[0]
    assert messages[1].startswith("mug left out of the index: ") and "001/Joy" in messages[1]
    assert t.equals(result.table)
    assert [e["dataset"] for e in t.attrs["index_errors"]] == ["samm", "mug"]
    # Named datasets stay strict: the first error is raised.
    with pytest.raises(AnnotationError, match="SAMM_Micro_FACS_Codes_v2.xlsx"):
        index_datasets(all_root, ["samm", "mug"])


def test_cli_index_reports_errors_in_a_file_and_on_stderr_then_exits_1(all_root, tmp_path,
                                                                       capsys):
    _break_mug_and_samm(all_root)
    out = tmp_path / "out" / "manifest.csv"
    assert main(["index", "--data-root", str(all_root), "--out", str(out)]) == 1
    written = pd.read_csv(out, dtype=str)
    assert set(written["dataset"]) == {"casme2", "smic", "ckplus", "oulu", "jaffe"}
    report = pd.read_csv(tmp_path / "out" / "manifest.errors.csv", dtype=str)
    assert report["dataset"].tolist() == ["samm", "mug"]
    assert "001/Joy" in report.loc[1, "message"]
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("merlib index: error: samm not indexed: ")
    assert err[1].startswith("merlib index: error: mug not indexed: ") and "001/Joy" in err[1]
    assert err[2].endswith("2 dataset(s) not indexed -> " + str(tmp_path / "out" / "manifest.errors.csv"))
    # Fixed: exit 0, and the stale report is gone.
    (all_root / "MUG" / "subjects3" / "001" / "Joy").rmdir()
    assert main(["index", "--data-root", str(all_root), "--out", str(out),
                 "--datasets", "mug,jaffe"]) == 0
    assert not (tmp_path / "out" / "manifest.errors.csv").exists()


def test_cli_index_flags_travel_to_the_manifest(all_root, tmp_path):
    out = tmp_path / "manifest.csv"
    assert main(["index", "--data-root", str(all_root), "--out", str(out),
                 "--apex-fallback", "middle"]) == 0
    written = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("sample")
    assert written.loc["EP03_02", "flags"] == "apex_uncoded:/;apex_estimated:middle"
    assert set(written.loc[written["dataset"] == "smic", "flags"]) == {"apex:middle_frame"}


def test_frame_patterns_and_bad_options(all_root):
    assert frame_pattern("casme2", "cropped") == r"reg_img(\d+)\.jpg"
    assert frame_pattern("mug") == r"img_(\d+)\.jpg"
    with pytest.raises(ValueError, match="jaffe"):
        frame_pattern("jaffe")
    with pytest.raises(ConfigError, match=r"apex_fallback: expected one of \['motion', 'middle'\]"):
        index_datasets(all_root, apex_fallback="first")
