"""Subject-level bootstrap intervals for UF1 / UAR / accuracy on pooled LOSO predictions.

With 24-68 subjects a pooled score moves by several points when one subject changes, so
every score the book shows carries a 95% interval. The resampling unit is the *subject*
(``dataset/subject``), never the sample: a subject's samples share a face, a session and
often a test-fold model, so they are not independent.

The method, vectorised:

1. one 3 x 3 confusion matrix per subject (rows true, columns predicted, in
   :data:`~merlib.data.schema.LABELS` order);
2. each resample draws subjects with replacement *within each dataset* (stratified:
   the MEGC2019 composite is a designed mixture of three datasets, so every resample
   keeps each part's number of subjects, and every part has rows in every resample);
   a draw is stored as the number of times each subject was picked, ``W`` of shape
   (n_resamples, n_subjects);
3. the resampled pooled confusion matrices are ``W @ counts``; UF1, UAR and accuracy
   follow from them exactly as :mod:`merlib.evaluation.metrics` computes them
   (a class with no true and no predicted sample scores 0);
4. the interval is the 2.5th and 97.5th percentiles of the resampled scores (percentile
   bootstrap); the point estimate is the score of the observed predictions.

A paired interval (two prediction columns of the same rows, e.g. an ablation and the
full method) uses the *same* ``W`` for both columns and takes percentiles of the
per-resample difference, so the subject-to-subject variation both share cancels.

1,000 resamples of 24 subjects, composite and three parts, take about 10 ms per column on a
2-core machine (``bench/bootstrap_speed.py`` prints the figures).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.evaluation.metrics import PARTS

#: The scores every table reports, in column order.
METRICS: tuple[str, ...] = ("uf1", "uar", "accuracy")

_K = len(LABELS)


def _codes(values: Sequence | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= _K):
            raise ConfigError(f"{name}: integer codes must lie in [0, {_K}), got min {arr.min()} "
                              f"max {arr.max()}")
        return arr.astype(np.int64)
    lookup = {c: i for i, c in enumerate(LABELS)}
    out = np.fromiter((lookup.get(str(v), -1) for v in arr), dtype=np.int64, count=len(arr))
    if (out < 0).any():
        i = int(np.flatnonzero(out < 0)[0])
        raise ConfigError(f"{name}: row {i}: {str(arr[i])!r} is not one of {LABELS}")
    return out


def subject_counts(y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray,
                   groups: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One confusion matrix per subject.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Class names of :data:`LABELS` or their integer codes.
    groups : array-like of shape (n_samples,)
        Subject key of each sample (``dataset/subject``).

    Returns
    -------
    subjects : ndarray of shape (n_subjects,)
        The distinct keys, sorted.
    counts : ndarray of shape (n_subjects, 3, 3), int64
        ``counts[s, i, j]``: samples of subject ``s`` with true class ``i`` predicted ``j``.
    """
    t, p = _codes(y_true, "y_true"), _codes(y_pred, "y_pred")
    g = np.asarray(groups)
    if not (len(t) == len(p) == len(g)):
        raise ConfigError(f"y_true, y_pred, groups: expected equal lengths, got {len(t)}, {len(p)}, {len(g)}")
    if not len(t):
        raise ConfigError("y_true: expected at least one sample, got none")
    subjects, s = np.unique(g, return_inverse=True)
    flat = np.bincount((s * _K + t) * _K + p, minlength=len(subjects) * _K * _K)
    return subjects, flat.reshape(len(subjects), _K, _K).astype(np.int64)


def scores_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """UF1, UAR and accuracy of pooled confusion matrices.

    Parameters
    ----------
    counts : ndarray of shape (..., 3, 3)
        Rows true class, columns predicted class.

    Returns
    -------
    dict of str -> ndarray of shape (...)
        ``uf1`` (mean per-class F1 = 2TP / (2TP + FP + FN)), ``uar`` (mean per-class recall
        TP / N_c), ``accuracy``. A class with no true and no predicted sample has F1 and
        recall 0, as :mod:`merlib.evaluation.metrics` (scikit-learn, ``zero_division=0``).
    """
    c = np.asarray(counts, dtype=np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    n_true = c.sum(-1)
    n_pred = c.sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(n_true + n_pred > 0, 2 * tp / (n_true + n_pred), 0.0)
        recall = np.where(n_true > 0, tp / n_true, 0.0)
        total = n_true.sum(-1)
        acc = np.where(total > 0, tp.sum(-1) / total, np.nan)
    return {"uf1": f1.mean(-1), "uar": recall.mean(-1), "accuracy": acc}


def resample_weights(strata: Sequence | np.ndarray, n_resamples: int = 1000,
                     seed: int = 0) -> np.ndarray:
    """How often each subject is drawn in each resample, stratified.

    Parameters
    ----------
    strata : array-like of shape (n_subjects,)
        The stratum (dataset) of each subject; within each stratum as many subjects are
        drawn, with replacement, as it holds.
    n_resamples : int
    seed : int
        The strata are drawn in sorted order from one generator, so a seed gives the same
        weights on every machine.

    Returns
    -------
    ndarray of shape (n_resamples, n_subjects), int64
        Each row sums, within each stratum, to that stratum's size.
    """
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ConfigError(f"n_resamples: expected a positive integer, got {n_resamples!r}")
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_resamples, len(strata)), dtype=np.int64)
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        m = len(members)
        weights[:, members] = rng.multinomial(m, np.full(m, 1.0 / m), size=n_resamples)
    return weights


def _check_level(level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ConfigError(f"level: expected a coverage in (0, 1), e.g. 0.95, got {level!r}")
    return (1 - level) / 2, (1 + level) / 2


def _stratum_of(subjects: np.ndarray) -> np.ndarray:
    # Subject keys are "dataset/subject" (CropSet.groups); the dataset is the stratum.
    return np.array([str(s).split("/", 1)[0] if "/" in str(s) else "" for s in subjects])


def bootstrap_scores(y_true: Sequence | np.ndarray, y_pred: Sequence | np.ndarray,
                     groups: Sequence | np.ndarray, *, strata: Sequence | np.ndarray | None = None,
                     n_resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """Point score and percentile interval of UF1, UAR and accuracy.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,)
        Subject keys; the resampling unit.
    strata : array-like of shape (n_samples,), optional
        Stratum of each sample (constant within a subject); default: the part of the key
        before ``/`` (the dataset of ``dataset/subject``), one stratum when there is none.
    n_resamples, seed, level
        Resamples (at least 1,000 for a 95% interval), generator seed, coverage.

    Returns
    -------
    dict of str -> (point, lo, hi)
        For ``uf1``, ``uar``, ``accuracy``.

    Examples
    --------
    >>> y = ["negative", "positive", "surprise"] * 4
    >>> r = bootstrap_scores(y, y, [f"casme2/s{i // 3}" for i in range(12)])
    >>> r["uf1"]
    (1.0, 1.0, 1.0)
    """
    subjects, counts = subject_counts(y_true, y_pred, groups)
    weights = resample_weights(_subject_strata(subjects, groups, strata), n_resamples, seed)
    return _intervals(counts, weights, level)


def _subject_strata(subjects: np.ndarray, groups, strata) -> np.ndarray:
    if strata is None:
        return _stratum_of(subjects)
    g, st = np.asarray(groups), np.asarray(strata)
    if len(st) != len(g):
        raise ConfigError(f"strata: expected one value per sample ({len(g)}), got {len(st)}")
    table = pd.DataFrame({"g": g, "s": st}).drop_duplicates()
    if table["g"].duplicated().any():
        bad = table.loc[table["g"].duplicated(), "g"].iloc[0]
        raise ConfigError(f"strata: subject {bad!r} lies in more than one stratum")
    return table.set_index("g").loc[subjects, "s"].to_numpy()


def _intervals(counts: np.ndarray, weights: np.ndarray,
               level: float) -> dict[str, tuple[float, float, float]]:
    lo_q, hi_q = _check_level(level)
    point = scores_from_counts(counts.sum(0))
    # (B, G) @ (G, 9) -> (B, 9): every resample's pooled confusion matrix at once.
    pooled = (weights @ counts.reshape(len(counts), -1)).reshape(-1, _K, _K)
    boot = scores_from_counts(pooled)
    return {m: (float(point[m]), float(np.quantile(boot[m], lo_q)), float(np.quantile(boot[m], hi_q)))
            for m in METRICS}


def paired_difference(y_true: Sequence | np.ndarray, pred_a: Sequence | np.ndarray,
                      pred_b: Sequence | np.ndarray, groups: Sequence | np.ndarray, *,
                      strata: Sequence | np.ndarray | None = None, n_resamples: int = 1000,
                      seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """Score of ``pred_a`` minus score of ``pred_b`` on the same rows, with a paired interval.

    Both columns are scored on the same subject resamples, so the interval is that of the
    difference itself (narrower than comparing two separate intervals when the columns
    agree on which subjects are hard).

    Returns
    -------
    dict of str -> (difference, lo, hi)
        For ``uf1``, ``uar``, ``accuracy``; identical columns give exactly (0, 0, 0).
    """
    subjects, counts_a = subject_counts(y_true, pred_a, groups)
    _, counts_b = subject_counts(y_true, pred_b, groups)
    weights = resample_weights(_subject_strata(subjects, groups, strata), n_resamples, seed)
    return _paired(counts_a, counts_b, weights, level)


def _paired(counts_a: np.ndarray, counts_b: np.ndarray, weights: np.ndarray,
            level: float) -> dict[str, tuple[float, float, float]]:
    lo_q, hi_q = _check_level(level)
    g = len(counts_a)
    pa, pb = scores_from_counts(counts_a.sum(0)), scores_from_counts(counts_b.sum(0))
    ba = scores_from_counts((weights @ counts_a.reshape(g, -1)).reshape(-1, _K, _K))
    bb = scores_from_counts((weights @ counts_b.reshape(g, -1)).reshape(-1, _K, _K))
    out = {}
    for m in METRICS:
        d = ba[m] - bb[m]
        out[m] = (float(pa[m] - pb[m]), float(np.quantile(d, lo_q)), float(np.quantile(d, hi_q)))
    return out


def _parts(predictions: pd.DataFrame) -> list[str]:
    present = list(pd.unique(predictions["dataset"].astype(str)))
    return ["composite"] + [p for p in PARTS[1:] if p in present] + sorted(set(present) - set(PARTS))


def _check_table(predictions: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in ("dataset", "subject", "label", *columns) if c not in predictions.columns]
    if missing:
        raise ConfigError(f"predictions: missing columns {missing}")
    if not len(predictions):
        raise ConfigError("predictions: expected at least one row, got none")


def prediction_columns(predictions: pd.DataFrame) -> list[str]:
    """The ``pred_*`` columns of a predictions table, in table order."""
    cols = [c for c in predictions.columns if str(c).startswith("pred_")]
    if not cols:
        raise ConfigError(f"predictions: no pred_* column among {list(predictions.columns)}")
    return cols


def bootstrap_table(predictions: pd.DataFrame, pred_columns: Sequence[str] | None = None, *,
                    n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Scores with intervals for every prediction column, the composite and each part.

    Parameters
    ----------
    predictions : DataFrame
        One row per sample with ``dataset``, ``subject``, ``label`` and the prediction
        columns (``predictions.csv`` of :mod:`merlib.evaluation.protocol`).
    pred_columns : sequence of str, optional
        Columns to score; default every ``pred_*`` column. The ``classifier`` column of
        the result is the name without ``pred_``.
    n_resamples, seed, level
        See :func:`bootstrap_scores`. Every column and part uses the same resamples.

    Returns
    -------
    DataFrame
        One row per (classifier, part): ``classifier``, ``part`` (composite, then the
        parts present in :data:`~merlib.evaluation.metrics.PARTS` order), ``n`` (samples),
        ``n_subjects``, then ``uf1``, ``uf1_lo``, ``uf1_hi``, ``uar`` ..., ``accuracy`` ...
        A part's interval comes from the same stratified resamples, restricted to the
        part's subjects.
    """
    cols = list(pred_columns) if pred_columns is not None else prediction_columns(predictions)
    _check_table(predictions, cols)
    groups = (predictions["dataset"].astype(str) + "/" + predictions["subject"].astype(str)).to_numpy()
    strata = predictions["dataset"].astype(str).to_numpy()
    rows = []
    weights = None
    for col in cols:
        subjects, counts = subject_counts(predictions["label"].to_numpy(), predictions[col].to_numpy(), groups)
        if weights is None:
            sub_strata = _subject_strata(subjects, groups, strata)
            weights = resample_weights(sub_strata, n_resamples, seed)
        for part in _parts(predictions):
            keep = np.ones(len(subjects), bool) if part == "composite" else sub_strata == part
            res = _intervals(counts[keep], weights[:, keep], level)
            row = {"classifier": str(col).removeprefix("pred_"), "part": part,
                   "n": int(counts[keep].sum()), "n_subjects": int(keep.sum())}
            for m in METRICS:
                row[m], row[f"{m}_lo"], row[f"{m}_hi"] = res[m]
            rows.append(row)
    return pd.DataFrame(rows)


def paired_table(predictions: pd.DataFrame, reference: str, others: Sequence[str] | None = None, *,
                 n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Each column's score minus ``reference``'s, with paired intervals, per part.

    Parameters
    ----------
    predictions : DataFrame
        As for :func:`bootstrap_table`; the columns compared must predict the same rows.
    reference : str
        The prediction column every other is compared with (e.g. the full method).
    others : sequence of str, optional
        Default: every other ``pred_*`` column.

    Returns
    -------
    DataFrame
        ``classifier``, ``reference`` (names without ``pred_``), ``part``, ``n``, then
        ``d_uf1``, ``d_uf1_lo``, ``d_uf1_hi`` and the same for ``uar`` and ``accuracy``
        (positive: the classifier scores higher than the reference).
    """
    others = list(others) if others is not None else [c for c in prediction_columns(predictions)
                                                     if c != reference]
    _check_table(predictions, [reference, *others])
    groups = (predictions["dataset"].astype(str) + "/" + predictions["subject"].astype(str)).to_numpy()
    strata = predictions["dataset"].astype(str).to_numpy()
    y = predictions["label"].to_numpy()
    subjects, ref_counts = subject_counts(y, predictions[reference].to_numpy(), groups)
    sub_strata = _subject_strata(subjects, groups, strata)
    weights = resample_weights(sub_strata, n_resamples, seed)
    rows = []
    for col in others:
        _, counts = subject_counts(y, predictions[col].to_numpy(), groups)
        for part in _parts(predictions):
            keep = np.ones(len(subjects), bool) if part == "composite" else sub_strata == part
            res = _paired(counts[keep], ref_counts[keep], weights[:, keep], level)
            row = {"classifier": str(col).removeprefix("pred_"),
                   "reference": str(reference).removeprefix("pred_"), "part": part,
                   "n": int(counts[keep].sum())}
            for m in METRICS:
                row[f"d_{m}"], row[f"d_{m}_lo"], row[f"d_{m}_hi"] = res[m]
            rows.append(row)
    return pd.DataFrame(rows)


def format_interval(value: float, lo: float, hi: float, decimals: int = 3,
                    interval_decimals: int = 2, *, signed: bool = False) -> str:
    """``"0.412 [0.31, 0.52]"``: the point with ``decimals``, the bounds coarser.

    The bounds get fewer decimals because percentiles of 1,000 resamples are not precise
    to the third decimal. ``signed=True`` writes differences as ``"+0.021 [-0.05, +0.09]"``.
    """
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in (value, lo, hi)):
        return ""
    sign = "+" if signed else ""
    return f"{value:{sign}.{decimals}f} [{lo:{sign}.{interval_decimals}f}, {hi:{sign}.{interval_decimals}f}]"


def interval_columns(table: pd.DataFrame, metrics: Sequence[str] = METRICS, *, decimals: int = 3,
                     interval_decimals: int = 2, prefix: str = "") -> pd.DataFrame:
    """Replace each ``m``, ``m_lo``, ``m_hi`` triple by one text column ``m``.

    Works on :func:`bootstrap_table` output (``prefix=""``) and on :func:`paired_table`
    output (``prefix="d_"``, written signed). Other columns are kept as they are.
    """
    out = table.copy()
    for m in metrics:
        name = f"{prefix}{m}"
        need = [name, f"{name}_lo", f"{name}_hi"]
        if any(c not in out.columns for c in need):
            raise ConfigError(f"table: missing columns {[c for c in need if c not in out.columns]}")
        out[name] = [format_interval(v, lo, hi, decimals, interval_decimals, signed=bool(prefix))
                     for v, lo, hi in zip(out[name], out[f"{name}_lo"], out[f"{name}_hi"])]
        out = out.drop(columns=need[1:])
    return out
