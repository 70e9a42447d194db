"""UF1, UAR and accuracy on pooled predictions (MEGC2019 conventions): the protocol's
three scores, on the ground floor because both training (the best macro epoch) and
evaluation (LOSO) score with them; :mod:`merlib.evaluation.metrics` adds the tables.

Conventions: every ``*_score`` is higher-is-better, on [0, 1]. Labels are the class
names of :data:`~merlib.data.schema.LABELS` (or their integer codes); the class order and
set are always ``LABELS``, even when a fold or a part lacks a class:

- UF1 = mean over the three classes of per-class F1, from TP/FP/FN counted over all
  pooled predictions (not an average of per-fold scores);
- UAR = mean over the three classes of per-class recall TP_c / N_c.

A class with no true and no predicted sample scores 0 (``zero_division=0``): the three
parts of the composite all hold every class, so this only matters on toy data.

Every score comes with ``n``, the number of pooled samples it was computed on: a table
of results says over how many samples of each part it holds (samples that
pre-processing could not use are not among them; the LOSO protocol lists those).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score

from merlib.data.schema import LABELS

__all__ = ["uf1_score", "uar_score", "accuracy", "scores"]


def _as_names(y: Sequence | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(LABELS)):
            raise ValueError(f"{name}: integer codes must lie in [0, {len(LABELS)}), got "
                             f"min {arr.min()} max {arr.max()}")
        return np.asarray(LABELS, dtype=object)[arr]
    arr = arr.astype(object)
    bad = ~np.isin(arr, LABELS)
    if bad.any():
        raise ValueError(f"{name}: {arr[bad][0]!r} is not one of {LABELS}")
    return arr


def _checked(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_names(y_true, "y_true"), _as_names(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_pred: expected {len(t)} predictions (one per y_true), got {len(p)}")
    if not len(t):
        raise ValueError("y_true: expected at least one sample, got none")
    return t, p


def uf1_score(y_true, y_pred) -> float:
    """Unweighted F1: mean per-class F1 over :data:`LABELS`."""
    t, p = _checked(y_true, y_pred)
    return float(f1_score(t, p, labels=list(LABELS), average="macro", zero_division=0))


def uar_score(y_true, y_pred) -> float:
    """Unweighted average recall: mean per-class recall over :data:`LABELS`."""
    t, p = _checked(y_true, y_pred)
    return float(recall_score(t, p, labels=list(LABELS), average="macro", zero_division=0))


def accuracy(y_true, y_pred) -> float:
    t, p = _checked(y_true, y_pred)
    return float(accuracy_score(t, p))


def scores(y_true, y_pred) -> dict[str, float]:
    """``{"uf1", "uar", "accuracy", "n"}`` of one set of pooled predictions."""
    return {"uf1": uf1_score(y_true, y_pred), "uar": uar_score(y_true, y_pred),
            "accuracy": accuracy(y_true, y_pred), "n": int(len(np.asarray(y_true)))}
