"""Dated development records (``bench/records/devnote-*.json``) as the book's tables.

A development note is a measurement made once, on one machine, at one commit, that no
chapter recomputes on every build: a probe that decided a setting, a build's timings. The
book's prose never types such a number; the development-notes appendix renders it from
its record, with the record's date, machine, commit and command, so a reader sees how old
it is and what made it.

A record is one JSON object:

- ``title``, ``finding`` (one or two sentences: what was seen), ``settings`` (the data and
  settings it ran on);
- ``date``: ``YYYY-MM-DD``, or ``YYYY-MM-DD/YYYY-MM-DD`` for measurements spread over days;
- ``machine``, ``commit`` and ``command``: ``"unknown"`` where the notes did not say;
- ``source``: where the numbers were first written down;
- ``tables``: a list of ``{"caption", "columns", "rows"}``, each row one value per
  column: a number, a string or ``null`` (not measured).

Numbers keep the digits the record gives: a table shows ``0.090`` as ``0.090``, never
``0.09`` or ``0.090000``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from merlib.errors import BrokenFileError, DataLayoutError

#: File names of development records; the calibration records beside them
#: (``calibration-*.json``) have their own reader (:mod:`merlib.studies.calibration`).
PATTERN = "devnote-*.json"

#: Keys every record holds.
REQUIRED: tuple[str, ...] = ("title", "date", "machine", "commit", "command", "settings", "finding",
                             "source", "tables")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(/\d{4}-\d{2}-\d{2})?$")


@dataclass(frozen=True)
class RecordTable:
    """One table of a record.

    Attributes
    ----------
    caption : str
    values : DataFrame
        Numbers as float (NaN where the record has ``null``), text as str: for computing.
    text : DataFrame
        The same cells as the record writes them (``""`` for ``null``): for showing.
    """

    caption: str
    values: pd.DataFrame
    text: pd.DataFrame


@dataclass(frozen=True)
class DevRecord:
    """A development record read from ``bench/records`` (see the module docstring)."""

    name: str
    title: str
    date: str
    machine: str
    commit: str
    command: str
    settings: str
    finding: str
    source: str
    tables: tuple[RecordTable, ...]

    def provenance(self) -> str:
        """One line: when, where, at which commit and with which command it was measured."""
        return (f"Recorded {self.date} on {self.machine}; commit {self.commit}; "
                f"command: {self.command}; record bench/records/{self.name}")


def records_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder of the records: ``folder`` as given, else ``bench/records`` of the checkout.

    The checkout is the nearest folder upwards from the working directory that holds
    ``bench/records`` (notebooks run from ``notebooks/``).

    Raises
    ------
    DataLayoutError
        When ``folder`` is not a directory, or none is given and none is found.
    """
    if folder is not None:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise DataLayoutError(f"records_dir: {path} is not a directory")
        return path
    here = Path.cwd().resolve()
    for parent in (here, *here.parents):
        if (parent / "bench" / "records").is_dir():
            return parent / "bench" / "records"
    raise DataLayoutError(f"records_dir: none given and no bench/records found from {here} upwards")


def _cell_text(value: Any) -> str:
    return "" if value is None else str(value)


def _cell_value(value: Any) -> Any:
    # Decimal keeps the record's digits for the text; computing wants floats.
    return float("nan") if value is None else float(value) if isinstance(value, Decimal) else value


def _table(spec: Any, where: str) -> RecordTable:
    if not isinstance(spec, dict) or not {"caption", "columns", "rows"} <= spec.keys():
        raise BrokenFileError(f"{where}: expected an object with caption, columns and rows")
    columns, rows = spec["columns"], spec["rows"]
    if not columns or len(set(columns)) != len(columns) or not all(isinstance(c, str) for c in columns):
        raise BrokenFileError(f"{where}: columns must be distinct strings, got {columns!r}")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BrokenFileError(f"{where}, row {i}: expected {len(columns)} values, got {row!r}")
        # bool is an int to Python; a record has no use for it and it would print as True.
        bad = [v for v in row if isinstance(v, bool) or not isinstance(v, (str, int, Decimal, type(None)))]
        if bad:
            raise BrokenFileError(f"{where}, row {i}: values must be numbers, strings or null, got {bad!r}")
    text = pd.DataFrame([[_cell_text(v) for v in row] for row in rows], columns=columns)
    values = pd.DataFrame([[_cell_value(v) for v in row] for row in rows], columns=columns)
    return RecordTable(caption=str(spec["caption"]), values=values, text=text)


def read_record(path: str | os.PathLike) -> DevRecord:
    """Read and check one record file.

    Raises
    ------
    BrokenFileError
        Naming the file (and the table and row) for unreadable JSON, a missing key, a
        malformed date or a row whose length differs from its table's columns.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(), parse_float=Decimal)
    except (OSError, ValueError) as err:
        raise BrokenFileError(f"{path}: not a readable development record ({err})") from None
    if not isinstance(doc, dict):
        raise BrokenFileError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise BrokenFileError(f"{path}: missing {', '.join(missing)}")
    if not _DATE.match(str(doc["date"])):
        raise BrokenFileError(f"{path}: date must be YYYY-MM-DD or YYYY-MM-DD/YYYY-MM-DD, got {doc['date']!r}")
    if not isinstance(doc["tables"], list) or not doc["tables"]:
        raise BrokenFileError(f"{path}: tables must be a non-empty list")
    tables = tuple(_table(t, f"{path}, table {i}") for i, t in enumerate(doc["tables"]))
    return DevRecord(name=path.name, tables=tables,
                     **{k: str(doc[k]) for k in REQUIRED if k != "tables"})


def load_records(folder: str | os.PathLike | None = None, pattern: str = PATTERN) -> list[DevRecord]:
    """Every record in ``folder`` (:func:`records_dir`), oldest first, then by file name."""
    paths = sorted(records_dir(folder).glob(pattern))
    return sorted((read_record(p) for p in paths), key=lambda r: (r.date, r.name))


def records_index(records: list[DevRecord]) -> pd.DataFrame:
    """One row per record: date, title, machine, commit, command and file."""
    return pd.DataFrame([{"date": r.date, "note": r.title, "machine": r.machine, "commit": r.commit,
                          "command": r.command, "record": r.name} for r in records],
                        columns=["date", "note", "machine", "commit", "command", "record"])


def styled(record: DevRecord, table: RecordTable):
    """A pandas Styler of ``table`` as recorded, captioned with the record's provenance.

    The caption names the record, not the book's data: these numbers were not computed
    by this build.
    """
    caption = f"<b>{record.date}: {table.caption}</b><br><small>{record.provenance()}</small>"
    return table.text.style.set_caption(caption).hide(axis="index")


def note_markdown(record: DevRecord) -> str:
    """The record's heading paragraph: date, title, what it ran on, what was seen."""
    return (f"**{record.date}: {record.title}.** {record.finding}\n\n"
            f"*Settings:* {record.settings} *First written down in:* {record.source}.")
