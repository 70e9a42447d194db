"""Simple references on the method's own LOSO folds: majority class, pixels, HOG, LBP-TOP, HOOF,
Bi-WOOF.

Each reference turns the same samples into a predictions table shaped like
``predictions.csv`` of :mod:`merlib.evaluation.protocol` (dataset, subject, sample,
label, fold, ``pred_<name>``), on the same leave-one-subject-out folds
(:func:`merlib.evaluation.splits.loso_folds`), so its scores, bootstrap intervals and
paired differences sit beside the method's:

=================  ======================================================  ===========
name               features                                                 classifier
=================  ======================================================  ===========
``majority``       none: the training folds' most frequent class            --
``pixels_lr``      apex crop resized to 64 px, grey levels / 255            logistic
``hog_svm``        HOG of the apex crop at 64 px (scikit-image)             linear SVM
``lbp_top_svm``    LBP-TOP of the aligned onset..offset clip (MEGC2019      linear SVM
                   baseline): uniform LBP (59 bins) on XY, XT, YT, 5 x 5
                   blocks
``hoof_svm``       HOOF: magnitude-weighted optical-flow orientation        linear SVM
                   histograms (OpenCV Farneback, onset -> apex), 5 x 5
                   blocks
``biwoof_svm``     Bi-WOOF (Liong et al. 2018): TV-L1 flow onset -> apex,   linear SVM
                   orientation histograms weighted locally by the flow's
                   magnitude and globally by each block's optical strain,
                   5 x 5 blocks, 8 bins
=================  ======================================================  ===========

Every classifier is a scikit-learn pipeline (StandardScaler, then a linear-kernel SVC or
a logistic regression) with
``class_weight="balanced"`` (UF1 and UAR weigh the classes equally; the composite's
classes are not). Its C is fixed when a number is given; given a sequence, it is chosen
per outer fold by subject-wise inner cross-validation on that fold's *training* subjects
only (UF1, :class:`~sklearn.model_selection.GroupKFold`), never on the test subject.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.evaluation.baselines import majority_class_predictions
from merlib.evaluation.splits import Fold, loso_folds

#: The inner-validation grid of C when none is given, per classifier kind. Logistic
#: regression on thousands of standardised pixels needs strong regularisation and each
#: fit costs ~10x an SVM's, hence its shorter grid.
DEFAULT_C: dict[str, tuple[float, ...]] = {"svm": (0.001, 0.01, 0.1, 1.0), "lr": (0.001, 0.01, 0.1)}

#: Subject-wise inner folds for choosing C.
INNER_SPLITS = 4

#: Bins of uniform (non rotation-invariant) LBP with 8 neighbours: 58 uniform + 1 other.
LBP_BINS = 59

_UF1 = make_scorer(f1_score, average="macro", labels=list(range(len(LABELS))), zero_division=0)


# ------------------------------------------------------------------------ features
def resize_stack(X: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, S, S) uint8 crops to (N, size, size) with area averaging."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ConfigError(f"X: expected an array of shape (n_samples, S, S), got {X.shape}")
    if X.shape[1:] == (size, size):
        return X
    return np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in X])


def pixel_features(X: np.ndarray, size: int = 64) -> np.ndarray:
    """Grey levels of the crops at ``size`` px, scaled to [0, 1]: (N, size * size) float32."""
    return resize_stack(X, size).reshape(len(X), -1).astype(np.float32) / 255.0


def hog_features(X: np.ndarray, size: int = 64, *, orientations: int = 9, cell: int = 8,
                 block: int = 2) -> np.ndarray:
    """HOG descriptors (scikit-image, L2-Hys blocks) of the crops at ``size`` px.

    Returns
    -------
    ndarray of shape (N, n_features), float32
        1,764 features at the defaults (7 x 7 blocks of 2 x 2 cells x 9 orientations).
    """
    from skimage.feature import hog

    small = resize_stack(X, size)
    return np.stack([hog(x, orientations=orientations, pixels_per_cell=(cell, cell),
                         cells_per_block=(block, block)) for x in small]).astype(np.float32)


def _block_index(n: int, grid: int) -> np.ndarray:
    # Pixel i of n lies in block i * grid // n: blocks as equal as integers allow.
    return (np.arange(n) * grid) // n


def lbp_top(clip: np.ndarray, grid: int = 5, radius: int = 1, points: int = 8) -> np.ndarray:
    """LBP-TOP of one clip: uniform-LBP histograms on the XY, XT and YT planes per block.

    Parameters
    ----------
    clip : ndarray of shape (T, H, W), uint8
        An aligned clip (:mod:`merlib.faces.clips`), T >= 3.
    grid : int
        Blocks per side (MEGC2019 baseline: 5).
    radius, points
        LBP neighbourhood (1, 8: 59 uniform bins).

    Returns
    -------
    ndarray of shape (3 * grid * grid * 59,), float32
        Plane-major (XY, XT, YT), then block row-major; each histogram sums to 1. Only
        voxels with all neighbours inside the clip are counted (border rows, columns and
        the first and last frames are skipped), the same voxels in every plane.
    """
    from skimage.feature import local_binary_pattern

    v = np.asarray(clip)
    if v.ndim != 3 or v.dtype != np.uint8 or min(v.shape) < 2 * radius + 1:
        raise ConfigError(f"clip: expected uint8 (T, H, W) with every side >= {2 * radius + 1}, got "
                          f"{v.dtype} {v.shape}")
    if points != 8:
        raise ConfigError(f"points: only 8 neighbours (59 uniform bins) are supported, got {points}")
    t, h, w = v.shape
    # One LBP call per plane orientation: the slices are stacked into one tall image. Rows
    # where two slices meet are border voxels of their slices, which are never counted.
    xy = local_binary_pattern(v.reshape(t * h, w), points, radius, "nri_uniform").reshape(t, h, w)
    xt = local_binary_pattern(v.transpose(1, 0, 2).reshape(h * t, w), points, radius,
                              "nri_uniform").reshape(h, t, w).transpose(1, 0, 2)
    yt = local_binary_pattern(v.transpose(2, 0, 1).reshape(w * t, h), points, radius,
                              "nri_uniform").reshape(w, t, h).transpose(1, 2, 0)
    r = radius
    inner = (slice(r, t - r), slice(r, h - r), slice(r, w - r))
    by = _block_index(h, grid)[r:h - r]
    bx = _block_index(w, grid)[r:w - r]
    block = (by[:, None] * grid + bx[None, :])[None].repeat(t - 2 * r, 0).ravel()
    hists = []
    for codes in (xy, xt, yt):
        c = codes[inner].astype(np.int64).ravel()
        hist = np.bincount(block * LBP_BINS + c, minlength=grid * grid * LBP_BINS).reshape(grid * grid, LBP_BINS)
        hists.append(hist / np.maximum(hist.sum(1, keepdims=True), 1))
    return np.concatenate([h.ravel() for h in hists]).astype(np.float32)


def lbp_top_features(clips: np.ndarray, grid: int = 5, radius: int = 1) -> np.ndarray:
    """:func:`lbp_top` of every clip of (N, T, H, W): (N, 3 * grid**2 * 59) float32."""
    return np.stack([lbp_top(c, grid, radius) for c in np.asarray(clips)])


def hoof(onset: np.ndarray, apex: np.ndarray, grid: int = 5, bins: int = 8) -> np.ndarray:
    """Histograms of oriented optical flow from onset to apex, per block.

    Dense Farneback flow (OpenCV; pyramid 0.5 x 3 levels, 15 px window, 3 iterations,
    5-pixel polynomial with sigma 1.2); each block's flow orientations over [0, 2 pi)
    are binned, weighted by the flow's magnitude, and the histogram is divided by its sum
    (HOOF describes the direction mix, not the speed). A block without motion (e.g. the
    masked eyes) is all zeros.

    Parameters
    ----------
    onset, apex : ndarray of shape (H, W), uint8
        Aligned with the same transform (:func:`merlib.faces.clips.align_clip`).

    Returns
    -------
    ndarray of shape (grid * grid * bins,), float32
    """
    onset, apex = np.asarray(onset), np.asarray(apex)
    if onset.shape != apex.shape or onset.ndim != 2 or onset.dtype != np.uint8:
        raise ConfigError(f"onset, apex: expected two uint8 (H, W) frames of one shape, got "
                          f"{onset.dtype} {onset.shape} and {apex.dtype} {apex.shape}")
    flow = cv2.calcOpticalFlowFarneback(onset, apex, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1])
    h, w = onset.shape
    block = _block_index(h, grid)[:, None] * grid + _block_index(w, grid)[None, :]
    b = np.minimum((ang / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    hist = np.bincount((block * bins + b).ravel(), weights=mag.ravel().astype(np.float64),
                       minlength=grid * grid * bins).reshape(grid * grid, bins)
    total = hist.sum(1, keepdims=True)
    hist = np.divide(hist, total, out=np.zeros_like(hist), where=total > 1e-12)
    return hist.ravel().astype(np.float32)


def hoof_features(key_frames: np.ndarray, grid: int = 5, bins: int = 8) -> np.ndarray:
    """:func:`hoof` of (N, 2, H, W) onset/apex pairs: (N, grid**2 * bins) float32."""
    return np.stack([hoof(k[0], k[1], grid, bins) for k in np.asarray(key_frames)])


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Magnitude of the optical strain of a flow field: (H, W) float64.

    The strain tensor is the symmetric part of the flow's gradient, ``e_xx = du/dx``,
    ``e_yy = dv/dy``, ``e_xy = e_yx = (du/dy + dv/dx) / 2`` (central differences);
    its magnitude ``sqrt(e_xx**2 + e_yy**2 + e_xy**2 + e_yx**2)``. A rigid translation
    has none: strain measures how the skin stretches, which a head's motion does not.

    Parameters
    ----------
    u, v : ndarray of shape (H, W)
        Horizontal and vertical flow, pixels.
    """
    u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
    du_dy, du_dx = np.gradient(u)
    dv_dy, dv_dx = np.gradient(v)
    e_xy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx ** 2 + dv_dy ** 2 + 2.0 * e_xy ** 2)


def biwoof(onset: np.ndarray, apex: np.ndarray, grid: int = 5, bins: int = 8) -> np.ndarray:
    """Bi-Weighted Oriented Optical Flow of one onset/apex pair (Liong et al. 2018).

    As published (Signal Process. Image Commun. 62:82-92; the authors' MATLAB release,
    christy1206/biwoof, ``biwoof.m``):

    1. TV-L1 optical flow from the onset to the apex (scikit-image's
       :func:`~skimage.registration.optical_flow_tvl1`, its defaults);
    2. per block of a ``grid`` x ``grid`` division, a histogram of the flow's
       orientation in ``bins`` equal bins over [-180, 180) degrees, each pixel weighted
       by its flow magnitude (the *local* weight), divided by its sum;
    3. each block's histogram multiplied by the sum of the optical strain magnitude
       (:func:`optical_strain`) over the block (the *global* weight): blocks where the
       skin deforms count, blocks that only shift do not;
    4. the whole vector divided by its L2 norm.

    Parameters
    ----------
    onset, apex : ndarray of shape (H, W), uint8
        Aligned with the same transform (:func:`merlib.faces.clips.align_clip`).
    grid : int, default=5
    bins : int, default=8

    Returns
    -------
    ndarray of shape (grid * grid * bins,), float32
        All zeros when nothing moved.
    """
    from skimage.registration import optical_flow_tvl1

    onset, apex = np.asarray(onset), np.asarray(apex)
    if onset.shape != apex.shape or onset.ndim != 2 or onset.dtype != np.uint8:
        raise ConfigError(f"onset, apex: expected two uint8 (H, W) frames of one shape, got "
                          f"{onset.dtype} {onset.shape} and {apex.dtype} {apex.shape}")
    v, u = optical_flow_tvl1(onset.astype(np.float64) / 255.0, apex.astype(np.float64) / 255.0)
    mag = np.hypot(u, v)
    ang = np.arctan2(v, u)  # [-pi, pi]
    b = np.clip(((ang + np.pi) / (2 * np.pi) * bins).astype(np.int64), 0, bins - 1)
    h, w = onset.shape
    block = _block_index(h, grid)[:, None] * grid + _block_index(w, grid)[None, :]
    hist = np.bincount((block * bins + b).ravel(), weights=mag.ravel(),
                       minlength=grid * grid * bins).reshape(grid * grid, bins)
    total = hist.sum(1, keepdims=True)
    hist = np.divide(hist, total, out=np.zeros_like(hist), where=total > 1e-12)
    strain = np.bincount(block.ravel(), weights=optical_strain(u, v).ravel(), minlength=grid * grid)
    feats = (hist * strain[:, None]).ravel()
    norm = float(np.linalg.norm(feats))
    return (feats / norm if norm > 1e-12 else feats).astype(np.float32)


def biwoof_features(key_frames: np.ndarray, grid: int = 5, bins: int = 8) -> np.ndarray:
    """:func:`biwoof` of (N, 2, H, W) onset/apex pairs: (N, grid**2 * bins) float32."""
    return np.stack([biwoof(k[0], k[1], grid, bins) for k in np.asarray(key_frames)])


# ------------------------------------------------------------------ classifiers
class SampleSpan(TransformerMixin, BaseEstimator):
    """Centre, then rotate onto the span of the training samples (every principal component).

    An L2-penalised linear model's weights lie in the span of its training samples, so
    fitting it on these coordinates (n_samples of them instead of 4,096 pixels) gives the
    same decision function, much faster. The components come from the eigenvectors of the
    n x n Gram matrix, not from an SVD of the n x p data: on 100 x 4,096 pixels that is
    1.8 ms against 45-49 ms, and the SVD was half of the pixels reference's time.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    components_ : ndarray of shape (rank, n_features)
        Orthonormal rows spanning the centred training samples.
    """

    #: Eigenvalues below this fraction of the largest are the centring's null direction
    #: and rounding, not data.
    rtol: float = 1e-10

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> SampleSpan:
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        w, U = np.linalg.eigh(Xc @ Xc.T)
        keep = w > max(float(w.max()), 0.0) * self.rtol
        self.components_ = (Xc.T @ (U[:, keep] / np.sqrt(w[keep]))).T
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T


def linear_pipeline(kind: str, C: float = 1.0, seed: int = 0) -> Pipeline:
    """StandardScaler + a linear classifier with balanced class weights.

    Parameters
    ----------
    kind : {"svm", "lr"}
        ``"svm"``: :class:`~sklearn.svm.SVC` with a linear kernel (libsvm works on the
        n x n kernel, so thousands of features cost nothing with ~100 samples;
        liblinear's LinearSVC needed 10^4 iterations and 40 s per fit on 4,096 pixels).
        ``"lr"``: :class:`SampleSpan` between the scaler and a multinomial
        :class:`~sklearn.linear_model.LogisticRegression` (newton-cg, tol 1e-4, at most
        500 iterations): an L2-penalised model reaches the same optimum on the span
        coordinates as on the raw features, at a fraction of the cost.
    C : float, default=1.0
        Inverse regularisation strength of the classifier.
    seed : int, default=0
        The SVC's ``random_state`` (logistic regression with newton-cg draws nothing).

    Returns
    -------
    Pipeline
        ``scale``, (``span``,) ``model``; unfitted.
    """
    if kind == "svm":
        model = SVC(kernel="linear", C=C, class_weight="balanced", random_state=seed)
    elif kind == "lr":
        model = LogisticRegression(C=C, class_weight="balanced", solver="newton-cg", max_iter=500, tol=1e-4)
        return Pipeline([("scale", StandardScaler()), ("span", SampleSpan()), ("model", model)])
    else:
        raise ConfigError(f"kind: expected 'svm' or 'lr', got {kind!r}")
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _as_folds(folds: Sequence[Fold] | np.ndarray | None, groups: np.ndarray) -> list[Fold]:
    if folds is None:
        return loso_folds(groups)
    if isinstance(folds, np.ndarray) and folds.dtype.kind in "OUS":
        return loso_folds(folds)
    folds = list(folds)
    if not all(isinstance(f, Fold) for f in folds):
        raise ConfigError("folds: expected None, an array of subject keys, or a list of splits.Fold")
    return folds


def _base_table(meta: pd.DataFrame, folds: list[Fold]) -> pd.DataFrame:
    table = meta[["dataset", "subject", "sample", "label"]].astype(str).reset_index(drop=True)
    fold_of = np.full(len(table), -1)
    for f in folds:
        fold_of[f.test_idx] = f.index
    if (fold_of < 0).any():
        i = int(np.flatnonzero(fold_of < 0)[0])
        raise ConfigError(f"folds: row {i} ({table['sample'].iloc[i]}) is in no test fold")
    table["fold"] = fold_of
    return table


def _groups(meta: pd.DataFrame) -> np.ndarray:
    return (meta["dataset"].astype(str) + "/" + meta["subject"].astype(str)).to_numpy()


def loso_predict(features: np.ndarray, meta: pd.DataFrame, name: str, *, kind: str = "svm",
                 C: float | Sequence[float] | None = None,
                 folds: Sequence[Fold] | np.ndarray | None = None, seed: int = 0) -> pd.DataFrame:
    """Leave-one-subject-out predictions of a linear classifier on fixed features.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    meta : DataFrame
        n_samples rows with dataset, subject, sample, label (a crop set's ``meta``).
    name : str
        The prediction column is ``pred_<name>``.
    kind : {"svm", "lr"}
    C : float, sequence of float, or None
        Fixed, or chosen per fold on the training subjects (inner GroupKFold, UF1);
        None: :data:`DEFAULT_C` of ``kind``.
    folds : None, array of subject keys, or list of Fold
        Default: :func:`~merlib.evaluation.splits.loso_folds` of ``dataset/subject``.
    seed : int

    Returns
    -------
    DataFrame
        dataset, subject, sample, label, fold, ``pred_<name>``, ``C_<name>`` (the C used
        for that row's fold).
    """
    X = np.asarray(features)
    if X.ndim != 2 or len(X) != len(meta):
        raise ConfigError(f"features: expected shape ({len(meta)}, n_features) (one row per sample), "
                          f"got {X.shape}")
    groups = _groups(meta)
    folds = _as_folds(folds, groups)
    table = _base_table(meta, folds)
    y = meta["label"].astype(str).map({c: i for i, c in enumerate(LABELS)}).to_numpy()
    if kind not in DEFAULT_C:
        raise ConfigError(f"kind: expected 'svm' or 'lr', got {kind!r}")
    C = DEFAULT_C[kind] if C is None else C
    grid = [float(C)] if np.isscalar(C) else [float(c) for c in C]
    if not grid or min(grid) <= 0:
        raise ConfigError(f"C: expected positive values, got {C!r}")
    pred = np.full(len(X), -1)
    chosen = np.full(len(X), np.nan)
    for f in folds:
        tr, te = f.train_idx, f.test_idx
        est = linear_pipeline(kind, grid[0], seed)
        if len(np.unique(y[tr])) < 2:
            # Nothing to separate: answer the one class seen (as majority_class_predictions).
            pred[te], chosen[te] = y[tr][0], np.nan
            continue
        n_sub = len(np.unique(groups[tr]))
        inner = []
        if len(grid) > 1 and n_sub >= 2:
            # Inner splits whose training part holds one class cannot fit a classifier
            # (tiny data); they are left out rather than scored as 0.
            inner = [(a, b) for a, b in GroupKFold(n_splits=min(INNER_SPLITS, n_sub)).split(
                         X[tr], y[tr], groups=groups[tr]) if len(np.unique(y[tr][a])) >= 2]
        if inner:
            search = GridSearchCV(clone(est), {"model__C": grid}, scoring=_UF1, cv=inner, refit=True)
            search.fit(X[tr], y[tr])
            model, c_used = search.best_estimator_, search.best_params_["model__C"]
        else:
            # No inner search possible (fixed C, or no usable inner split): the grid's middle.
            c_used = grid[len(grid) // 2]
            model = linear_pipeline(kind, c_used, seed).fit(X[tr], y[tr])
        pred[te], chosen[te] = model.predict(X[te]), c_used
    table[f"pred_{name}"] = np.asarray(LABELS, dtype=object)[pred]
    table[f"C_{name}"] = chosen
    return table


def majority_predictions(meta: pd.DataFrame,
                         folds: Sequence[Fold] | np.ndarray | None = None) -> pd.DataFrame:
    """The majority-class reference: each fold answers its training subjects' top class.

    Returns
    -------
    DataFrame
        dataset, subject, sample, label, fold, ``pred_majority``.
    """
    folds = _as_folds(folds, _groups(meta))
    table = _base_table(meta, folds)
    table["pred_majority"] = majority_class_predictions(table).astype(object).to_numpy()
    return table


def pixel_lr_predictions(crops, folds=None, *, size: int = 64,
                         C: float | Sequence[float] | None = None) -> pd.DataFrame:
    """Logistic regression on the apex crops' grey levels at ``size`` px (``pred_pixels_lr``).

    Parameters
    ----------
    crops : CropSet
    folds : None, array of subject keys, or list of Fold
    """
    return loso_predict(pixel_features(crops.X, size), crops.meta, "pixels_lr", kind="lr", C=C, folds=folds)


def hog_svm_predictions(crops, folds=None, *, size: int = 64,
                        C: float | Sequence[float] | None = None) -> pd.DataFrame:
    """Linear SVM on HOG of the apex crops at ``size`` px (``pred_hog_svm``)."""
    return loso_predict(hog_features(crops.X, size), crops.meta, "hog_svm", kind="svm", C=C, folds=folds)


def lbp_top_svm_predictions(clips: np.ndarray, meta: pd.DataFrame, folds=None, *, grid: int = 5,
                            C: float | Sequence[float] | None = None) -> pd.DataFrame:
    """The MEGC2019 baseline: linear SVM on LBP-TOP of aligned clips (``pred_lbp_top_svm``).

    Parameters
    ----------
    clips : ndarray of shape (n_samples, T, S, S), uint8
        ``ClipSet.X`` of :mod:`merlib.faces.clips`.
    meta : DataFrame
        The clips' rows (dataset, subject, sample, label).
    """
    return loso_predict(lbp_top_features(clips, grid), meta, "lbp_top_svm", kind="svm", C=C, folds=folds)


def hoof_svm_predictions(key_frames: np.ndarray, meta: pd.DataFrame, folds=None, *, grid: int = 5,
                         bins: int = 8, C: float | Sequence[float] | None = None) -> pd.DataFrame:
    """Linear SVM on HOOF of aligned onset/apex pairs (``pred_hoof_svm``).

    Parameters
    ----------
    key_frames : ndarray of shape (n_samples, 2, S, S), uint8
        ``ClipSet.key_frames``.
    """
    return loso_predict(hoof_features(key_frames, grid, bins), meta, "hoof_svm", kind="svm", C=C,
                        folds=folds)


def biwoof_svm_predictions(key_frames: np.ndarray, meta: pd.DataFrame, folds=None, *, grid: int = 5,
                           bins: int = 8, C: float | Sequence[float] | None = None) -> pd.DataFrame:
    """Linear SVM on Bi-WOOF of aligned onset/apex pairs (``pred_biwoof_svm``).

    Parameters
    ----------
    key_frames : ndarray of shape (n_samples, 2, S, S), uint8
        ``ClipSet.key_frames``.
    """
    return loso_predict(biwoof_features(key_frames, grid, bins), meta, "biwoof_svm", kind="svm", C=C,
                        folds=folds)


def merge_predictions(*tables: pd.DataFrame) -> pd.DataFrame:
    """Join prediction tables of the same rows side by side (checks they are the same rows).

    Raises
    ------
    ConfigError
        When two tables differ in their samples, order, labels or folds.
    """
    if not tables:
        raise ConfigError("tables: expected at least one predictions table")
    key = ["dataset", "subject", "sample", "label", "fold"]
    out = tables[0].copy()
    for i, t in enumerate(tables[1:], start=1):
        a = out[key].astype(str).reset_index(drop=True)
        b = t[key].astype(str).reset_index(drop=True)
        if len(a) != len(b) or not a.equals(b):
            raise ConfigError(f"tables: table {i} does not hold the same rows (dataset, subject, sample, "
                              f"label, fold) in the same order as table 0")
        extra = [c for c in t.columns if c not in key and c not in out.columns]
        out = pd.concat([out.reset_index(drop=True), t[extra].reset_index(drop=True)], axis=1)
    return out


# ------------------------------------------------------------ all, through a cache
#: Reference names in table order.
REFERENCES: tuple[str, ...] = ("majority", "pixels_lr", "hog_svm", "lbp_top_svm", "hoof_svm", "biwoof_svm")

#: The references that read the aligned clips (need ``data_root``).
CLIP_REFERENCES: tuple[str, ...] = ("lbp_top_svm", "hoof_svm", "biwoof_svm")

#: The references computed from the apex crops alone.
APEX_REFERENCES: tuple[str, ...] = ("majority", "pixels_lr", "hog_svm")

#: Bump when a change of code changes a reference's predictions (part of the cache key).
REFERENCE_VERSION = 1


def _reference_key(crops, name: str, folds: list[Fold], extra: dict) -> str:
    import hashlib
    import json

    text = json.dumps({"version": REFERENCE_VERSION, "name": name, "crops": crops.fingerprint(),
                       "folds": [(f.index, f.test_subject) for f in folds],
                       "C": {k: list(v) for k, v in DEFAULT_C.items()}, **extra},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reference_predictions(crops, names: Sequence[str] = APEX_REFERENCES, *,
                          folds: Sequence[Fold] | np.ndarray | None = None, data_root=None,
                          cache_dir=None, align_cfg=None, clip_cfg=None,
                          progress: bool = False) -> pd.DataFrame:
    """Several references on the same folds, one table, each computed once per data.

    Parameters
    ----------
    crops : CropSet
        The composite's apex crops (the method's input).
    names : sequence of str
        Any of :data:`REFERENCES`.
    folds : None, array of subject keys, or list of Fold
    data_root : path, optional
        Needed for :data:`CLIP_REFERENCES` (they read the clips).
    cache_dir : path, optional
        When given, each reference's table is stored there as
        ``<name>-<key>.csv``, keyed by the crops' fingerprint, the folds, the settings and
        :data:`REFERENCE_VERSION`, and read back on the next call (notebooks share it).
    align_cfg, clip_cfg : AlignConfig, ClipConfig, optional
        Clip settings (defaults of :mod:`merlib.faces.clips`).
    progress : bool

    Returns
    -------
    DataFrame
        dataset, subject, sample, label, fold, then ``pred_<name>`` (and ``C_<name>``)
        for each name, in crop-set order.
    """
    from pathlib import Path

    from merlib.faces.clips import ClipConfig, composite_clips
    from merlib.faces.config import AlignConfig

    unknown = [n for n in names if n not in REFERENCES]
    if unknown or not names:
        raise ConfigError(f"names: expected a non-empty subset of {REFERENCES}, got {list(names)}")
    if set(CLIP_REFERENCES) & set(names) and data_root is None:
        raise ConfigError(f"data_root: {', '.join(CLIP_REFERENCES)} read the aligned clips; pass the data root")
    folds = _as_folds(folds, crops.groups)
    align_cfg = align_cfg or AlignConfig()
    clip_cfg = clip_cfg or ClipConfig()
    clips = None
    tables = []
    for name in names:
        extra = {"align": align_cfg.crop_key(), "clip": clip_cfg} if name in CLIP_REFERENCES else {}
        path = Path(cache_dir) / f"{name}-{_reference_key(crops, name, folds, extra)}.csv" if cache_dir else None
        if path is not None and path.is_file():
            table = pd.read_csv(path, dtype={c: str for c in ("dataset", "subject", "sample", "label")},
                                keep_default_na=False, na_values={f"C_{name}": [""]})
            tables.append(table)
            continue
        if name == "majority":
            table = majority_predictions(crops.meta, folds)
        elif name == "pixels_lr":
            table = pixel_lr_predictions(crops, folds)
        elif name == "hog_svm":
            table = hog_svm_predictions(crops, folds)
        else:
            if clips is None:
                clips = composite_clips(crops.meta, data_root, align_cfg, clip_cfg, progress=progress)
                if len(clips.report):
                    raise ConfigError(f"data_root: {len(clips.report)} clip(s) of the crop set cannot be "
                                      f"aligned, e.g. {clips.report['reason'].iloc[0]}")
            if name == "lbp_top_svm":
                table = lbp_top_svm_predictions(clips.X, crops.meta, folds)
            elif name == "hoof_svm":
                table = hoof_svm_predictions(clips.key_frames, crops.meta, folds)
            else:
                table = biwoof_svm_predictions(clips.key_frames, crops.meta, folds)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            table.to_csv(tmp, index=False)
            tmp.replace(path)
        tables.append(table)
    return merge_predictions(*tables)
