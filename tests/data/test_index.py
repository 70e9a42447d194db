from __future__ import annotations

import shutil

import pytest

from merlib.data.index import DATASET_FOLDERS, READERS, index_datasets
from merlib.data.schema import COLUMNS, DATASETS
from merlib.errors import DataLayoutError


def test_registries_cover_every_dataset():
    assert list(DATASET_FOLDERS) == list(DATASETS) == list(READERS)
    assert DATASET_FOLDERS["ckplus"] == "CK+" and DATASET_FOLDERS["oulu"] == "Oulu-CASIA"


def test_indexes_everything_found_in_canonical_order(all_root):
    t = index_datasets(all_root)
    assert list(t.columns) == list(COLUMNS)
    counts = t.groupby("dataset", sort=False).size().to_dict()
    assert counts == {"casme2": 4, "samm": 3, "smic": 5, "ckplus": 4, "oulu": 4,
                      "jaffe": 4, "mug": 3}
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
