"""Summary tables in the shape the book shows them, each captioned with its provenance."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from merlib.data.schema import LABELS
from merlib.errors import ConfigError
from merlib.provenance import Provenance

#: Column shown for samples whose emotion is outside the three classes.
UNLABELLED = "(no label)"

#: Most decimals a table shows: scores to 4 places (their subject-bootstrap intervals are
#: a few hundredths wide, so more would be noise).
MAX_DECIMALS = 4


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


def whole_numbers(values: pd.Series) -> pd.Series:
    """A count column as nullable integers (``Int64``): a missing count stays missing
    instead of turning every other count into a float (``113.0``).

    Raises
    ------
    ConfigError
        A value is not a whole number (names the column and the first such value).
    """
    v = pd.to_numeric(values)
    present = v.dropna().to_numpy(dtype=np.float64)
    fractional = present[present != np.round(present)]
    if fractional.size:
        raise ConfigError(f"values: column {values.name!r} should hold counts (whole numbers), "
                          f"got {float(fractional[0])}")
    return v.astype("Int64")


def column_decimals(values: pd.Series | np.ndarray, max_decimals: int = MAX_DECIMALS) -> int | None:
    """Decimals that show every value of a float column as it is, at most ``max_decimals``.

    Parameters
    ----------
    values : Series or ndarray of float
        NaN and infinite values are ignored.
    max_decimals : int, default=MAX_DECIMALS

    Returns
    -------
    int or None
        0 when every value is a whole number (``30.0`` reads ``30``); else the fewest
        places that leave every value unchanged (a column of 0.5 and 0.028 reads
        ``0.500``, ``0.028``); ``max_decimals`` for unrounded values; None when that
        would print a non-zero value as zero (``2e-07``: write the column in
        significant digits).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    # Equality within rounding of the float itself: 0.1 + 0.2 is 0.3 to one place.
    tol = 1e-9 * np.maximum(1.0, np.abs(v))
    for d in range(max_decimals + 1):
        if np.all(np.abs(v - np.round(v, d)) <= tol):
            return d
    nonzero = np.abs(v[v != 0])
    if nonzero.size and nonzero.min() < 0.5 * 10.0 ** -max_decimals:
        return None
    return max_decimals


def display_formats(df: pd.DataFrame, max_decimals: int = MAX_DECIMALS) -> dict[object, str]:
    """A Styler format string for each float column of ``df`` (see :func:`column_decimals`).

    pandas' Styler writes every float with 6 decimals (``30.000000``, ``0.028000``);
    these formats write whole numbers as integers and the rest with the places they need.
    Integer (including nullable ``Int64``), boolean and text columns need none.
    """
    out: dict[object, str] = {}
    for col, values in df.items():
        if not pd.api.types.is_float_dtype(values.dtype):
            continue
        d = column_decimals(values.to_numpy(dtype=np.float64, na_value=np.nan), max_decimals)
        out[col] = "{:.3g}" if d is None else f"{{:.{d}f}}"
    return out


def _index_formats(index: pd.Index, max_decimals: int) -> list[tuple[int, Callable[[float], str]]]:
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    out = []
    for i, level in enumerate(levels):
        if pd.api.types.is_float_dtype(level.dtype):
            d = column_decimals(level.to_numpy(dtype=np.float64, na_value=np.nan), max_decimals)
            fmt = "{:.3g}" if d is None else f"{{:.{d}f}}"
            out.append((i, fmt.format))
    return out


def spaced(styler):
    """``styler`` with padded cells. The book's theme pads no table a notebook outputs:
    without padding adjacent numeric cells render as one run of digits ("0.62960.6227")."""
    return styler.set_table_styles([{"selector": "th, td", "props": "padding: 0.2em 0.8em;"}], overwrite=False)


def captioned(df: pd.DataFrame, provenance: Provenance, title: str, *, max_decimals: int = MAX_DECIMALS):
    """A pandas Styler showing ``df`` under ``title`` with the provenance caption.

    Simulated-data tables get "SIMULATED DATA" in the title, so the label travels with
    the table when it is copied out of the book. Numbers are written as they are, not with
    the Styler's 6 decimals (:func:`display_formats`; float row and column labels too), and
    missing values as empty cells. ``df`` itself is not changed: a later
    ``.format(...)`` on the result still overrides any column.

    Parameters
    ----------
    df : DataFrame
    provenance : Provenance
    title : str
    max_decimals : int, default=MAX_DECIMALS
        Most places a float column shows.
    """
    if provenance.simulated:
        title = f"SIMULATED DATA — {title}"
    caption = f"<b>{title}</b><br><small>{provenance.caption()}</small>"
    styler = spaced(df.style.set_caption(caption).format(na_rep=""))
    formats = display_formats(df, max_decimals)
    if formats:
        styler = styler.format(formats, na_rep="")
    for axis, index in ((0, df.index), (1, df.columns)):
        for level, fmt in _index_formats(index, max_decimals):
            styler = styler.format_index(fmt, axis=axis, level=level, na_rep="")
    return styler
