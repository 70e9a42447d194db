"""The MEGC2019 composite on a full-size generated CASME II + SAMM + SMIC tree."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from merlib.cli import main
from merlib.data.composite import (
    COMPOSITE_COLUMNS, CompositeResult, load_composite_list, megc2019_composite,
)
from merlib.data.index import index_datasets
from merlib.data.schema import COLUMNS
from merlib.errors import AnnotationError, DataLayoutError, MissingSamplesError


def test_packaged_list():
    listed = load_composite_list()
    assert list(listed.columns) == ["dataset", "subject", "sample", "label"]
    assert len(listed) == 442 and listed["subject"].nunique() == 68
    assert listed.groupby("dataset")["subject"].nunique().to_dict() == {
        "casme2": 24, "samm": 28, "smic": 16}


def test_full_composite_from_data_root(megc_root):
    result = megc2019_composite(megc_root)
    assert isinstance(result, CompositeResult)
    t = result.table
    assert len(t) == 442 and t["subject"].nunique() == 68 and result.missing.empty
    assert t["label"].value_counts().to_dict() == {"negative": 250, "positive": 109,
                                                   "surprise": 83}
    assert list(t.columns) == list(COLUMNS)
    listed = load_composite_list()
    assert t[["dataset", "subject", "sample"]].equals(listed[["dataset", "subject", "sample"]])
    assert set(t.loc[t["dataset"] == "smic", "part"]) == {"HS"}
    assert "EP99_01" not in set(t["sample"])
    smic = t[t["sample"] == "s01_po_01"].iloc[0]
    assert smic.apex_path == "SMIC/SMIC_all_raw/HS/s1/micro/positive/s1_po_01/image000002.bmp"


def test_composite_from_index_table(megc_root):
    index = index_datasets(megc_root)
    assert len(megc2019_composite(index).table) == 442


def test_label_disagreement_names_sample_and_both_labels(megc_root):
    index = index_datasets(megc_root)
    row = (index["dataset"] == "casme2") & (index["sample"] == "EP02_01f")
    index.loc[row, ["emotion", "label"]] = ["surprise", "surprise"]
    with pytest.raises(AnnotationError, match=r"EP02_01f.*'positive'.*'surprise'"):
        megc2019_composite(index)


def test_missing_clip(megc_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(megc_root, root)
    shutil.rmtree(root / "SMIC" / "SMIC_all_raw" / "HS" / "s3" / "micro" / "surprise"
                  / "s3_sur_01")
    with pytest.raises(MissingSamplesError, match=r"1 of 442 .*smic/s03/s03_sur_01"):
        megc2019_composite(root)
    result = megc2019_composite(root, allow_missing=True)
    assert len(result.table) == 441
    assert result.missing.to_dict("records") == [
        {"dataset": "smic", "subject": "s03", "sample": "s03_sur_01", "label": "surprise"}]


def test_many_missing_are_counted(megc_root):
    index = index_datasets(megc_root)
    index = index[index["dataset"] != "samm"]
    with pytest.raises(MissingSamplesError, match=r"133 of 442 .*samm/006/006_1_2.* and 123 more"):
        megc2019_composite(index)


def test_missing_dataset_folder(tmp_path):
    (tmp_path / "SAMM").mkdir()
    with pytest.raises(DataLayoutError, match="CASME2"):
        megc2019_composite(tmp_path)


def test_cli_composite_writes_the_standard_csv(megc_root, tmp_path, capsys):
    out = tmp_path / "out" / "composite.csv"
    assert main(["composite", "--data-root", str(megc_root), "--out", str(out)]) == 0
    written = pd.read_csv(out, dtype=str)
    assert list(written.columns) == COMPOSITE_COLUMNS
    assert len(written) == 442
    assert written["label"].value_counts().to_dict() == {"negative": 250, "positive": 109,
                                                         "surprise": 83}
    assert "442 composite samples" in capsys.readouterr().out
