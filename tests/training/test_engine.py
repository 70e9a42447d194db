"""The L2 term as parameter groups equals the explicit Keras penalty; seeds are stable and
kernels deterministic; BatchNorm recalibration; class balancing of the training view."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from torch import nn

from merlib.config import FinetuneConfig, TrainConfig
from merlib.errors import ConfigError
from merlib.models.backbone import create_backbone, l2_parameters
from merlib.training.batches import CropDataset, make_datasets
from merlib.training.crops import synthetic_crop_set
from merlib.training.engine import (derive_seed, make_optimizer, recalibrate_batchnorm,
                                    seed_everything)


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.norm(self.conv(x)).mean((2, 3)))


@pytest.mark.parametrize("cfg", [TrainConfig(l2=0.2), FinetuneConfig(l2=0.2, lr=0.01)])
def test_weight_decay_groups_equal_explicit_penalty(cfg):
    torch.manual_seed(0)
    a = _Tiny()
    b = copy.deepcopy(a)
    x, y = torch.rand(5, 1, 6, 6), torch.tensor([0, 1, 2, 0, 1])
    # a: the paper's loss, CE + l2 * sum(w**2) over conv and linear weights, no decay.
    opt_a = make_optimizer(a, cfg.replace(l2=0.0))
    loss = nn.functional.cross_entropy(a(x), y) + cfg.l2 * sum(p.pow(2).sum() for p in l2_parameters(a))
    loss.backward()
    opt_a.step()
    # b: CE only, decay through the parameter groups.
    opt_b = make_optimizer(b, cfg)
    nn.functional.cross_entropy(b(x), y).backward()
    opt_b.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    decayed = {id(p) for g in opt_b.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(b.conv.weight), id(b.fc.weight)}


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "outer", 3, 5) == derive_seed(0, "outer", 3, 5)
    seeds = {derive_seed(0, "outer", f, g) for f in range(10) for g in range(-1, 5)}
    assert len(seeds) == 60 and all(0 <= s < 2**31 for s in seeds)
    assert derive_seed(0, 1) != derive_seed(0, "1") and derive_seed(0, 1) != derive_seed(1, 1)


def test_seed_everything_asks_for_deterministic_kernels_on_cpu_and_gpu(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seed_everything(3, 1)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()  # fail, never vary
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a caller's own choice is kept
    seed_everything(3, 1)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def _batches(n: int = 12):
    torch.manual_seed(1)
    return torch.rand(n, 1, 6, 6) * 3 + 2, torch.arange(n) % 3


def test_batchnorm_recalibration_gives_the_statistics_of_the_final_weights():
    x, y = _batches()
    dataset = CropDataset((x[:, 0] * 20).to(torch.uint8).numpy(), y.numpy(), image_size=6)
    model = _Tiny()
    model.norm.running_mean.fill_(7.0)  # stale statistics, as after a short training
    model.norm.running_var.fill_(9.0)
    n = recalibrate_batchnorm(model, dataset, torch.device("cpu"), batch_size=4,
                              generator=torch.Generator().manual_seed(0))
    assert n == 1 and model.norm.momentum == 0.1 and model.training  # restored
    with torch.no_grad():
        h = model.conv(dataset.images.float() / 255)  # what the norm sees
    # Equal-size batches: the average of batch means is the mean over all crops.
    assert torch.allclose(model.norm.running_mean, h.mean((0, 2, 3)), atol=1e-5)
    assert model.norm.num_batches_tracked == 3
    # Kept modules (stages frozen to the end) keep their statistics.
    model.norm.running_mean.fill_(7.0)
    recalibrate_batchnorm(model, dataset, torch.device("cpu"), 4, torch.Generator(), keep=(model.norm,))
    assert torch.all(model.norm.running_mean == 7.0)


@pytest.mark.parametrize("balance", ["augment", "sampler", "none"])
def test_class_balancing_by_augmentation_is_the_default(balance):
    full = synthetic_crop_set(2, 9, 32)
    y = full.y
    crops = full.subset(np.r_[np.flatnonzero(y == 0), np.flatnonzero(y == 1)[:3], np.flatnonzero(y == 2)[:2]])
    assert FinetuneConfig().balance == TrainConfig().balance == "augment"
    cfg = FinetuneConfig(arch="mobilevit_xxs", image_size=32, balance=balance)
    torch.manual_seed(0)
    model = create_backbone("mobilevit_xxs", image_size=32)
    train, plain = make_datasets(crops, cfg, model, torch.Generator().manual_seed(0))
    counts = np.bincount(train.labels.numpy(), minlength=3).tolist()
    assert np.bincount(crops.y).tolist() == [6, 3, 2]
    assert counts == ([6, 6, 6] if balance == "augment" else [6, 3, 2])
    assert len(plain) == len(crops)  # the evaluation view is never augmented
    # The originals come first, unchanged; the new ones are shifts or flips of them.
    assert torch.equal(train.images[:len(crops)], plain.images)
    again, _ = make_datasets(crops, cfg, model, torch.Generator().manual_seed(0))
    assert torch.equal(again.images, train.images)  # seeded


def test_balance_setting_is_checked():
    with pytest.raises(ConfigError, match=r"balance: expected one of \('augment', 'sampler', 'none'\), got 'yes'"):
        FinetuneConfig(balance="yes")
