"""The dataset view, pixel perturbation, balanced batches."""
from __future__ import annotations

import numpy as np
import torch

from merlib.training.batches import BalancedBatchSampler, CropDataset, PixelPerturbation
from tests.toy import tiny_crops


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
