"""Crop sets on disk and in memory."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.faces.cache import FaceStore
from merlib.training.crops import CropSet, load_crop_set, save_crop_set
from tests.toy import tiny_crops


def test_npz_round_trip(tmp_path):
    crops = tiny_crops()
    npz = save_crop_set(crops, tmp_path / "crops")
    assert npz.name == "crops.npz" and (tmp_path / "crops.csv").is_file()
    again = load_crop_set(npz)
    assert np.array_equal(again.X, crops.X) and again.fingerprint() == crops.fingerprint()
    assert again.data_kind == crops.data_kind and list(again.groups) == list(crops.groups)


def test_reads_a_preprocess_folder(tmp_path):
    # The layout `merlib preprocess` writes: a FaceStore and manifest.csv in one folder.
    store = FaceStore(tmp_path)
    rows, rng = [], np.random.default_rng(0)
    for i, (kind, label) in enumerate([("composite", "negative"), ("macro", "positive"),
                                       ("composite", "surprise"), ("composite", "positive")]):
        crop = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        path = store.write(tmp_path / "crops" / f"{i}.npz", {"crop": crop, "points": np.zeros((68, 2), np.float32)}, {})
        status = "failed" if i == 3 else "ok"
        rows.append({"set": kind, "dataset": "casme2", "part": "", "subject": f"sub{i:02d}", "sample": f"EP{i}",
                     "label": label, "status": status,
                     "crop_file": "" if status == "failed" else path.relative_to(tmp_path).as_posix()})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(ConfigError, match=r"set: .* holds the sets \['composite', 'macro'\]"):
        load_crop_set(tmp_path)
    comp = load_crop_set(tmp_path, set="composite")
    assert comp.X.shape == (2, 32, 32) and list(comp.meta["label"]) == ["negative", "surprise"]


def test_bad_crop_sets_name_the_problem():
    meta = pd.DataFrame({"dataset": ["x"], "subject": ["a"], "sample": ["s"], "label": ["happy"]})
    with pytest.raises(ConfigError, match=r"meta: row 0 \(s\): label 'happy' is not one of"):
        CropSet(np.zeros((1, 8, 8), np.uint8), meta)
    with pytest.raises(ConfigError, match=r"X: expected a uint8 array"):
        CropSet(np.zeros((1, 8, 8), np.float32), meta.assign(label="positive"))


def test_labels_follow_schema_order():
    crops = tiny_crops()
    assert [LABELS[c] for c in crops.y[:3]] == list(crops.meta["label"][:3])
