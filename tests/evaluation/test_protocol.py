"""LOSO end to end on a tiny crop set: pooled predictions, files, determinism, transfer."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from merlib.data.schema import LABELS
from merlib.evaluation.protocol import evaluate_loso
from merlib.models.backbone import create_backbone, feature_extractor_state
from tests.toy import tiny_crops, tiny_finetune_cfg


@pytest.fixture(scope="module")
def crops():
    return tiny_crops(n_subjects=4, per_subject=6)


@pytest.fixture(scope="module")
def first(crops, tmp_path_factory):
    return evaluate_loso(crops, tiny_finetune_cfg(), tmp_path_factory.mktemp("loso"), n_workers=1)


def test_one_pooled_prediction_per_sample_and_files(first, crops):
    p = first.predictions
    assert len(p) == len(crops) and (p["sample"].to_numpy() == crops.meta["sample"].to_numpy()).all()
    assert set(p["pred_svm"]) <= set(LABELS) and (p["fold"] >= 0).all()
    assert (p.groupby("fold")["subject"].nunique() == 1).all()
    assert set(first.metrics["part"]) == {"composite", "casme2", "samm", "smic"}
    assert set(first.metrics["classifier"]) == {"svm", "softmax"}
    out = first.out_dir
    for name in ("predictions.csv", "metrics.csv", "folds.csv", "curves.csv", "run.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    assert record["provenance"]["data_fingerprint"] == crops.fingerprint()
    assert record["selection"].startswith("hyper-parameters fixed")
    assert pd.read_csv(out / "predictions.csv").shape[0] == len(crops)


def test_two_runs_with_one_seed_give_identical_metrics(first, crops):
    again = evaluate_loso(crops, tiny_finetune_cfg(), n_workers=1)
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    cols = ["pred_svm", "pred_softmax", "p_negative", "p_positive", "p_surprise"]
    pd.testing.assert_frame_equal(first.predictions[cols], again.predictions[cols])


def test_transfer_changes_the_starting_point(first, crops):
    torch.manual_seed(7)
    state = feature_extractor_state(create_backbone("mobilevit_xxs", image_size=64))
    cfg = tiny_finetune_cfg(unfreeze_start=1.0, unfreeze_end=1.0)
    res = evaluate_loso(crops, cfg, transfer=state, n_workers=1)
    assert not res.predictions["p_negative"].equals(first.predictions["p_negative"])
    assert (res.curves["frozen_stages"] > 0).all()  # frozen at first, as transferred weights are


def test_early_grid_run_keeps_the_paper_head_of_the_same_networks(first, crops):
    """svm_early_grid changes only the SVM's input: the same networks are trained, and
    the SVM on the pooled vector alone (pred_svm_pooled) is the plain run's pred_svm."""
    grid = evaluate_loso(crops, tiny_finetune_cfg(svm_early_grid=2), n_workers=1)
    p, q = first.predictions, grid.predictions
    pd.testing.assert_frame_equal(p[["pred_softmax", "p_negative", "p_positive", "p_surprise"]],
                                  q[["pred_softmax", "p_negative", "p_positive", "p_surprise"]])
    assert (q["pred_svm_pooled"] == p["pred_svm"]).all()
    assert "pred_svm_pooled" not in p.columns
    assert set(grid.metrics["classifier"]) == {"svm", "softmax", "svm_pooled"}
