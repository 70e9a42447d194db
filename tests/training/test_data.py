"""Crop sets on disk and in memory, the dataset view, pixel perturbation, balanced batches."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.faces.cache import FaceStore
from merlib.training.data import (BalancedBatchSampler, CropDataset, CropSet, PixelPerturbation,
                                  load_crop_set, save_crop_set)
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


def test_dataset_resizes_normalises_and_is_float_01():
    crops = tiny_crops()
    ds = CropDataset(crops.X, crops.y, image_size=32, mean=0.0, std=1.0)
    x, y = ds[3]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert int(y) == crops.y[3]
    xb, yb = ds.__getitems__([0, 1, 2])
    assert xb.shape == (3, 1, 32, 32) and yb.tolist() == crops.y[:3].tolist()
    shifted = CropDataset(crops.X, crops.y, image_size=32, mean=0.5, std=0.25)[3][0]
    assert torch.allclose(shifted, (x - 0.5) / 0.25)


def test_pixel_perturbation_probability_and_magnitude():
    gen = torch.Generator().manual_seed(0)
    images = torch.full((2000, 1, 8, 8), 0.5)
    out = PixelPerturbation(p=0.3, max_delta=20)(images, gen)
    delta = (out - images) * 255
    changed = (delta.abs() > 1e-4).flatten(1).any(1).float().mean()
    assert 0.26 < float(changed) < 0.34
    assert float(delta.abs().max()) <= 20 + 1e-3 and float(delta.abs().max()) > 19


def test_balanced_sampler_gives_each_class_the_same_count():
    y = np.array([0] * 30 + [1] * 6 + [2] * 3)  # as unbalanced as the composite, worse
    batches = list(BalancedBatchSampler(y, 9, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 5
    for b in batches:
        assert np.bincount(y[b], minlength=3).tolist() == [3, 3, 3]
    uneven = list(BalancedBatchSampler(y, 8, generator=torch.Generator().manual_seed(0)))
    for b in uneven:
        counts = np.bincount(y[b], minlength=3)
        assert counts.sum() == 8 and counts.max() - counts.min() <= 1
    # A minority class cycles through all its samples before repeating one.
    surprise = [i for b in batches for i in b if y[i] == 2]
    assert sorted(surprise[:3]) == [36, 37, 38]


def test_labels_follow_schema_order():
    crops = tiny_crops()
    assert [LABELS[c] for c in crops.y[:3]] == list(crops.meta["label"][:3])
