"""Tables of scores on pooled predictions: the composite and each part, confusion matrices.

The scores themselves, and their conventions (UF1, UAR, accuracy over the fixed
:data:`~merlib.data.schema.LABELS`), are :mod:`merlib.scores`, re-exported here.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.metrics import confusion_matrix

from merlib.data.schema import LABELS
from merlib.scores import _checked, accuracy, scores, uar_score, uf1_score

__all__ = ["PARTS", "accuracy", "confusion", "metrics_table", "scores", "uar_score", "uf1_score"]

#: Order of the per-part rows of :func:`metrics_table`.
PARTS: tuple[str, ...] = ("composite", "smic", "casme2", "samm")


def confusion(y_true, y_pred) -> pd.DataFrame:
    """Counts, rows = true class, columns = predicted class, in :data:`LABELS` order."""
    t, p = _checked(y_true, y_pred)
    m = confusion_matrix(t, p, labels=list(LABELS))
    return pd.DataFrame(m, index=pd.Index(LABELS, name="true"), columns=pd.Index(LABELS, name="predicted"))


def metrics_table(predictions: pd.DataFrame, pred_columns: Sequence[str] = ("pred",)) -> pd.DataFrame:
    """UF1, UAR, accuracy for the whole composite and each part, from the same pooled rows.

    Parameters
    ----------
    predictions : DataFrame
        One row per sample with ``dataset``, ``label`` and each of ``pred_columns``.
    pred_columns : sequence of str
        Prediction columns to score (e.g. ``pred_svm``, ``pred_softmax``).

    Returns
    -------
    DataFrame
        Columns ``classifier`` (the prediction column), ``part`` (``composite`` then each
        dataset present, in :data:`PARTS` order), ``uf1``, ``uar``, ``accuracy``, ``n``
        (the rows of ``predictions`` in that part: what the three scores are over).
    """
    missing = [c for c in ("dataset", "label", *pred_columns) if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: missing columns {missing}")
    present = list(pd.unique(predictions["dataset"]))
    parts = ["composite"] + [p for p in PARTS[1:] if p in present] + sorted(set(present) - set(PARTS))
    rows = []
    for col in pred_columns:
        for part in parts:
            sel = predictions if part == "composite" else predictions[predictions["dataset"] == part]
            rows.append({"classifier": col, "part": part, **scores(sel["label"], sel[col])})
    return pd.DataFrame(rows)
