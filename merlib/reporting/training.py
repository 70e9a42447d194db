"""Figures and tables of the training chapters: learning curves, LOSO metrics."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from merlib.reporting.provenance import Provenance


def learning_curves(curves: pd.DataFrame, best_epoch: int, provenance: Provenance, *,
                    title: str = "Macro-expression training") -> plt.Figure:
    """Accuracy and loss per epoch, training vs validation, best epoch marked.

    Parameters
    ----------
    curves : DataFrame
        Columns ``epoch`` (1-based), ``train_acc``, ``val_acc``, ``train_loss``, ``val_loss``.
    best_epoch : int
        The epoch whose weights were kept (drawn as a dashed line).
    """
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
        ax.plot(curves["epoch"], curves[f"train_{metric}"], "o-", label="training")
        ax.plot(curves["epoch"], curves[f"val_{metric}"], "s-", label="validation (held-out subjects)")
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("accuracy" if metric == "acc" else "cross-entropy loss")
    ax_acc.set_ylim(0, 1)
    ax_acc.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return provenance.stamp(fig)


def metrics_wide(metrics: pd.DataFrame, by: str = "classifier") -> pd.DataFrame:
    """``metrics.csv`` as one row per ``by`` value and (metric, part) columns, rounded."""
    wide = metrics.pivot(index=by, columns="part", values=["uf1", "uar", "accuracy"])
    parts = list(pd.unique(metrics["part"]))
    wide = wide.reindex(columns=pd.MultiIndex.from_product([["uf1", "uar", "accuracy"], parts]))
    return wide.round(4)
