"""Table and figure of the robustness chapter (08): scores per perturbation and strength.

Both read :func:`merlib.studies.robustness.summarise` output: one row per
(perturbation, strength), ``clean`` first, with ``n``, ``failed``, ``wrong``, ``uf1``,
``uar`` and ``d_uf1`` and their ``_lo`` / ``_hi`` interval bounds.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from merlib.evaluation.bootstrap import format_interval
from merlib.faces.perturb import GEOMETRIC, UNITS
from merlib.provenance import Provenance
from merlib.reporting.tables import whole_numbers

__all__ = ["TABLE_COLUMNS", "summary_table", "robustness_figure"]

#: Columns of :func:`summary_table`, in order.
TABLE_COLUMNS: tuple[str, ...] = ("perturbation", "strength", "n", "failed", "wrong", "uf1", "uar", "d_uf1")


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as shown: UF1, UAR and the UF1 change written with their intervals.

    Parameters
    ----------
    summary : DataFrame
        :func:`~merlib.studies.robustness.summarise` output, n_conditions rows.

    Returns
    -------
    DataFrame
        n_conditions rows, :data:`TABLE_COLUMNS`: ``uf1`` and ``uar`` as ``"0.412 [0.31,
        0.52]"``, ``d_uf1`` signed (``"+0.021 [-0.05, +0.09]"``), ``strength`` rounded to
        3 decimals, the counts ``n``, ``failed`` and ``wrong`` integers (``Int64``).
    """
    show = summary.assign(
        uf1=[format_interval(v, lo, hi) for v, lo, hi in zip(summary["uf1"], summary["uf1_lo"], summary["uf1_hi"])],
        uar=[format_interval(v, lo, hi) for v, lo, hi in zip(summary["uar"], summary["uar_lo"], summary["uar_hi"])])
    show["d_uf1"] = [format_interval(v, lo, hi, signed=True)
                     for v, lo, hi in zip(summary["d_uf1"], summary["d_uf1_lo"], summary["d_uf1_hi"])]
    show = show[list(TABLE_COLUMNS)].round(3)
    return show.assign(**{c: whole_numbers(show[c]) for c in ("n", "failed", "wrong")})


def robustness_figure(summary: pd.DataFrame, grid: Mapping[str, Sequence[float]], provenance: Provenance, *,
                      title: str, ncol: int = 4) -> plt.Figure:
    """One panel per perturbation: composite UF1 against strength, failures as bars.

    Each panel starts at the clean condition; the line is UF1 with its interval, the red
    bars the fraction of test samples whose face the pre-processing lost.

    Parameters
    ----------
    summary : DataFrame
        :func:`~merlib.studies.robustness.summarise` output.
    grid : mapping of str -> sequence of float
        The perturbations drawn, in panel order (only the names are read).
    provenance : Provenance
        Stamped on the figure.
    title : str
        The figure's title.
    ncol : int, default=4
        Panels per row; unused cells of the last row are hidden.

    Returns
    -------
    matplotlib.figure.Figure
        ``ceil(len(grid) / ncol)`` rows of ``ncol`` axes sharing the UF1 axis; the
        ``len(grid)`` first are the panels.
    """
    names = [n for n in grid]
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.8 * nrow), squeeze=False, sharey=True)
    clean = summary[summary["perturbation"] == "clean"].iloc[0]
    for ax, name in zip(axes.ravel(), names):
        s = summary[summary["perturbation"] == name]
        x = np.arange(len(s) + 1)
        ys = np.r_[clean["uf1"], s["uf1"]]
        lo, hi = np.r_[clean["uf1_lo"], s["uf1_lo"]], np.r_[clean["uf1_hi"], s["uf1_hi"]]
        ax.errorbar(x, ys, yerr=[ys - lo, hi - ys], fmt="-o", capsize=3)
        fail = np.r_[clean["failed"], s["failed"]] / clean["n"]
        ax.bar(x, fail, color="tab:red", alpha=0.35, label="detection failures (fraction)")
        ax.set_xticks(x, ["clean"] + [f"{v:g}" for v in s["strength"]], fontsize=7)
        ax.set_title(name + (" (geometric)" if name in GEOMETRIC else ""), fontsize=9)
        ax.set_xlabel(UNITS[name], fontsize=7)
        ax.set_ylim(0, 1.02)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("composite UF1")
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.suptitle(title)
    provenance.stamp(fig)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
