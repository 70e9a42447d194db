"""Pooled LOSO confusion matrices and per-class reports (the paper's Figure 9).

A LOSO run predicts every sample once, from the fold that held its subject out; the
matrices here count those pooled predictions, for the composite and each part, rows =
true class, columns = predicted class, always in :data:`~merlib.data.schema.LABELS`
order (a class nobody predicted still has its column).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.evaluation.metrics import PARTS
from merlib.provenance import Provenance


def _rows(predictions: pd.DataFrame, column: str, part: str) -> pd.DataFrame:
    missing = [c for c in ("dataset", "label", column) if c not in predictions.columns]
    if missing:
        raise ConfigError(f"predictions: missing columns {missing}")
    if part == "composite":
        rows = predictions
    else:
        rows = predictions[predictions["dataset"].astype(str) == part]
    if rows.empty:
        present = sorted(predictions["dataset"].astype(str).unique())
        raise ConfigError(f"part: no sample of {part!r} in the predictions (parts present: {present})")
    return rows


def parts_of(predictions: pd.DataFrame) -> list[str]:
    """``composite`` then the parts present, in :data:`~merlib.evaluation.metrics.PARTS` order."""
    present = set(predictions["dataset"].astype(str))
    return ["composite"] + [p for p in PARTS[1:] if p in present] + sorted(present - set(PARTS))


def pooled_confusion(predictions: pd.DataFrame, column: str = "pred_svm", part: str = "composite", *,
                     normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix of one prediction column over one part's pooled predictions.

    Parameters
    ----------
    predictions : DataFrame
        ``predictions.csv`` of a LOSO run: ``dataset``, ``label`` and ``column``.
    column : str
        Prediction column, e.g. ``pred_svm`` or ``pred_softmax``.
    part : str
        ``composite`` (every row) or a ``dataset`` value (``smic``, ``casme2``, ``samm``).
    normalize : bool
        Divide each row by its number of true samples (the diagonal is then per-class
        recall); a class without samples gets a row of NaN, not of zeros.

    Returns
    -------
    DataFrame of shape (3, 3)
        Index ``true``, columns ``predicted``, both :data:`LABELS`; int counts, or float
        fractions when ``normalize``.

    Raises
    ------
    ConfigError
        A column is missing or the part has no sample.
    """
    rows = _rows(predictions, column, part)
    counts = confusion_matrix(rows["label"].astype(str), rows[column].astype(str), labels=list(LABELS))
    table = pd.DataFrame(counts, index=pd.Index(LABELS, name="true"), columns=pd.Index(LABELS, name="predicted"))
    if not normalize:
        return table
    totals = table.sum(axis=1).replace(0, np.nan)
    return table.div(totals, axis=0)


def class_report(predictions: pd.DataFrame, column: str = "pred_svm", part: str = "composite") -> pd.DataFrame:
    """Per-class precision, recall, F1 and support (:func:`sklearn.metrics.classification_report`).

    Returns
    -------
    DataFrame
        Rows: the three classes, then ``macro avg`` (its F1 is the UF1, its recall the
        UAR) and ``weighted avg``; columns precision, recall, f1-score, support (int).
        A class never predicted has precision 0 (``zero_division=0``, as the metrics).
    """
    rows = _rows(predictions, column, part)
    report = classification_report(rows["label"].astype(str), rows[column].astype(str), labels=list(LABELS),
                                   output_dict=True, zero_division=0)
    table = pd.DataFrame({k: report[k] for k in [*LABELS, "macro avg", "weighted avg"]}).T
    table["support"] = table["support"].astype(int)
    return table


def class_reports(predictions: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """:func:`class_report` for every column and part, stacked.

    Returns
    -------
    DataFrame
        Index (classifier, part, class); columns precision, recall, f1-score, support.
    """
    frames = {(str(c).removeprefix("pred_"), part): class_report(predictions, c, part)
              for c in columns for part in parts_of(predictions)}
    out = pd.concat(frames, names=["classifier", "part", "class"])
    return out


def confusion_figure(predictions: pd.DataFrame, column: str, provenance: Provenance, *,
                     title: str | None = None, parts: Sequence[str] | None = None) -> plt.Figure:
    """Counts (top row) and row-normalised fractions (bottom row), one column per part.

    Parameters
    ----------
    predictions : DataFrame
    column : str
        Prediction column.
    provenance : Provenance
        Stamped on the figure (SIMULATED in the title on SynthME).
    title : str, optional
    parts : sequence of str, optional
        Default: composite and every part present.

    Returns
    -------
    matplotlib.figure.Figure
        Seaborn heatmaps; each normalised cell is annotated with its fraction.
    """
    import seaborn as sns

    parts = list(parts) if parts is not None else parts_of(predictions)
    fig, axes = plt.subplots(2, len(parts), figsize=(3.1 * len(parts), 6.0), squeeze=False)
    for j, part in enumerate(parts):
        counts = pooled_confusion(predictions, column, part)
        frac = pooled_confusion(predictions, column, part, normalize=True)
        sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[0, j], square=True)
        sns.heatmap(frac, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=axes[1, j],
                    square=True)
        axes[0, j].set_title(f"{part} (n={int(counts.to_numpy().sum())})", fontsize=9)
        axes[1, j].set_title(f"{part}, row-normalised", fontsize=9)
        for ax in axes[:, j]:
            ax.tick_params(labelsize=7)
            if j:
                ax.set_ylabel("")
    fig.suptitle(title or f"Pooled LOSO confusion matrices, {column.removeprefix('pred_')}")
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    return provenance.stamp(fig)
