"""Robustness study: perturbed apex frames through the unchanged pre-processing and model."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from merlib.errors import ConfigError
from merlib.studies import robustness as rob


@pytest.fixture(scope="module")
def tiny_crops(synth_root):
    from merlib.training.crops import prepare_crop_sets

    return prepare_crop_sets(synth_root, sets=["composite"], allow_missing=True, workers=1)["composite"]


def _plain_row(crops) -> int:
    m = crops.meta
    ok = (m["status"] == "ok") & (m["landmark_source"].fillna("").astype(str).isin(["", "nan"]))
    return int(np.flatnonzero(ok.to_numpy())[0])


def test_clean_condition_reproduces_the_stored_crop_and_alignment_undoes_rotation(synth_root, tiny_crops):
    from merlib.faces.pipeline import read_grey

    i = _plain_row(tiny_crops)
    grey = read_grey(synth_root / tiny_crops.meta["frame_path"].iloc[i])
    out, reasons = rob.perturbed_crops(grey, [("clean", 0.0), ("rotation", 20.0), ("occlude_mouth", 0.3)])
    assert reasons[0] == "" and np.array_equal(out[0], tiny_crops.X[i])
    clean = out[0].astype(float)
    size = clean.shape[0]
    # The same crop rotated by 20 degrees, had the alignment not levelled the eyes again.
    turned = cv2.warpAffine(out[0], cv2.getRotationMatrix2D((size / 2, size / 2), 20, 1.0), (size, size))
    assert out[1] is not None
    assert np.abs(out[1] - clean).mean() < 0.5 * np.abs(turned - clean).mean()
    # The band sits on the mouth: the crop's lower part changes, its upper third does not much
    # (a band of 1 IOD makes dlib lose the face on these frames: that is a failure, counted apart).
    diff = np.abs(out[2].astype(float) - clean)
    assert diff[int(0.6 * size):].mean() > 5 * diff[: size // 3].mean()


def test_a_frame_without_a_face_fails_every_condition():
    out, reasons = rob.perturbed_crops(np.full((240, 320), 128, np.uint8), [("clean", 0.0), ("noise", 8.0)])
    assert out == [None, None]
    assert all(r.startswith("clean frame failed: no face") for r in reasons)


def test_grid_errors_name_the_perturbation():
    with pytest.raises(ConfigError, match="unknown perturbation 'fog'"):
        rob.check_grid({"fog": (1,)})
    with pytest.raises(ConfigError, match=r"grid\['noise'\]: expected at least one strength"):
        rob.check_grid({"noise": ()})
    assert rob.conditions({"noise": (8, 16)}) == [("clean", 0.0), ("noise", 8.0), ("noise", 16.0)]


def test_pick_folds_keeps_every_dataset():
    groups = np.array([f"casme2/s{i}" for i in range(8)] + [f"samm/s{i}" for i in range(10)]
                      + [f"smic/s{i}" for i in range(6)])
    picked = rob.pick_folds(groups, 8, seed=0)
    tested = {sorted(set(groups))[i].split("/")[0] for i in picked}
    assert tested == {"casme2", "samm", "smic"} and 6 <= len(picked) <= 9
    assert rob.pick_folds(groups, None) == list(range(24))


def test_fold_study_predicts_clean_crops_like_the_loso_fold_and_is_reused(synth_root, tiny_crops, tmp_path):
    from merlib.config import get_profile
    from merlib.evaluation.fold import fit_predict, outer_seed
    from merlib.evaluation.splits import loso_folds

    cfg = get_profile("smoke").micro.replace(epochs=1, image_size=32, svm_C=(1.0,), num_threads=1)
    fold = loso_folds(tiny_crops.groups)[0]
    grid = {"noise": (16.0,), "occlude_mouth": (1.0,)}
    rows = rob.run_robustness(tiny_crops, cfg, synth_root, grid, tmp_path / "r", folds=[0])
    assert len(rows) == 3 * len(fold.test_idx)
    assert set(rows["perturbation"]) == {"clean", "noise", "occlude_mouth"}
    ref = fit_predict(tiny_crops, fold.train_idx, fold.test_idx, cfg, None, outer_seed(cfg.seed, 0))
    from merlib.data.schema import LABELS

    clean = rows[rows["perturbation"] == "clean"]
    assert (clean["status"] == "ok").all()
    assert clean["pred"].tolist() == [LABELS[c] for c in ref["pred_svm"]]
    stamp = (tmp_path / "r" / "fold_0.csv").stat().st_mtime_ns
    again = rob.run_robustness(tiny_crops, cfg, synth_root, grid, tmp_path / "r", folds=[0])
    assert (tmp_path / "r" / "fold_0.csv").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(again.reset_index(drop=True), rows.reset_index(drop=True), check_dtype=False)
    with pytest.raises(ConfigError, match="holds a robustness study of other crops, settings or grid"):
        rob.run_robustness(tiny_crops, cfg, synth_root, {"noise": (8.0,)}, tmp_path / "r", folds=[0])


def test_summary_counts_failures_apart_from_misclassifications():
    lab = ["negative", "positive", "surprise"] * 4
    subj = [f"s{i // 3}" for i in range(12)]
    base = pd.DataFrame({"dataset": "casme2", "subject": subj, "sample": [f"e{i}" for i in range(12)], "label": lab})
    clean = base.assign(perturbation="clean", strength=0.0, status="ok", pred=lab)
    bad_pred = list(lab)
    bad_pred[0] = "positive"  # one misclassified crop
    status = ["failed", "failed"] + ["ok"] * 10
    noisy = base.assign(perturbation="noise", strength=32.0, status=status,
                        pred=["negative", "negative"] + bad_pred[2:])
    noisy.loc[0, "pred"] = "negative"
    s = rob.summarise(pd.concat([clean, noisy]), n_resamples=200).set_index("perturbation")
    assert s.loc["clean", "uf1"] == 1.0 and s.loc["clean", "failed"] == 0
    assert s.loc["noise", "failed"] == 2 and s.loc["noise", "wrong"] == 0
    assert s.loc["noise", "d_uf1"] < 0 and s.loc["clean", "d_uf1_lo"] == 0 == s.loc["clean", "d_uf1_hi"]
    assert rob.absorbed(s.reset_index()) == []
    with pytest.raises(ConfigError, match="condition noise 32 does not hold the clean condition's samples"):
        rob.summarise(pd.concat([clean, noisy.iloc[:6]]), n_resamples=50)
    assert rob.worst(s.reset_index(), 1)["perturbation"].tolist() == ["noise"]


def test_difference_input_perturbs_onset_and_apex_alike(synth_root, tiny_crops, tmp_path):
    """The clean condition rebuilds the difference image the model was trained on; a
    brightness shift (the same on both frames) cancels in the difference; the fold models
    predict the clean images as the LOSO fold does, serially or two folds at a time."""
    from dataclasses import replace

    from merlib.config import get_profile
    from merlib.data.schema import LABELS
    from merlib.evaluation.fold import fit_predict, outer_seed
    from merlib.evaluation.splits import loso_folds
    from merlib.faces.clips import composite_rows, key_frame_paths
    from merlib.faces.config import AlignConfig
    from merlib.faces.pipeline import read_grey
    from merlib.training.difference import difference_crops

    diff, left_out = difference_crops(tiny_crops, synth_root, size=32, cache_dir=tmp_path / "clips")
    assert len(left_out) == 0 and diff.X.shape[1:] == (32, 32)
    row = composite_rows(diff.meta.iloc[[0]], synth_root).iloc[0]
    onset_path, apex_path = key_frame_paths(row, synth_root)
    assert onset_path != apex_path
    out, reasons = rob.perturbed_crops(read_grey(apex_path), [("clean", 0.0), ("brightness", 20.0), ("noise", 16.0)],
                                       replace(AlignConfig(), crop_size=32), onset=read_grey(onset_path))
    assert reasons == ["", "", ""] and np.array_equal(out[0], diff.X[0])
    # Added to both frames, a constant leaves the difference as it was, up to rounding
    # at the clipped bright end; noise drawn anew per frame does not cancel.
    assert np.abs(out[1].astype(int) - out[0]).mean() < 1.0
    assert np.abs(out[2].astype(int) - out[0]).mean() > 10 * np.abs(out[1].astype(int) - out[0]).mean()

    cfg = get_profile("smoke").micro.replace(epochs=1, image_size=32, svm_C=(1.0,), num_threads=1)
    grid = {"brightness": (20.0,)}
    serial = rob.run_robustness(diff, cfg, synth_root, grid, tmp_path / "s", folds=[0, 1], input="difference")
    both = rob.run_robustness(diff, cfg, synth_root, grid, tmp_path / "p", folds=[0, 1], input="difference",
                              n_workers=2)
    pd.testing.assert_frame_equal(both, serial)
    for k in (0, 1):
        fold = loso_folds(diff.groups)[k]
        ref = fit_predict(diff, fold.train_idx, fold.test_idx, cfg, None, outer_seed(cfg.seed, k))
        clean = serial[(serial["perturbation"] == "clean") & (serial["fold"] == k)]
        assert clean["pred"].tolist() == [LABELS[c] for c in ref["pred_svm"]]
    with pytest.raises(ConfigError, match=r"input: expected one of \('apex', 'difference'\), got 'flow'"):
        rob.run_robustness(diff, cfg, synth_root, grid, tmp_path / "x", folds=[0], input="flow")


def test_study_folder_is_one_per_settings(tiny_crops, tmp_path):
    from merlib.config import get_profile

    cfg = get_profile("smoke").micro.replace(image_size=32)
    grid = {"noise": (16.0,)}
    a = rob.study_folder(tmp_path, tiny_crops, cfg, grid, input="difference")
    assert a == rob.study_folder(tmp_path, tiny_crops, cfg, grid, input="difference")
    assert a.parent == tmp_path and a.name.startswith("difference_32px_")
    others = {rob.study_folder(tmp_path, tiny_crops, cfg.replace(drop_rate=0.2), grid, input="difference"),
              rob.study_folder(tmp_path, tiny_crops, cfg, {"noise": (8.0,)}, input="difference"),
              rob.study_folder(tmp_path, tiny_crops, cfg, grid, input="apex")}
    assert a not in others and len(others) == 3
