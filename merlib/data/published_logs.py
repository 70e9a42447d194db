"""Per-sample prediction logs that authors of MEGC2019 methods published, with their sources.

A published UF1 / UAR can only be checked, given an interval, or compared sample by sample
with another method when the predictions behind it are public. Two methods of Table 3
published theirs; the files ship verbatim under ``resources/published_logs/`` and
``resources/published_logs/sources.json`` records, for each, the repository, path and
commit it was fetched from, the licence the repository states (none does), the date, the
file's size and SHA-256, its format, its integer coding and what was found in it.

Both logs share one grammar (:func:`parse_log`)::

    casme2 sub01          <- header: dataset and subject of the lines below
    EP02_01f 1 1          <- sample, ground truth, prediction (integer codes)

Which number is which, and the coding 0=negative, 1=positive, 2=surprise, were worked
out from the data: the first number equals the MEGC2019 composite's label on every
STSTNet sample (on all but one CapsuleNet sample), the second does not. CapsuleNet writes
SMIC and SAMM names without zero padding (``smic 1`` / ``s1_ne_01``, ``samm 6``); the
parser pads them to the composite's names and keeps the names as written beside them.

These are predictions on the **real** datasets: scored here they reproduce (or fail to
reproduce) published numbers; they are never comparable with a SynthME run.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd

from merlib.data.schema import LABELS, MICRO_DATASETS
from merlib.errors import AnnotationError

RESOURCE_DIR = "published_logs"
SOURCES = "sources.json"

#: Columns of a parsed log, in order. ``line`` is the 1-based line of the file the row
#: was read from; ``subject_as_written`` / ``sample_as_written`` are the names before
#: padding.
LOG_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "label", "pred", "line",
                                "subject_as_written", "sample_as_written")

_SOURCE_FIELDS: tuple[str, ...] = ("method", "file", "repository", "path", "commit", "url", "licence",
                                   "fetched", "bytes", "sha256", "format", "coding", "ids", "notes")


@dataclass(frozen=True)
class PublishedLog:
    """Where one packaged log comes from and how to read it (a ``sources.json`` entry).

    Attributes
    ----------
    name : str
        Key of the entry (``ststnet``, ``capsulenet`` ...).
    method : str
        Its row (``method``) in ``published_results.csv``.
    file : str
        Path under ``resources/published_logs/``.
    repository, path, commit, url : str
        Where it was fetched from (GitHub ``owner/name``, path in the repository, commit).
    licence : str
        What the repository states about its licence.
    fetched : str
        ISO date it was fetched.
    bytes : int
        Size of the file as fetched.
    sha256 : str
        Hex digest of the file as fetched.
    format, notes : str
        How the file is laid out; what was found in it.
    coding : dict of str -> str
        Integer code (as written) -> class of :data:`~merlib.data.schema.LABELS`.
    ids : str
        How its names map to the composite's: ``as_written`` or ``capsulenet``.
    """

    name: str
    method: str
    file: str
    repository: str
    path: str
    commit: str
    url: str
    licence: str
    fetched: str
    bytes: int
    sha256: str
    format: str
    coding: dict[str, str]
    ids: str
    notes: str


def _resource(*parts: str):
    return resources.files("merlib.data").joinpath("resources", RESOURCE_DIR, *parts)


def published_logs() -> dict[str, PublishedLog]:
    """Every packaged log, by name, in ``sources.json`` order.

    Raises
    ------
    AnnotationError
        ``sources.json`` lacks a field, or an entry names an unknown id scheme or a coding
        onto something other than the three classes (names the entry and field).
    """
    with _resource(SOURCES).open("r", encoding="utf-8") as fh:
        raw: dict[str, dict[str, Any]] = json.load(fh)
    out = {}
    for name, entry in raw.items():
        missing = [f for f in _SOURCE_FIELDS if f not in entry]
        if missing:
            raise AnnotationError(f"{SOURCES}: entry {name!r} lacks {missing}")
        if entry["ids"] not in _IDS:
            raise AnnotationError(f"{SOURCES}: entry {name!r}: ids {entry['ids']!r} is not one of {sorted(_IDS)}")
        bad = {k: v for k, v in entry["coding"].items() if v not in LABELS}
        if bad:
            raise AnnotationError(f"{SOURCES}: entry {name!r}: coding {bad} maps onto no class of {LABELS}")
        out[name] = PublishedLog(name=name, **{f: entry[f] for f in _SOURCE_FIELDS})
    return out


def get_log(name: str) -> PublishedLog:
    """The :class:`PublishedLog` called ``name``; the error lists the names there are."""
    logs = published_logs()
    if name not in logs:
        raise AnnotationError(f"published log {name!r}: not packaged; choose from {sorted(logs)}")
    return logs[name]


def log_bytes(name: str) -> bytes:
    """The packaged file of log ``name``, byte for byte as fetched."""
    return _resource(*get_log(name).file.split("/")).read_bytes()


def log_sources() -> pd.DataFrame:
    """One row per packaged log: name, method, repository, path, commit, url, licence,
    fetched, file (for a table of sources in the book)."""
    cols = ["method", "repository", "path", "commit", "url", "licence", "fetched", "file"]
    return pd.DataFrame([{"name": log.name, **{c: getattr(log, c) for c in cols}}
                         for log in published_logs().values()])


def _as_written(dataset: str, subject: str, sample: str) -> tuple[str, str]:
    return subject, sample


def _capsulenet(dataset: str, subject: str, sample: str) -> tuple[str, str]:
    # The authors' SMIC copy is SMIC-HS-E, whose folders are s1..s20 and clips s1_ne_01;
    # the composite (and merlib's SMIC reader) write s01 and s01_ne_01. SAMM subjects are
    # written as integers (6) where the composite writes the folder name (006).
    if dataset == "smic":
        m = re.fullmatch(r"s(\d+)_(.+)", sample)
        if subject.isdigit() and m:
            return f"s{int(subject):02d}", f"s{int(m.group(1)):02d}_{m.group(2)}"
    if dataset == "samm" and subject.isdigit():
        return f"{int(subject):03d}", sample
    return subject, sample


_IDS: dict[str, Callable[[str, str, str], tuple[str, str]]] = {
    "as_written": _as_written, "capsulenet": _capsulenet}


def parse_log(text: str, *, coding: dict[str, str], ids: str = "as_written",
              source: str = "log") -> pd.DataFrame:
    """Read a header-and-sample-lines log into one row per sample.

    Parameters
    ----------
    text : str
        The whole file. Any line ending; blank lines are skipped.
    coding : dict of str -> str
        Integer code as written -> class name (``{"0": "negative", ...}``).
    ids : {"as_written", "capsulenet"}
        How subject and sample names map to the composite's (see the module docstring).
    source : str
        File name for error messages.

    Returns
    -------
    DataFrame of shape (n_samples, 8)
        :data:`LOG_COLUMNS`: dataset, subject, sample (composite names), label (the log's
        ground truth), pred, line, subject_as_written, sample_as_written; all str except
        ``line`` (int). Rows in file order; nothing is dropped or de-duplicated.

    Raises
    ------
    AnnotationError
        A sample line before any header, a line of neither shape, a dataset outside
        the composite, or a code outside ``coding`` (names the file and line).

    Examples
    --------
    >>> parse_log("smic 1\\ns1_po_01 1 0\\n", coding={"0": "negative", "1": "positive"},
    ...           ids="capsulenet")[["subject", "sample", "label", "pred"]].values.tolist()
    [['s01', 's01_po_01', 'positive', 'negative']]
    """
    if ids not in _IDS:
        raise AnnotationError(f"{source}: ids {ids!r} is not one of {sorted(_IDS)}")
    rename = _IDS[ids]
    rows = []
    header: tuple[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) == 2:
            if fields[0] not in MICRO_DATASETS:
                raise AnnotationError(f"{source}: line {number}: header {raw.strip()!r} names dataset "
                                      f"{fields[0]!r}; expected one of {MICRO_DATASETS}")
            header = (fields[0], fields[1])
            continue
        if len(fields) != 3:
            raise AnnotationError(f"{source}: line {number}: {raw.strip()!r} is neither a header "
                                  "'<dataset> <subject>' nor a sample line '<sample> <label> <pred>'")
        if header is None:
            raise AnnotationError(f"{source}: line {number}: sample line {raw.strip()!r} before any "
                                  "'<dataset> <subject>' header")
        sample, label, pred = fields
        unknown = [c for c in (label, pred) if c not in coding]
        if unknown:
            raise AnnotationError(f"{source}: line {number}: code {unknown[0]!r} is not in the coding "
                                  f"{coding}")
        dataset, subject = header
        subject_id, sample_id = rename(dataset, subject, sample)
        rows.append((dataset, subject_id, sample_id, coding[label], coding[pred], number, subject, sample))
    if not rows:
        raise AnnotationError(f"{source}: no sample lines")
    table = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    return table.astype({c: "string" for c in LOG_COLUMNS if c != "line"})


def load_published_log(name: str) -> pd.DataFrame:
    """The packaged log ``name`` parsed by :func:`parse_log` with its recorded coding.

    Returns
    -------
    DataFrame of shape (n_samples, 8)
        :data:`LOG_COLUMNS`; ``label`` is the log's own ground truth (compare it with the
        composite's through :func:`merlib.evaluation.scoring.score_predictions`).
    """
    log = get_log(name)
    text = log_bytes(name).decode("utf-8")
    return parse_log(text, coding=log.coding, ids=log.ids, source=f"{RESOURCE_DIR}/{log.file}")
