"""Summary tables in the shape the book shows them, each captioned with its provenance."""
from __future__ import annotations

import pandas as pd

from merlib.data.schema import LABELS
from merlib.provenance import Provenance

#: Column shown for samples whose emotion is outside the three classes.
UNLABELLED = "(no label)"


def class_counts(table: pd.DataFrame, by: str | list[str] = "dataset") -> pd.DataFrame:
    """Samples per group and class, with totals.

    Parameters
    ----------
    table : DataFrame
        A canonical sample table (or any table with a ``label`` column and ``by``).
    by : str or list of str
        Grouping column(s), e.g. ``"dataset"`` or ``["dataset", "subject"]``.

    Returns
    -------
    DataFrame of int, shape (n_groups + 1, 5)
        Columns negative, positive, surprise, (no label), Total; last row "Total".
        Every class column is present even when no sample has that class.
    """
    labels = table["label"].astype("string").fillna(UNLABELLED).rename("label")
    keys = [table[c] for c in ([by] if isinstance(by, str) else by)]
    counts = pd.crosstab(keys, labels, margins=True, margins_name="Total")
    counts = counts.reindex(columns=[*LABELS, UNLABELLED, "Total"], fill_value=0)
    if not counts[UNLABELLED].any():
        counts = counts.drop(columns=UNLABELLED)
    counts.columns.name = None
    return counts.astype(int)


def captioned(df: pd.DataFrame, provenance: Provenance, title: str):
    """A pandas Styler showing ``df`` under ``title`` with the provenance caption.

    Simulated-data tables get "SIMULATED DATA" in the title, so the label travels with
    the table when it is copied out of the book.
    """
    if provenance.simulated:
        title = f"SIMULATED DATA — {title}"
    caption = f"<b>{title}</b><br><small>{provenance.caption()}</small>"
    return df.style.set_caption(caption)
