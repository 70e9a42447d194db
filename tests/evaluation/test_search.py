"""Grid search: inner selection never sees the test subject; the leaky variant is labelled;
Dask and serial runs choose the same point."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.config import SearchConfig
from merlib.evaluation import protocol, search
from merlib.evaluation.search import INNER_LABEL, LEAKY_LABEL, grid_search
from merlib.evaluation.splits import loso_folds
from tests.toy import tiny_crops, tiny_finetune_cfg

GRID = SearchConfig(batch_size=(8,), lr=(0.001, 0.01), epochs=(1,), inner_splits=2)


@pytest.fixture
def fake_fit(monkeypatch):
    """Replaces training by a stub: right answers when lr == 0.01, all-'negative' otherwise."""
    calls = []

    def fit_predict(crops, train_idx, test_idx, cfg, transfer_state, seed):
        calls.append((crops.groups[train_idx], crops.groups[test_idx], cfg, seed))
        y = crops.y[test_idx]
        pred = y.copy() if cfg.lr == 0.01 else np.zeros_like(y)
        return {"test_idx": np.asarray(test_idx), "pred_svm": pred, "pred_softmax": np.zeros_like(y),
                "proba": np.full((len(y), 3), 1 / 3), "svm": {"C": 1.0, "kernel": "linear", "inner_uf1": 0.0},
                "curves": pd.DataFrame({"epoch": [1], "train_loss": [1.0]}), "seconds": 0.0}

    monkeypatch.setattr(search, "fit_predict", fit_predict)
    monkeypatch.setattr(protocol, "fit_predict", fit_predict)
    return calls


def test_inner_selection_never_uses_the_test_subject(fake_fit):
    crops = tiny_crops(n_subjects=5, per_subject=3)
    folds = loso_folds(crops.groups)
    res = grid_search(crops, tiny_finetune_cfg(), GRID, folds=folds, n_workers=1)
    assert len(fake_fit) == 5 * 2 * 2  # folds x grid points x inner folds
    for f in folds:
        mine = [c for c in fake_fit if f.test_subject not in set(c[0]) | set(c[1])]
        assert len(mine) >= 4  # this fold's inner tasks exclude its test subject...
    for train_groups, val_groups, _, _ in fake_fit:
        assert not set(train_groups) & set(val_groups)
    assert res.label == INNER_LABEL and (res.chosen["grid_index"] == 1).all()
    assert res.params_for(0) == (1, {"batch_size": 8, "epochs": 1, "lr": 0.01})
    assert len(res.scores) == 5 * 2 and set(res.scores["fold"]) == set(range(5))


def test_every_inner_task_excludes_its_outer_test_subject(fake_fit):
    crops = tiny_crops(n_subjects=4, per_subject=3)
    folds = loso_folds(crops.groups)
    grid_search(crops, tiny_finetune_cfg(), GRID, folds=folds[:1], n_workers=1)
    for train_groups, val_groups, _, _ in fake_fit:
        assert folds[0].test_subject not in set(train_groups) | set(val_groups)


def test_leaky_variant_is_labelled_everywhere(fake_fit, tmp_path):
    crops = tiny_crops(n_subjects=4, per_subject=3)
    leaky = SearchConfig(**{**GRID.as_dict(), "selection": "leaky_test"})
    res = protocol.evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, search=leaky, n_workers=1)
    assert res.selection == LEAKY_LABEL and res.selection.startswith("LEAKY")
    assert len(fake_fit) == 4 * 2  # each grid point's full LOSO; no retraining afterwards
    assert (res.metrics["selection"] == LEAKY_LABEL).all()
    assert res.score("uf1") == 1.0  # the stub is perfect at lr 0.01, and leaky picks it
    for name in ("metrics.csv", "search_scores.csv", "search_chosen.csv"):
        assert (pd.read_csv(tmp_path / name)["selection"] == LEAKY_LABEL).all()
    assert "LEAKY" in (tmp_path / "run.json").read_text()


def test_dask_chooses_the_same_point_as_serial():
    crops = tiny_crops(n_subjects=4, per_subject=6)
    folds = loso_folds(crops.groups)[:2]
    cfg = tiny_finetune_cfg()
    serial = grid_search(crops, cfg, GRID, folds=folds, n_workers=1)
    dask = grid_search(crops, cfg, GRID, folds=folds, n_workers=2, processes=False)
    pd.testing.assert_frame_equal(serial.chosen, dask.chosen)
    pd.testing.assert_frame_equal(serial.scores, dask.scores)
