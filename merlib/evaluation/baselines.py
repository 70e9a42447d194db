"""Reference predictions that any learned model must beat."""
from __future__ import annotations

import pandas as pd


def majority_class_predictions(predictions: pd.DataFrame) -> pd.Series:
    """Per LOSO fold, the most frequent label among the *training* subjects.

    Parameters
    ----------
    predictions : DataFrame
        One row per sample with ``fold`` (the outer LOSO fold whose test subject the
        sample is) and ``label``.

    Returns
    -------
    Series of str, same index
        What a classifier that always answers its training majority predicts (ties go to
        the first label in sorted order, so the result is deterministic).
    """
    for col in ("fold", "label"):
        if col not in predictions.columns:
            raise ValueError(f"predictions: missing column {col!r}")
    out = pd.Series(index=predictions.index, dtype="object")
    for fold, rows in predictions.groupby("fold").groups.items():
        train = predictions.loc[predictions["fold"] != fold, "label"]
        counts = train.value_counts()
        out.loc[rows] = sorted(counts[counts == counts.max()].index)[0]
    return out.astype("string")
