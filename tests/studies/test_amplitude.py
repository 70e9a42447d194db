"""Amplitude study: roots differing only in amplitude, pixel units, thresholds, jitter."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from merlib.errors import ConfigError, DataLayoutError
from merlib.studies import amplitude as amp


def _truth(folder, scale: float, *, label_of_row0: str = "negative"):
    folder.mkdir(parents=True, exist_ok=True)
    rows = pd.DataFrame({
        "dataset": ["casme2", "casme2", "samm"], "subject": ["sub01", "sub01", "006"],
        "sample": ["EP01", "EP02", "006_1"], "label": [label_of_row0, "positive", "surprise"],
        "emotion": ["disgust", "happiness", "surprise"], "aus": ["9", "12", "1+2"],
        "amplitude_iod": np.round(np.array([0.02, 0.03, 0.04]) * scale, 5),
        "source_faces": ["a+b", "a+b", "c+d"], "apex_frame": [5, 6, 7], "onset_frame": [1, 2, 3],
        "offset_frame": [9, 9, 9]})
    rows.to_csv(folder / "SYNTHME_truth.csv", index=False)
    return folder


def test_same_clips_gives_amplitudes_side_by_side(tmp_path):
    roots = {1.0: _truth(tmp_path / "a1", 1.0), 3.0: _truth(tmp_path / "a3", 3.0)}
    t = amp.check_same_clips(roots)
    assert list(t["amp_1"]) == [0.02, 0.03, 0.04]
    np.testing.assert_allclose(t["amp_3"], [0.06, 0.09, 0.12])


def test_roots_that_differ_beyond_amplitude_are_refused(tmp_path):
    roots = {1.0: _truth(tmp_path / "a1", 1.0), 3.0: _truth(tmp_path / "a3", 3.0, label_of_row0="surprise")}
    with pytest.raises(DataLayoutError, match=r"a3: truth row 0 \(EP01\) differs .* beyond the amplitude"):
        amp.check_same_clips(roots)


def test_amplitudes_not_in_the_ratio_of_the_scales_are_refused(tmp_path):
    roots = {1.0: _truth(tmp_path / "a1", 1.0), 3.0: _truth(tmp_path / "a3", 2.0)}
    with pytest.raises(DataLayoutError, match="amplitude 0.04 is not 3/1"):
        amp.check_same_clips(roots)


def test_pixels_at_the_model_input():
    # The crop is 2.5 IOD wide: at 64 px one IOD is 25.6 px.
    assert amp.amplitude_pixels(0.03, 64) == pytest.approx(0.768)
    assert amp.amplitude_pixels(0.15, 128) == pytest.approx(7.68)
    np.testing.assert_allclose(amp.amplitude_pixels(np.array([0.1, 0.2]), 64), [2.56, 5.12])


def test_synth_root_reuses_a_complete_matching_root_and_refuses_big_amplitudes(tmp_path):
    from merlib.synth import SynthConfig

    cfg = SynthConfig(seed=0, micro_subjects=12, macro_subjects=4, amplitude_scale=2.0)
    done = tmp_path / "mine"
    done.mkdir()
    (done / "SYNTHME.json").write_text(json.dumps({"complete": True, **cfg.record()}))
    got = amp.synth_root(tmp_path / "base", 2.0, micro_subjects=12, macro_subjects=4, reuse=[done])
    assert got == done
    with pytest.raises(ConfigError, match=r"amplitude: expected a number in \(0, 5\]"):
        amp.synth_root(tmp_path / "base", 6.0)


def _predictions(n_subjects: int, good: bool) -> pd.DataFrame:
    labels = np.array(["negative", "positive", "surprise"] * (2 * n_subjects))
    subj = np.repeat([f"s{i:02d}" for i in range(n_subjects)], 6)
    # Not good: always "negative", i.e. the majority class itself (random guessing would
    # beat the majority's UF1 of 0.22).
    pred = labels.copy() if good else np.full(len(labels), "negative")
    return pd.DataFrame({"dataset": "casme2", "subject": subj, "label": labels, "pred_svm": pred,
                         "pred_majority": "negative"})


def test_study_table_and_threshold():
    tables = []
    for scale, good in ((1.0, False), (3.0, True), (5.0, True)):
        preds = _predictions(10, good)
        tables.append(amp.study_table(preds, scale, np.full(len(preds), 0.03 * scale), 64, n_resamples=200))
    table = pd.concat(tables, ignore_index=True)
    m = table[table["classifier"] == "svm"].set_index("scale")
    assert m.loc[3.0, "uf1"] == 1.0 and bool(m.loc[3.0, "beats_majority"])
    assert not bool(m.loc[1.0, "beats_majority"])
    assert m.loc[5.0, "amp_px"] == pytest.approx(0.15 * 64 / 2.5)
    first = amp.threshold(table)
    assert first["scale"].tolist() == [3.0] and first["image_size"].tolist() == [64]


def test_threshold_is_nan_when_nothing_beats_the_majority():
    preds = _predictions(6, False)
    table = amp.study_table(preds, 1.0, np.full(len(preds), 0.03), 64, n_resamples=200)
    assert np.isnan(amp.threshold(table)["scale"].iloc[0])
    with pytest.raises(ConfigError, match="table: missing columns"):
        amp.threshold(table.drop(columns="beats_majority"))


def test_landmark_jitter_on_the_tiny_root(synth_root):
    from merlib.training.crops import prepare_crop_sets

    crops = prepare_crop_sets(synth_root, sets=["composite"], allow_missing=True, workers=1)["composite"]
    j = amp.landmark_jitter(synth_root, crops.meta, n_clips=3, frames=4)
    assert len(j) == 3
    measured = j[j["jitter_iod"].notna()]
    # A clip with fewer than 3 still frames (short SMIC clips) has no jitter, never a fake one.
    assert len(measured) >= 2 and (measured["n_frames"] >= 3).all()
    assert (j.loc[j["jitter_iod"].isna(), "n_frames"] < 3).all()
    # dlib on clean simulated frames: a fraction of a percent to a few percent of the IOD.
    assert ((measured["jitter_iod"] > 0.0005) & (measured["jitter_iod"] < 0.05)).all()
    assert (measured["iod_px"] > 30).all()


def test_expression_weight_is_zero_at_onset_and_offset_one_at_apex():
    w = amp.expression_weight(np.array([10, 15, 20, 30, 40]), 10, 20, 40)
    np.testing.assert_allclose(w, [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-12)


def test_chance_uf1_of_balanced_and_unbalanced_labels():
    assert amp.chance_uf1(["negative", "positive", "surprise"] * 10) == pytest.approx(1 / 3)
    # 70 / 30 / 31 like the SynthME composite: below 1/3, above the majority's 0.23.
    y = ["negative"] * 70 + ["positive"] * 30 + ["surprise"] * 31
    assert 0.30 < amp.chance_uf1(y) < 1 / 3


def test_method_minus_each_reference_is_paired_and_judged_by_its_interval():
    preds = _predictions(10, True)
    rng = np.random.default_rng(0)
    # A reference right on 4 of 6 samples of every subject, and the perfect method.
    wrong = preds.groupby("subject").cumcount() % 3 == 0
    preds["pred_hog_svm"] = preds["label"].where(~wrong, "surprise")
    preds["pred_pixels_lr"] = preds["label"]
    preds = preds.iloc[rng.permutation(len(preds))].reset_index(drop=True)
    table = amp.study_table(preds, 1.0, np.full(len(preds), 0.03), 64,
                            references=["pred_majority", "pred_hog_svm", "pred_pixels_lr"], n_resamples=200)
    t = table.set_index("classifier")
    from sklearn.metrics import f1_score

    hog = f1_score(preds["label"], preds["pred_hog_svm"], average="macro")
    assert t.loc["hog_svm", "m_uf1"] == pytest.approx(1.0 - hog)
    assert 0 < t.loc["hog_svm", "m_uf1_lo"] <= t.loc["hog_svm", "m_uf1_hi"]
    # Identical predictions: a difference of exactly 0 on every resample.
    assert t.loc["pixels_lr", ["m_uf1", "m_uf1_lo", "m_uf1_hi"]].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(t.loc["majority", "m_uf1"]) and np.isnan(t.loc["svm", "m_uf1"])
    assert amp.versus_reference(t.loc["hog_svm", "m_uf1_lo"], t.loc["hog_svm", "m_uf1_hi"]) == "beats"
    assert amp.versus_reference(0.0, 0.0) == "matches"
    assert amp.versus_reference(-0.2, -0.01) == "trails"


def test_run_folder_is_one_per_settings(tmp_path):
    from merlib.config import get_profile

    cfg = get_profile("smoke").micro
    a = amp.run_folder(tmp_path, "loso_64px_scratch", cfg)
    assert a == amp.run_folder(tmp_path, "loso_64px_scratch", cfg) and a.parent == tmp_path
    assert a.name.startswith("loso_64px_scratch_")
    assert amp.run_folder(tmp_path, "loso_64px_scratch", cfg.replace(drop_rate=0.2)) != a


def test_head_views_of_a_plain_and_an_early_grid_run():
    preds = _predictions(6, True)
    (view,) = amp.head_views(preds, "apex")
    assert view[0] == "apex" and view[1] is preds and view[2] == ["pred_softmax"]
    # An early-grid run: the grid head right everywhere, the pooled head wrong on a third.
    wrong = preds.groupby("subject").cumcount() % 3 == 0
    grid = preds.assign(pred_svm=preds["label"], pred_svm_pooled=preds["label"].where(~wrong, "surprise"))
    (k1, p1, e1), (k2, p2, e2) = amp.head_views(grid, "difference")
    assert (k1, e1, k2, e2) == ("difference", ["pred_softmax"], "difference+grid", ["pred_svm_pooled"])
    assert (p1["pred_svm"] == grid["pred_svm_pooled"]).all() and "pred_svm_pooled" not in p1.columns
    t = amp.study_table(p2, 1.0, np.full(len(p2), 0.03), 64, references=["pred_majority", *e2],
                        n_resamples=200).set_index("classifier")
    from sklearn.metrics import f1_score

    pooled = f1_score(grid["label"], grid["pred_svm_pooled"], average="macro")
    assert t.loc["svm", "uf1"] == 1.0
    assert t.loc["svm_pooled", "m_uf1"] == pytest.approx(1.0 - pooled)
