"""Published MEGC2019-composite results of other methods, each number with its source.

The packaged ``resources/published_results.csv`` holds one row per method: UF1 and UAR
for the composite and each part (SMIC, CASME II, SAMM) as the method's authors report
them under leave-one-subject-out, the bibliography key (``book/references.bib``), the
protocol, and where each number was read (``source``). A number that could not be read
in a source is left empty, never filled in from memory. These are results on the real
datasets: they are not comparable with any score merlib computes on SynthME, and every
table that shows them says so (``status``).
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from merlib.errors import AnnotationError

RESOURCE = "published_results.csv"

#: The score columns, each a fraction in [0, 1] or empty.
SCORE_COLUMNS: tuple[str, ...] = ("uf1_composite", "uar_composite", "uf1_smic", "uar_smic",
                                  "uf1_casme2", "uar_casme2", "uf1_samm", "uar_samm")

COLUMNS: tuple[str, ...] = ("method", "year", "bib_key", "protocol", *SCORE_COLUMNS, "source", "note")

#: What the ``status`` column says on every row.
STATUS = "published (real data)"


def published_results() -> pd.DataFrame:
    """The packaged published results, validated.

    Returns
    -------
    DataFrame
        :data:`COLUMNS` plus ``status`` (:data:`STATUS`); scores are float (NaN where the
        source gives none), ``year`` is int.

    Raises
    ------
    AnnotationError
        A row has a score outside [0, 1], no source, no bibliography key, or a column is
        missing (names the row and column).
    """
    ref = resources.files("merlib.data").joinpath("resources", RESOURCE)
    with ref.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype={c: "string" for c in ("method", "bib_key", "protocol", "source", "note")})
    return validate_published(table, source=RESOURCE).assign(status=STATUS)


def published_as_written() -> pd.DataFrame:
    """:func:`published_results` with every score as the text its source printed.

    A source that prints two decimals ("0.20") is shown with two, not as 0.2000: the
    table must not look more precise than what was published. Empty cells stay empty.

    Returns
    -------
    DataFrame
        Same rows and columns as :func:`published_results`; score columns are str.
    """
    table = published_results()
    ref = resources.files("merlib.data").joinpath("resources", RESOURCE)
    with ref.open("r", encoding="utf-8") as fh:
        text = pd.read_csv(fh, dtype=str, keep_default_na=False)
    for col in SCORE_COLUMNS:
        table[col] = text[col].str.strip().to_numpy()
    return table


def validate_published(table: pd.DataFrame, *, source: str = "published results") -> pd.DataFrame:
    """Check a published-results table; returns it with float scores and int years."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise AnnotationError(f"{source}: missing columns {missing}; expected {list(COLUMNS)}")
    out = table[list(COLUMNS)].copy()
    for col in SCORE_COLUMNS:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.notna() & ((values < 0) | (values > 1)) | (values.isna() & out[col].notna()
                                                               & (out[col].astype(str).str.strip() != ""))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AnnotationError(f"{source}: row {i + 2} ({out['method'].iloc[i]}): {col} "
                                  f"{out[col].iloc[i]!r} is not a fraction in [0, 1] (write 0.7353, not 73.53)")
        out[col] = values.astype(float)
    for col in ("method", "bib_key", "source"):
        empty = out[col].isna() | (out[col].astype(str).str.strip() == "")
        if empty.any():
            i = int(np.flatnonzero(empty.to_numpy())[0])
            raise AnnotationError(f"{source}: row {i + 2} ({out['method'].iloc[i]}): {col} is empty; "
                                  "every published number needs its method, bibliography key and source")
    no_score = out[list(SCORE_COLUMNS)].isna().all(axis=1)
    if no_score.any():
        i = int(np.flatnonzero(no_score.to_numpy())[0])
        raise AnnotationError(f"{source}: row {i + 2} ({out['method'].iloc[i]}): no score at all")
    out["year"] = pd.to_numeric(out["year"], errors="raise").astype(int)
    return out.reset_index(drop=True)
