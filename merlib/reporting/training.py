"""Figures and tables of the training chapters: learning curves, LOSO metrics."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from merlib.provenance import Provenance


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


def accuracy_curves(curves: dict[str, pd.DataFrame], provenance: Provenance, *,
                    title: str = "Fine-tuning: training and validation accuracy") -> plt.Figure:
    """One panel per run: training and validation accuracy per epoch (Figures 6-8).

    Parameters
    ----------
    curves : dict of str -> DataFrame
        Panel title -> columns ``epoch`` (1-based), ``train_acc``, ``val_acc``
        (:func:`merlib.evaluation.variants.inner_split_curves`); validation is held-out
        training subjects, never a test subject.
    provenance : Provenance
        Stamped on the figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not curves:
        raise ValueError("curves: expected at least one run, got none")
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.4), squeeze=False, sharey=True)
    for ax, (name, c) in zip(axes[0], curves.items()):
        ax.plot(c["epoch"], c["train_acc"], "o-", label="training")
        ax.plot(c["epoch"], c["val_acc"], "s-", label="validation (held-out training subjects)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return provenance.stamp(fig)
