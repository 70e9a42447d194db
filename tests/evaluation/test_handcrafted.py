"""Simple references: feature shapes on known structure, LOSO folds, aligned clips."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.evaluation import handcrafted as hc
from merlib.evaluation.bootstrap import bootstrap_table
from merlib.evaluation.splits import loso_folds
from merlib.training.crops import synthetic_crop_set


@pytest.fixture(scope="module")
def crops():
    return synthetic_crop_set(n_subjects=6, per_subject=9, size=64, signal=60.0, seed=1)


def test_lbp_top_length_and_normalisation():
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (10, 64, 64), dtype=np.uint8)
    f = hc.lbp_top(clip)
    assert f.shape == (3 * 25 * 59,)
    hist = f.reshape(3, 25, 59)
    np.testing.assert_allclose(hist.sum(-1), 1.0, atol=1e-5)


def test_lbp_top_of_known_structure():
    # A horizontal grey ramp, first static, then sliding along x: the motion changes the
    # codes of the XT plane; the YT plane (y constant, t monotone) stays one flat code.
    x = np.arange(64)
    ramp = np.tile(3 * x + 30, (64, 1)).astype(np.uint8)               # x ramp, constant in y
    static = np.repeat(ramp[None], 10, 0)
    # The ramp slides right one pixel per frame (no wrap-around: values stay in 3..219).
    moving = np.stack([np.tile(3 * (x - k) + 30, (64, 1)) for k in range(10)]).astype(np.uint8)
    fs, fm = hc.lbp_top(static).reshape(3, 25, 59), hc.lbp_top(moving).reshape(3, 25, 59)
    # XY plane of a static clip: one code everywhere inside (a pure horizontal ramp).
    assert (fs[0].max(-1) == 1.0).all()
    # YT plane: y and t are both constant directions for this clip -> one flat code.
    assert (fs[2].max(-1) == 1.0).all()
    # Motion along x changes the XT plane's histograms, not the YT plane's flatness.
    assert np.abs(fs[1] - fm[1]).sum() > 1.0
    assert (fm[2].max(-1) == 1.0).all()


def test_hoof_follows_the_flow_direction():
    rng = np.random.default_rng(0)
    base = cv_blur(rng.integers(0, 256, (64, 64)).astype(np.uint8))
    shifted = np.roll(base, 2, axis=1)      # everything moves +2 px in x (orientation 0)
    f = hc.hoof(base, shifted).reshape(25, 8)
    centre = f[12]                          # the middle block, away from wrap-around
    assert centre.argmax() in (0, 7)
    assert centre[[0, 7]].sum() > 0.8
    np.testing.assert_allclose(f.sum(-1)[f.sum(-1) > 0], 1.0, atol=1e-5)


def test_optical_strain_is_zero_for_rigid_motion_and_the_stretch_rate_otherwise():
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    np.testing.assert_allclose(hc.optical_strain(np.full_like(x, 2.0), np.full_like(x, -1.0)), 0.0)
    w = 0.05                                 # a small rotation: the skin is not stretched
    np.testing.assert_allclose(hc.optical_strain(-w * (y - 16), w * (x - 16)), 0.0, atol=1e-12)
    np.testing.assert_allclose(hc.optical_strain(0.1 * x, np.zeros_like(x)), 0.1)
    # shear du/dy = 0.2: e_xy = e_yx = 0.1, magnitude sqrt(2) * 0.1
    np.testing.assert_allclose(hc.optical_strain(0.2 * y, np.zeros_like(x)), np.sqrt(2) * 0.1)


def _expanded(base: np.ndarray, centre: tuple[float, float], radius: float, gain: float) -> np.ndarray:
    """``base`` with a smooth local expansion around ``centre`` (a bulge: the skin stretches)."""
    import cv2

    h, w = base.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = x - centre[0], y - centre[1]
    bump = np.exp(-(dx ** 2 + dy ** 2) / (2 * radius ** 2))
    # Each output pixel samples nearer the centre: content moves outwards.
    return cv2.remap(base, x - gain * bump * dx, y - gain * bump * dy, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def test_biwoof_weights_the_block_whose_skin_stretches():
    rng = np.random.default_rng(0)
    base = cv_blur(rng.integers(0, 256, (80, 80)).astype(np.uint8))
    moved = _expanded(base, (40, 40), radius=6.0, gain=0.25)
    f = hc.biwoof(base, moved)
    assert f.shape == (200,) and f.dtype == np.float32
    assert np.linalg.norm(f) == pytest.approx(1.0, abs=1e-5)
    per_block = np.linalg.norm(f.reshape(25, 8), axis=1)
    # The middle block of 5 x 5 leads; the bump's flanks reach its four neighbours; the
    # border blocks, where nothing stretches, are near zero.
    assert per_block.argmax() == 12 and per_block[12] > 0.5
    assert per_block.reshape(5, 5)[[0, 4]].max() < 0.05
    # Outward motion in the middle block: every orientation bin is used, none dominates.
    assert (f.reshape(25, 8)[12] > 0).sum() >= 6
    # A pair without motion has nothing to weight.
    assert not hc.biwoof(base, base).any()
    with pytest.raises(ConfigError, match="onset, apex"):
        hc.biwoof(base, base[:40])


def test_biwoof_orientation_bins_start_at_minus_180_degrees():
    rng = np.random.default_rng(1)
    base = cv_blur(rng.integers(0, 256, (80, 80)).astype(np.uint8))
    # Stretch the left half leftwards (content at x < 40 moves left, increasingly).
    import cv2

    y, x = np.mgrid[0:80, 0:80].astype(np.float32)
    shift = np.where(x < 40, 0.04 * (40 - x), 0.0).astype(np.float32)  # up to 1.6 px
    moved = cv2.remap(base, x + shift, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    block = hc.biwoof(base, moved).reshape(25, 8)[11]  # middle row, second column
    # Leftward motion is 180 degrees: the first bin [-180, -135) or the last [135, 180).
    assert block[[0, 7]].sum() > 0.7 * block.sum()


def cv_blur(x: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(x, (7, 7), 2.0)


def test_pixel_and_hog_features(crops):
    assert hc.pixel_features(crops.X, 32).shape == (len(crops), 32 * 32)
    assert hc.pixel_features(crops.X).max() <= 1.0
    assert hc.hog_features(crops.X).shape == (len(crops), 1764)


def test_references_use_the_loso_folds_and_learn_a_clear_cue(crops):
    folds = loso_folds(crops.groups)
    pix = hc.pixel_lr_predictions(crops, folds, size=32, C=0.1)
    assert list(pix.columns) == ["dataset", "subject", "sample", "label", "fold", "pred_pixels_lr",
                                 "C_pixels_lr"]
    # Every row is predicted in the fold whose test subject it is.
    for f in folds:
        assert (pix.loc[f.test_idx, "fold"] == f.index).all()
    assert set(pix["pred_pixels_lr"]) <= set(LABELS)
    maj = hc.majority_predictions(crops.meta, folds)
    table = bootstrap_table(hc.merge_predictions(maj, pix))
    comp = table[table["part"] == "composite"].set_index("classifier")
    # A 60-grey-level cue is easy for a linear model on pixels; majority is at 1/3 UF1 or below.
    assert comp.loc["pixels_lr", "uf1"] > 0.8
    assert comp.loc["majority", "uf1"] < 0.35


def _diagonal_bands(n_subjects: int = 6, per_subject: int = 9, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Two features where only a weakly regularised linear SVM separates the classes.

    Each class is a thin band along the diagonal, the bands 1 apart across it, and each
    class sits at its own end of the diagonal: the class means differ mostly *along* the
    bands. A strongly regularised SVM follows the means (C -> 0 gives the difference of
    class means) and mixes neighbouring bands; only a large C finds the thin gaps across
    them. Measured with GroupKFold(4) on these rows: UF1 0.48-0.78 for C <= 0.1, 1.0 for
    C >= 10 in every inner split.
    """
    rng = np.random.default_rng(seed)
    rows, X = [], []
    for s in range(n_subjects):
        for k in range(per_subject):
            c = k % len(LABELS)
            t = rng.uniform(-4, 4) + (c - 1) * 4.0              # position along the band
            off = (c - 1) * 1.0 + rng.uniform(-0.15, 0.15)      # across: the class
            X.append([t + off, t - off])
            rows.append({"dataset": "casme2", "subject": f"s{s}", "sample": f"s{s}_{k}", "label": LABELS[c]})
    return np.asarray(X), pd.DataFrame(rows)


def test_C_is_chosen_by_the_inner_search_on_training_subjects_only(monkeypatch):
    X, meta = _diagonal_bands()
    groups = (meta["dataset"] + "/" + meta["subject"]).to_numpy()
    # Only C = 100 separates the inner folds; it is neither the grid's first, middle
    # (the fallback without a search) nor last value.
    grid = (1e-3, 100.0, 1e-2, 0.1)
    searches = []
    real_search = hc.GridSearchCV

    class RecordingSearch(real_search):
        def fit(self, X_fit, y_fit=None, **kw):
            rows = [int(np.flatnonzero((X == x).all(1))[0]) for x in X_fit]
            searches.append((rows, [(np.asarray(a), np.asarray(b)) for a, b in self.cv]))
            return super().fit(X_fit, y_fit, **kw)

    monkeypatch.setattr(hc, "GridSearchCV", RecordingSearch)
    out = hc.loso_predict(X, meta, "x", kind="svm", C=grid)
    folds = loso_folds(groups)
    assert (out["C_x"] == 100.0).all()
    # The chosen C is the one each fold's model was fitted with: every test subject right.
    assert (out["pred_x"] == out["label"]).all()
    fixed = hc.loso_predict(X, meta, "x", kind="svm", C=1e-3)
    assert (fixed["pred_x"] != fixed["label"]).any()  # the choice matters on these rows

    # One search per outer fold, on that fold's training rows only, never its test subject.
    assert len(searches) == len(folds)
    for f, (rows, splits) in zip(folds, searches):
        assert sorted(rows) == sorted(f.train_idx.tolist())
        train_groups = groups[rows]
        assert f.test_subject not in set(train_groups)
        # Inner splits are subject-wise: no subject on both sides; every training
        # subject is validated on once.
        validated = []
        for fit_part, val_part in splits:
            assert not set(train_groups[fit_part]) & set(train_groups[val_part])
            validated += sorted(set(train_groups[val_part]))
        assert sorted(validated) == sorted(set(train_groups))


def test_loso_predict_is_deterministic(crops):
    feats = hc.pixel_features(crops.X, 16)
    a = hc.loso_predict(feats, crops.meta, "x", kind="svm", C=1.0)
    b = hc.loso_predict(feats, crops.meta, "x", kind="svm", C=1.0)
    pd.testing.assert_frame_equal(a, b)


def test_bad_input(crops):
    with pytest.raises(ConfigError, match=r"features: expected shape \(54, n_features\)"):
        hc.loso_predict(np.zeros((3, 4)), crops.meta, "x")
    with pytest.raises(ConfigError, match="kind"):
        hc.linear_pipeline("tree")
    with pytest.raises(ConfigError, match="clip: expected uint8"):
        hc.lbp_top(np.zeros((2, 64, 64), np.uint8))
    maj = hc.majority_predictions(crops.meta)
    with pytest.raises(ConfigError, match="table 1 does not hold the same rows"):
        hc.merge_predictions(maj, maj.iloc[::-1])


# ----------------------------------------------------------------- aligned clips
@pytest.fixture(scope="module")
def tiny_clips(synth_root, tmp_path_factory):
    from merlib.data.composite import megc2019_composite
    from merlib.faces.clips import ClipConfig, load_clips

    table = megc2019_composite(synth_root, allow_missing=True).table.head(4)
    cache = tmp_path_factory.mktemp("clips")
    return table, cache, load_clips(table, synth_root, clip_cfg=ClipConfig(size=48, n_frames=8),
                                    cache_dir=cache)


def test_clips_shapes_and_cache(synth_root, tiny_clips):
    from merlib.faces.clips import ClipConfig, load_clips

    table, cache, clips = tiny_clips
    assert clips.X.shape == (4, 8, 48, 48) and clips.X.dtype == np.uint8
    assert clips.key_frames.shape == (4, 2, 48, 48)
    assert clips.stats["computed"] == 4 and clips.report.empty
    assert (clips.meta["n_source_frames"] >= 2).all()
    assert len(list(cache.glob("*.npz"))) == 4
    again = load_clips(table, synth_root, clip_cfg=ClipConfig(size=48, n_frames=8), cache_dir=cache)
    assert again.stats == {**again.stats, "cached": 4, "computed": 0}
    np.testing.assert_array_equal(again.X, clips.X)
    # Another setting is another key: nothing is reused by mistake.
    other = load_clips(table.head(1), synth_root, clip_cfg=ClipConfig(size=32, n_frames=8), cache_dir=cache)
    assert other.stats["computed"] == 1 and other.X.shape == (1, 8, 32, 32)


def test_clip_key_follows_frame_content_not_size(synth_root, tiny_clips, tmp_path):
    """A regenerated root with the same file names and sizes (SMIC's BMP frames have a
    size fixed by their dimensions) must not be served the old root's clips."""
    import shutil

    from merlib.faces.clips import ClipConfig, clip_frame_paths, clip_key
    from merlib.faces.config import AlignConfig

    table, _, _ = tiny_clips
    row = table.iloc[0].to_dict()
    shutil.copytree(synth_root / row["clip_dir"], tmp_path / row["clip_dir"])
    settings = (AlignConfig(), ClipConfig(size=48, n_frames=8))
    key = clip_key(row, synth_root, *settings)
    assert clip_key(row, tmp_path, *settings) == key  # the same files wherever they are
    frame = clip_frame_paths(row, tmp_path)[-1][1]
    data = bytearray(frame.read_bytes())
    data[-3] ^= 0xFF
    frame.write_bytes(bytes(data))
    assert clip_key(row, tmp_path, *settings) != key


def test_clip_is_aligned_like_the_apex_crop(synth_root, tiny_clips):
    """The clip's apex frame equals the apex pipeline's crop at the same size."""
    from dataclasses import replace

    from merlib.faces.config import AlignConfig
    from merlib.faces.pipeline import process_frame

    table, _, clips = tiny_clips
    row = table.iloc[0]
    crop = process_frame(synth_root / row["apex_path"], replace(AlignConfig(), crop_size=48)).crop
    assert crop is not None
    np.testing.assert_array_equal(clips.key_frames[0, 1], crop)
    # Time resampling keeps the ends: first resampled frame is the aligned onset.
    np.testing.assert_array_equal(clips.X[0, 0], clips.key_frames[0, 0])


def test_clip_features_have_the_expected_length(tiny_clips):
    _, _, clips = tiny_clips
    assert hc.lbp_top_features(clips.X).shape == (4, 3 * 25 * 59)
    assert hc.hoof_features(clips.key_frames).shape == (4, 25 * 8)


def test_clip_errors_name_the_sample(synth_root, tmp_path):
    from merlib.data.composite import megc2019_composite
    from merlib.faces.clips import ClipConfig, clip_frame_paths, load_clips

    row = megc2019_composite(synth_root, allow_missing=True).table.iloc[0].copy()
    row["offset_frame"] = row["onset_frame"]
    with pytest.raises(Exception, match=f"{row['sample']}.*at least 2"):
        clip_frame_paths(row, synth_root)
    bad = pd.DataFrame([row])
    out = load_clips(bad, synth_root, cache_dir=tmp_path)
    assert len(out.X) == 0 and out.report["sample"].tolist() == [row["sample"]]
    with pytest.raises(ConfigError, match="n_frames"):
        ClipConfig(n_frames=2)


def test_clip_references_through_the_cache(synth_root, tmp_path, monkeypatch):
    """LBP-TOP and HOOF references on a crop set of the tiny root, computed once."""
    from merlib.data.composite import megc2019_composite
    from merlib.faces import clips as clips_mod
    from merlib.training.crops import CropSet

    table = megc2019_composite(synth_root, allow_missing=True).table
    table = table[table["label"].notna()].reset_index(drop=True)
    monkeypatch.setattr(clips_mod, "default_clip_dir", lambda: tmp_path / "clips")
    clips = clips_mod.load_clips(table, synth_root)
    crops = CropSet(clips.key_frames[:, 1].copy(), table[["dataset", "subject", "sample", "label"]].astype(str))
    out = hc.reference_predictions(crops, ("majority", "lbp_top_svm", "hoof_svm", "biwoof_svm"), data_root=synth_root,
                                   cache_dir=tmp_path / "refs")
    assert {"pred_majority", "pred_lbp_top_svm", "pred_hoof_svm", "pred_biwoof_svm"} <= set(out.columns)
    assert set(out["pred_biwoof_svm"]) <= set(LABELS)
    assert len(out) == len(crops) and set(out["pred_hoof_svm"]) <= set(LABELS)
    assert len(list((tmp_path / "refs").glob("*.csv"))) == 4
    again = hc.reference_predictions(crops, ("majority", "lbp_top_svm", "hoof_svm", "biwoof_svm"), data_root=synth_root,
                                     cache_dir=tmp_path / "refs")
    pd.testing.assert_frame_equal(out, again)
    with pytest.raises(ConfigError, match="data_root"):
        hc.reference_predictions(crops, ("hoof_svm",))
    with pytest.raises(ConfigError, match="names"):
        hc.reference_predictions(crops, ("knn",))


def test_align_clip_is_deterministic(synth_root):
    from merlib.data.composite import megc2019_composite
    from merlib.faces.clips import ClipConfig, align_clip

    row = megc2019_composite(synth_root, allow_missing=True).table.iloc[1]
    a = align_clip(row, synth_root, clip_cfg=ClipConfig(size=32, n_frames=5))
    b = align_clip(row, synth_root, clip_cfg=ClipConfig(size=32, n_frames=5))
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.key_frames, b.key_frames)
    assert a.frames.shape == (5, 32, 32) and a.landmark_source == b.landmark_source
    assert a.n_source_frames == int(row["offset_frame"]) - int(row["onset_frame"]) + 1


def test_sample_span_is_pca_with_every_component():
    """Same centring and the same subspace as PCA, orthonormal rows; rank n - 1 after centring."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    X, Z = rng.standard_normal((30, 200)), rng.standard_normal((5, 200))
    span = hc.SampleSpan().fit(X)
    pca = PCA(svd_solver="full").fit(X)
    C, P = span.components_, pca.components_[:29]
    assert C.shape == (29, 200)
    np.testing.assert_allclose(C @ C.T, np.eye(29), atol=1e-10)
    np.testing.assert_allclose(C.T @ C, P.T @ P, atol=1e-10)
    # Distances between new points are those of PCA's coordinates.
    np.testing.assert_allclose(np.linalg.norm(span.transform(Z) - span.transform(X[:1]), axis=1),
                               np.linalg.norm(pca.transform(Z)[:, :29] - pca.transform(X[:1])[:, :29], axis=1),
                               atol=1e-10)
