"""The canonical sample table every dataset reader returns.

One row per sample (a clip, or a single image for JAFFE). Paths are POSIX strings
relative to the ``data_root`` the reader was given, so a manifest is the same on every
machine that holds the same data.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from merlib.errors import MerlibError

#: The three classes of the paper and of MEGC2019, in the order used for every
#: confusion matrix and per-class metric.
LABELS: tuple[str, ...] = ("negative", "positive", "surprise")

MICRO_DATASETS: tuple[str, ...] = ("casme2", "samm", "smic")
MACRO_DATASETS: tuple[str, ...] = ("ckplus", "oulu", "jaffe", "mug")
DATASETS: tuple[str, ...] = MICRO_DATASETS + MACRO_DATASETS

#: Column name -> pandas dtype. ``label`` is empty (NA) when the original emotion is
#: outside the 3-class mapping; ``flags`` lists, ';'-separated, every value the reader
#: filled in rather than read (e.g. ``apex_missing:middle_frame``).
COLUMNS: dict[str, str] = {
    "dataset": "string",
    "part": "string",  # SMIC HS/VIS/NIR, Oulu VL/NI + lighting, CASME II raw/cropped ...
    "subject": "string",  # canonical name: sub01, 006, s01, S005, P001, KA, 001
    "sample": "string",  # canonical name: EP02_01f, 006_1_2, s01_po_01, S005_001 ...
    "emotion": "string",  # as the owners wrote it
    "label": "string",  # negative / positive / surprise, or NA
    "onset_frame": "Int64",
    "apex_frame": "Int64",
    "offset_frame": "Int64",
    "n_frames": "Int64",
    "clip_dir": "string",  # folder of the frames, relative to data_root
    "apex_path": "string",  # apex image, relative to data_root
    "flags": "string",  # '' when nothing was filled in
}


class SchemaError(MerlibError, ValueError):
    """A sample table does not have the canonical columns or values."""


def empty_table() -> pd.DataFrame:
    """An empty table with the canonical columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def to_table(rows: Iterable[dict]) -> pd.DataFrame:
    """Build a canonical table from row dicts (missing keys become NA).

    Extra keys are kept as extra columns after the canonical ones.
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        return empty_table()
    for col, dtype in COLUMNS.items():
        if col not in df.columns:
            df[col] = pd.NA
        df[col] = df[col].astype(dtype)
    df["flags"] = df["flags"].fillna("")
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra].reset_index(drop=True)


def validate_table(df: pd.DataFrame, *, source: str = "sample table") -> pd.DataFrame:
    """Raise :class:`SchemaError` naming the column or row that breaks the schema."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SchemaError(f"{source}: missing columns {missing}; expected {list(COLUMNS)}")
    bad_label = df["label"].notna() & ~df["label"].isin(LABELS)
    if bad_label.any():
        i = int(bad_label.to_numpy().nonzero()[0][0])
        raise SchemaError(
            f"{source}: row {i} ({df['sample'].iloc[i]}): label {df['label'].iloc[i]!r} "
            f"is not one of {LABELS} or empty"
        )
    dup = df.duplicated(["dataset", "part", "subject", "sample"])
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise SchemaError(f"{source}: row {i}: duplicate sample {df['sample'].iloc[i]!r}")
    return df


def flagged_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Every row with a filled-in value: dataset, subject, sample, apex_frame, flags.

    Parameters
    ----------
    table : DataFrame
        A canonical table (an index, or a composite's ``table``).

    Returns
    -------
    DataFrame
        The flagged rows in table order, index reset.
    """
    cols = ["dataset", "subject", "sample", "apex_frame", "flags"]
    return table.loc[table["flags"].fillna("") != "", cols].reset_index(drop=True)


def flag_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How many rows carry each flag, per dataset (a row with two flags counts for both).

    The value after a flag's ``:`` that names a cell or frame (``apex_uncoded:/``,
    ``apex_outside_clip:6000``) is kept: each distinct cell is a distinct problem.

    Returns
    -------
    DataFrame
        Columns dataset, flag, samples; sorted by dataset, then flag.
    """
    rows = flagged_rows(table)
    pairs = [(d, f) for d, flags in zip(rows["dataset"], rows["flags"]) for f in flags.split(";")]
    counts = pd.DataFrame(pairs, columns=["dataset", "flag"]).value_counts().rename("samples")
    return counts.reset_index().sort_values(["dataset", "flag"]).reset_index(drop=True)
