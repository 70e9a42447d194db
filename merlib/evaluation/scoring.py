"""Score a per-sample predictions file on the MEGC2019 composite: ``merlib score``.

Anyone with a file of predictions (their own, or a log a paper's authors published) gets
the numbers the book reports, computed the same way: UF1, UAR and accuracy on the pooled
predictions (:mod:`merlib.scores`) for the composite and each part, each with a 95%
subject-bootstrap interval (:mod:`merlib.evaluation.bootstrap`), and ``n``.

The file is a CSV with the columns ``dataset`` (smic, casme2, samm), ``subject`` and
``sample`` as the MEGC2019 list writes them (``smic,s01,s01_ne_01``, ``samm,006,006_1_2``,
``casme2,sub01,EP02_01f``), ``pred`` and, optionally, ``label``; classes are written as
names (negative, positive, surprise) or as integer codes with a label map
(``0=negative,1=positive,2=surprise``). Each row is matched to the packaged list
(:func:`merlib.data.composite.load_composite_list`) and nothing is dropped without saying
so: a :class:`ScoreReport` lists every row not scored and why, every composite sample
the file lacks, and every label that differs from the list's (:data:`ISSUES`).

The truth is the composite's label unless ``labels="file"``: a published log is scored
with its own ground-truth column to reproduce its authors' numbers, and the rows where
that column differs from the list are reported.

Two files are compared sample by sample with :func:`paired_scores`: the difference of
each score on the samples both scored, with a paired subject-bootstrap interval
(the same resamples for both), always on the composite's labels so both face one truth.
:func:`compare_published` does both for the logs packaged with merlib
(:mod:`merlib.data.published_logs`) and checks each recomputed number against the one
published.
"""
from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from merlib.data.composite import LIST_COLUMNS, load_composite_list
from merlib.data.schema import LABELS
from merlib.errors import BrokenFileError, ConfigError
from merlib.evaluation.bootstrap import METRICS, bootstrap_table, format_interval, paired_table
from merlib.evaluation.metrics import PARTS

#: The columns that name a sample.
KEY: list[str] = ["dataset", "subject", "sample"]
#: Columns a predictions file must have (``label`` is optional).
REQUIRED: tuple[str, ...] = ("dataset", "subject", "sample", "pred")

#: Every kind of issue a :class:`ScoreReport` lists, and what happened to the row.
ISSUES: dict[str, str] = {
    "unknown_subject": "dataset/subject not in the composite list: not scored",
    "not_in_composite": "sample not in the composite list: not scored",
    "duplicate": "sample repeated: its first row is scored, this one is not",
    "label_differs": "the file's label differs from the composite list's",
    "absent": "composite sample not in the file: not scored",
}
ISSUE_COLUMNS: tuple[str, ...] = ("kind", "dataset", "subject", "sample", "line", "detail")

LabelSource = Literal["composite", "file"]

#: How many samples an issue line names before it just counts.
_NAMED = 5


# --------------------------------------------------------------------------- reading

def parse_label_map(text: str | Mapping[str, str], name: str = "--label-map") -> dict[str, str]:
    """A label map as ``{code as written: class}``.

    Parameters
    ----------
    text : str or mapping
        ``"0=negative,1=positive,2=surprise"``, or a mapping (keys are compared as the
        stripped text of a cell, so ``{0: "negative"}`` matches the cell ``0``).
        Several codes may map onto one class (e.g. a five-class log's emotions).
    name : str
        The argument's name, for the error message.

    Raises
    ------
    ConfigError
        An item is not ``code=class``, a code repeats, or a class is not one of
        :data:`~merlib.data.schema.LABELS`.
    """
    if isinstance(text, Mapping):
        items = [(str(k).strip(), str(v).strip().lower()) for k, v in text.items()]
    else:
        items = []
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            code, eq, label = part.partition("=")
            if not eq or not code.strip() or not label.strip():
                raise ConfigError(f"{name}: {part!r} is not code=class; expected e.g. "
                                  "0=negative,1=positive,2=surprise")
            items.append((code.strip(), label.strip().lower()))
    if not items:
        raise ConfigError(f"{name}: empty; expected e.g. 0=negative,1=positive,2=surprise")
    out: dict[str, str] = {}
    for code, label in items:
        if label not in LABELS:
            raise ConfigError(f"{name}: {code}={label}: {label!r} is not one of {', '.join(LABELS)}")
        if code in out:
            raise ConfigError(f"{name}: code {code!r} is given twice")
        out[code] = label
    return out


def _decode(value: str, column: str, where: str, label_map: dict[str, str] | None) -> str:
    if label_map is not None and value in label_map:
        return label_map[value]
    name = value.lower()
    if name in LABELS:  # a class name reads as itself, map or not (one map serves --against's file too)
        return name
    if label_map is not None:
        raise BrokenFileError(f"{where}: {column} {value!r} is neither a code of the label map "
                              f"({', '.join(f'{k}={v}' for k, v in label_map.items())}) nor a class name")
    if re.fullmatch(r"[+-]?\d+(\.0*)?", value):
        raise BrokenFileError(f"{where}: {column} {value!r} is an integer code; say what the codes mean "
                              "with a label map (--label-map 0=negative,1=positive,2=surprise)")
    raise BrokenFileError(f"{where}: {column} {value!r} is not one of {', '.join(LABELS)}")


def read_predictions(path: str | Path, label_map: str | Mapping[str, str] | None = None, *,
                     pred_column: str = "pred") -> pd.DataFrame:
    """Read a predictions CSV: one row per sample.

    Parameters
    ----------
    path : path
        CSV with a header holding ``dataset``, ``subject``, ``sample``, ``pred`` and,
        optionally, ``label`` (any order, any case; other columns are ignored).
    label_map : str or mapping, optional
        For integer-coded classes: ``"0=negative,1=positive,2=surprise"``
        (:func:`parse_label_map`); applied to ``pred`` and ``label``. Cells written as
        class names (any case) are read as such, with or without a map.
    pred_column : str, default="pred"
        The column holding the predictions (e.g. ``pred_softmax`` of a ``merlib evaluate``
        ``predictions.csv``); it is returned as ``pred``.

    Returns
    -------
    DataFrame of shape (n_rows, 5) or (n_rows, 6)
        ``dataset`` (lower case), ``subject``, ``sample``, ``pred``, [``label``,] ``line``
        (the row's line in the file, 1-based, for messages). Classes are names of
        :data:`~merlib.data.schema.LABELS`; an empty ``label`` cell is NA (the composite's
        label is used). Blank lines are skipped; nothing else is dropped.

    Raises
    ------
    ConfigError
        The file cannot be opened (names it), or ``label_map`` is malformed.
    BrokenFileError
        The file is not a UTF-8 CSV, has no header or no row, lacks a required column,
        a row has another number of fields than the header, a required cell is empty,
        or a class is not recognised (names the file, line and column).
    """
    path = Path(path)
    codes = parse_label_map(label_map) if label_map is not None else None
    source = pred_column.strip().lower()
    if not source or source in ("dataset", "subject", "sample", "label"):
        raise ConfigError(f"pred_column: expected the name of a prediction column, got {pred_column!r}")
    required = ("dataset", "subject", "sample", source)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or type(err).__name__})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise BrokenFileError(f"{path}: line {line}: not UTF-8 text ({err.reason}); expected a CSV file") from None
    rows: list[dict[str, Any]] = []
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise BrokenFileError(f"{path}: empty; expected a CSV header with the columns "
                                      f"{', '.join(REQUIRED)} (label optional)")
            names = [h.strip().lower() for h in header]
            missing = [c for c in required if c not in names]
            if missing:
                raise BrokenFileError(f"{path}: line 1: the header {header} lacks {missing}; expected the "
                                      f"columns {', '.join(required)} (label optional)")
            dup = sorted({n for n in names if names.count(n) > 1 and n in (*required, "label")})
            if dup:
                raise BrokenFileError(f"{path}: line 1: the header repeats the column(s) {dup}")
            wanted = [c for c in (*REQUIRED, "label") if c in names or c == "pred"]
            # The prediction column is read from wherever pred_column names it.
            where_col = {c: names.index(source if c == "pred" else c) for c in wanted}
            for record in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) != len(names):
                    raise BrokenFileError(f"{path}: line {line}: {len(record)} fields where the header has "
                                          f"{len(names)}")
                row = {c: record[i].strip() for c, i in where_col.items()}
                row["line"] = line
                rows.append(row)
        except csv.Error as err:
            raise BrokenFileError(f"{path}: line {reader.line_num}: cannot be read as CSV ({err})") from None
    if not rows:
        raise BrokenFileError(f"{path}: no rows under the header")
    for row in rows:
        where = f"{path}: line {row['line']}"
        for col in REQUIRED:
            if not row[col]:
                raise BrokenFileError(f"{where}: empty {source if col == 'pred' else col}")
        row["dataset"] = row["dataset"].lower()
        row["pred"] = _decode(row["pred"], source, where, codes)
        if "label" in row:
            row["label"] = _decode(row["label"], "label", where, codes) if row["label"] else None
    table = pd.DataFrame(rows, columns=[*wanted, "line"])
    return table.astype({c: "string" for c in wanted}).astype({"line": "Int64"})


# --------------------------------------------------------------------------- matching

def _composite(composite: pd.DataFrame | None) -> pd.DataFrame:
    listed = load_composite_list() if composite is None else composite
    missing = [c for c in LIST_COLUMNS if c not in listed.columns]
    if missing:
        raise ConfigError(f"composite: missing columns {missing}; expected {LIST_COLUMNS}")
    listed = listed[LIST_COLUMNS].astype("string").reset_index(drop=True)
    if listed.duplicated(KEY).any():
        r = listed[listed.duplicated(KEY)].iloc[0]
        raise ConfigError(f"composite: sample {r['dataset']}/{r['subject']}/{r['sample']} is listed twice")
    return listed


def _check_table(table: pd.DataFrame, labels: LabelSource) -> None:
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ConfigError(f"predictions: missing columns {missing}; expected {list(REQUIRED)} (label optional)")
    if labels not in ("composite", "file"):
        raise ConfigError(f"labels: expected 'composite' or 'file', got {labels!r}")
    if labels == "file" and "label" not in table.columns:
        raise ConfigError("labels='file': the predictions have no label column; score with the composite's labels")
    bad = ~table["pred"].astype("string").isin(LABELS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ConfigError(f"predictions: row {i}: pred {table['pred'].iloc[i]!r} is not one of {LABELS}")


def _lines(table: pd.DataFrame) -> pd.Series:
    if "line" in table.columns:
        return table["line"].astype("Int64")
    return pd.Series(pd.NA, index=table.index, dtype="Int64")


def _issue(kind: str, rows: pd.DataFrame, details: Sequence[str] | str) -> pd.DataFrame:
    if isinstance(details, str):
        details = [details] * len(rows)
    return pd.DataFrame({"kind": kind, "dataset": rows["dataset"].astype("string").to_numpy(),
                         "subject": rows["subject"].astype("string").to_numpy(),
                         "sample": rows["sample"].astype("string").to_numpy(),
                         "line": (rows["line"] if "line" in rows.columns
                                  else pd.Series(pd.NA, index=rows.index)).astype("Int64").to_numpy(),
                         "detail": list(details)})


def match_composite(table: pd.DataFrame, composite: pd.DataFrame | None = None, *,
                    labels: LabelSource = "composite") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match predictions to the composite list: the rows to score, and every issue.

    Parameters
    ----------
    table : DataFrame of shape (n_rows, >= 4)
        ``dataset``, ``subject``, ``sample``, ``pred`` (class names), optionally
        ``label`` and ``line`` (:func:`read_predictions`, or a published log).
    composite : DataFrame, optional
        The list to score against (dataset, subject, sample, label); default the packaged
        MEGC2019 list of 442. A SynthME root's subset (:func:`merlib.data.composite.
        expected_composite`) scores a simulated run.
    labels : {"composite", "file"}
        The truth: the list's label, or the table's ``label`` (NA cells fall back to the
        list's).

    Returns
    -------
    scored : DataFrame of shape (n_scored, 6)
        dataset, subject, sample, label (the truth), pred, line; in the table's order.
    issues : DataFrame of shape (n_issues, 6)
        :data:`ISSUE_COLUMNS`, kinds in :data:`ISSUES` order, each kind in file order
        (``absent`` in list order, with no line).
    """
    _check_table(table, labels)
    listed = _composite(composite)
    t = table.reset_index(drop=True).copy()
    for c in KEY:
        t[c] = t[c].astype("string")
    t["line"] = _lines(t)
    issues: list[pd.DataFrame] = []

    dup = t.duplicated(KEY, keep="first").to_numpy()
    firsts = t[~dup].set_index(KEY)
    details = []
    for _, r in t[dup].iterrows():
        first = firsts.loc[tuple(r[KEY])]
        where = f"line {int(first['line'])}" if pd.notna(first["line"]) else "an earlier row"
        same = "same prediction" if first["pred"] == r["pred"] else \
            f"prediction differs: {first['pred']} there, {r['pred']} here"
        details.append(f"repeats {where} ({same})")
    dup_issues = _issue("duplicate", t[dup], details)
    unique = t[~dup].reset_index(drop=True)

    merged = unique.merge(listed.rename(columns={"label": "composite_label"}), on=KEY, how="left",
                          indicator=True, sort=False)
    unmatched = (merged["_merge"] == "left_only").to_numpy()
    known = set(zip(listed["dataset"], listed["subject"]))
    datasets = list(pd.unique(listed["dataset"]))
    is_known = np.array([(d, s) in known for d, s in zip(merged["dataset"], merged["subject"])], bool)
    lost = merged[unmatched & ~is_known]
    details = []
    for _, r in lost.iterrows():
        if r["dataset"] not in datasets:
            details.append(f"dataset {r['dataset']!r} is not a part of the composite ({', '.join(datasets)})")
        else:
            example = listed.loc[listed["dataset"] == r["dataset"], "subject"].iloc[0]
            details.append(f"no subject {r['subject']!r} in the composite's {r['dataset']} "
                           f"(it writes subjects as {example!r})")
    issues.append(_issue("unknown_subject", lost, details))
    stray = merged[unmatched & is_known]
    issues.append(_issue("not_in_composite", stray,
                         [f"{r['dataset']}/{r['subject']} has no sample {r['sample']!r} in the composite list"
                          for _, r in stray.iterrows()]))
    issues.append(dup_issues)

    matched = merged[~unmatched].reset_index(drop=True)
    truth = matched["composite_label"]
    if "label" in matched.columns:
        given = matched["label"].astype("string")
        differs = (given.notna() & (given != matched["composite_label"])).to_numpy()
        used = "the composite's" if labels == "composite" else "the file's"
        issues.append(_issue("label_differs", matched[differs],
                             [f"the file says {a}, the composite {b}; scored with {used}"
                              for a, b in zip(given[differs], matched.loc[differs, "composite_label"])]))
        if labels == "file":
            truth = given.fillna(matched["composite_label"])
    scored = pd.DataFrame({**{c: matched[c] for c in KEY}, "label": truth.astype("string"),
                           "pred": matched["pred"].astype("string"), "line": matched["line"]})

    present = set(map(tuple, unique[KEY].to_numpy().tolist()))
    absent = listed[[tuple(k) not in present for k in listed[KEY].to_numpy().tolist()]]
    issues.append(_issue("absent", absent.assign(line=pd.NA), "not in the file"))

    issues_table = pd.concat(issues, ignore_index=True)
    order = {k: i for i, k in enumerate(ISSUES)}
    issues_table = issues_table.iloc[np.argsort(issues_table["kind"].map(order).to_numpy(), kind="stable")]
    return scored, issues_table.reset_index(drop=True)


# --------------------------------------------------------------------------- scoring

@dataclass(frozen=True)
class ScoreReport:
    """The scores of one predictions table and everything not scored.

    Attributes
    ----------
    scores : DataFrame
        One row per part (``composite`` then smic, casme2, samm as present): ``part``,
        ``n`` (samples scored), ``n_subjects``, then ``uf1``, ``uf1_lo``, ``uf1_hi``,
        ``uar`` ..., ``accuracy`` ... (95% subject-bootstrap intervals by default).
    issues : DataFrame
        :data:`ISSUE_COLUMNS`; see :data:`ISSUES`.
    scored : DataFrame
        The rows scored: dataset, subject, sample, label (the truth used), pred, line.
    labels : str
        Which truth was used: ``composite`` or ``file``.
    n_rows : int
        Rows of the table given (scored + not).
    """

    scores: pd.DataFrame
    issues: pd.DataFrame
    scored: pd.DataFrame
    labels: str
    n_rows: int

    def counts(self) -> dict[str, int]:
        """Issues per kind, every kind of :data:`ISSUES` (zeros included)."""
        got = self.issues["kind"].value_counts()
        return {k: int(got.get(k, 0)) for k in ISSUES}

    def issue_lines(self, named: int = _NAMED) -> list[str]:
        """One sentence per kind of issue present: count, meaning, the first ``named``."""
        return issue_lines(self.issues, named)


def issue_lines(issues: pd.DataFrame, named: int = _NAMED) -> list[str]:
    """One sentence per kind present in ``issues`` (:data:`ISSUE_COLUMNS`), e.g.
    ``"7 composite samples not in the file: not scored: smic/s01/s01_ne_02, ... and 2 more"``."""
    out = []
    for kind, meaning in ISSUES.items():
        rows = issues[issues["kind"] == kind]
        if not len(rows):
            continue
        shown = []
        for _, r in rows.head(named).iterrows():
            at = f" (line {int(r['line'])})" if pd.notna(r["line"]) else ""
            extra = f": {r['detail']}" if kind in ("label_differs", "duplicate", "unknown_subject") else ""
            shown.append(f"{r['dataset']}/{r['subject']}/{r['sample']}{at}{extra}")
        more = f" and {len(rows) - named} more" if len(rows) > named else ""
        noun = "row" if len(rows) == 1 else "rows"
        if kind == "absent":
            noun = "sample" if len(rows) == 1 else "samples"
        out.append(f"{len(rows)} {noun}: {meaning}: {'; '.join(shown)}{more}")
    return out


def _part_order(table: pd.DataFrame) -> pd.DataFrame:
    order = {p: i for i, p in enumerate(PARTS)}
    rank = table["part"].map(lambda p: order.get(p, len(order)))
    return table.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)


def score_predictions(table: pd.DataFrame, *, composite: pd.DataFrame | None = None,
                      labels: LabelSource = "composite", n_resamples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> ScoreReport:
    """UF1, UAR and accuracy with subject-bootstrap intervals, composite and per part.

    Parameters
    ----------
    table : DataFrame of shape (n_rows, >= 4)
        ``dataset``, ``subject``, ``sample``, ``pred``, optionally ``label`` and ``line``
        (:func:`read_predictions`, :func:`merlib.data.published_logs.load_published_log`).
    composite : DataFrame, optional
        The list to score against; default the packaged MEGC2019 list (442 samples).
    labels : {"composite", "file"}
        The truth (:func:`match_composite`).
    n_resamples, seed, level
        Subject-bootstrap settings (:func:`merlib.evaluation.bootstrap.bootstrap_table`:
        stratified by dataset, percentile interval).

    Returns
    -------
    ScoreReport

    Raises
    ------
    ConfigError
        No row of the table is a composite sample (the message gives the first issues).

    Examples
    --------
    >>> rows = [("casme2", "sub01", "EP02_01f", "positive"), ("casme2", "sub01", "EP19_05f", "negative")]
    >>> t = pd.DataFrame(rows, columns=["dataset", "subject", "sample", "pred"])
    >>> report = score_predictions(t, n_resamples=10)
    >>> report.scores[["part", "n", "accuracy"]].values.tolist()
    [['composite', 2, 1.0], ['casme2', 2, 1.0]]
    >>> report.counts()["absent"]
    440
    """
    scored, issues = match_composite(table, composite, labels=labels)
    if not len(scored):
        raise ConfigError("predictions: no row is a sample of the composite list; "
                          + " | ".join(issue_lines(issues[issues["kind"] != "absent"], 3)))
    scores = bootstrap_table(scored, ["pred"], n_resamples=n_resamples, seed=seed, level=level)
    scores = _part_order(scores.drop(columns="classifier"))
    return ScoreReport(scores=scores, issues=issues, scored=scored, labels=labels, n_rows=len(table))


@dataclass(frozen=True)
class PairedReport:
    """Two predictions tables compared on the composite samples both scored.

    Attributes
    ----------
    names : (str, str)
        The two tables' names, ``a`` first.
    differences : DataFrame
        :func:`~merlib.evaluation.bootstrap.paired_table` output: ``classifier`` (a),
        ``reference`` (b), ``part``, ``n``, ``d_uf1``, ``d_uf1_lo``, ``d_uf1_hi`` and the
        same for ``uar`` and ``accuracy``; a minus b (positive: a scores higher).
    scores : DataFrame
        :func:`~merlib.evaluation.bootstrap.bootstrap_table` of both on the shared
        samples (``classifier`` is the name), same resamples.
    shared : DataFrame
        The shared samples: dataset, subject, sample, label (the composite's) and
        ``pred_<a>``, ``pred_<b>``.
    only : dict of str -> DataFrame
        Per name, the composite samples it scored and the other did not (dataset,
        subject, sample).
    issues : dict of str -> DataFrame
        Per name, the :func:`match_composite` issues of its table.
    """

    names: tuple[str, str]
    differences: pd.DataFrame
    scores: pd.DataFrame
    shared: pd.DataFrame
    only: dict[str, pd.DataFrame]
    issues: dict[str, pd.DataFrame]


def paired_scores(a: pd.DataFrame, b: pd.DataFrame, *, names: tuple[str, str] = ("a", "b"),
                  composite: pd.DataFrame | None = None, n_resamples: int = 1000, seed: int = 0,
                  level: float = 0.95) -> PairedReport:
    """Score of ``a`` minus score of ``b`` on the composite samples both predict.

    Both are scored against the composite's labels (a paired difference needs one truth;
    a file's own labels may disagree with the other's), on the same subject resamples
    (:func:`merlib.evaluation.bootstrap.paired_table`), so the interval is that of the
    difference itself.

    Parameters
    ----------
    a, b : DataFrame
        As for :func:`score_predictions`.
    names : (str, str)
        Names of ``a`` and ``b`` in the result (distinct).
    composite, n_resamples, seed, level
        As for :func:`score_predictions`.

    Returns
    -------
    PairedReport

    Raises
    ------
    ConfigError
        The names are equal or empty, or the two share no composite sample.
    """
    name_a, name_b = (str(n) for n in names)
    if not name_a or not name_b or name_a == name_b:
        raise ConfigError(f"names: expected two distinct non-empty names, got {names!r}")
    scored_a, issues_a = match_composite(a, composite, labels="composite")
    scored_b, issues_b = match_composite(b, composite, labels="composite")
    col_a, col_b = f"pred_{name_a}", f"pred_{name_b}"
    shared = scored_a[[*KEY, "label", "pred"]].rename(columns={"pred": col_a}).merge(
        scored_b[[*KEY, "pred"]].rename(columns={"pred": col_b}), on=KEY, how="inner", sort=False)
    if not len(shared):
        raise ConfigError(f"{name_a} and {name_b}: no composite sample is predicted by both")
    keys = set(map(tuple, shared[KEY].to_numpy().tolist()))

    def only(scored: pd.DataFrame) -> pd.DataFrame:
        keep = [tuple(k) not in keys for k in scored[KEY].to_numpy().tolist()]
        return scored.loc[keep, KEY].reset_index(drop=True)

    differences = _part_order(paired_table(shared, col_b, [col_a], n_resamples=n_resamples, seed=seed,
                                           level=level))
    scores = bootstrap_table(shared, [col_a, col_b], n_resamples=n_resamples, seed=seed, level=level)
    return PairedReport(names=(name_a, name_b), differences=differences, scores=scores, shared=shared,
                        only={name_a: only(scored_a), name_b: only(scored_b)},
                        issues={name_a: issues_a, name_b: issues_b})


# --------------------------------------------------------------------------- tables

def scores_text(scores: pd.DataFrame, *, prefix: str = "", decimals: int = 4,
                interval_decimals: int = 3) -> pd.DataFrame:
    """A :class:`ScoreReport` ``scores`` (or, with ``prefix="d_"``, a paired
    ``differences``) table with each metric as ``"0.7353 [0.689, 0.781]"``.

    Returns
    -------
    DataFrame of str
        ``part``, ``n``, [``n_subjects``,] then one column per metric (``uf1`` ...,
        or ``d_uf1`` ... written signed).
    """
    cols = [c for c in ("part", "n", "n_subjects") if c in scores.columns]
    out = scores[cols].astype(str).copy()
    for m in METRICS:
        name = f"{prefix}{m}"
        out[name] = [format_interval(v, lo, hi, decimals, interval_decimals, signed=bool(prefix))
                     for v, lo, hi in zip(scores[name], scores[f"{name}_lo"], scores[f"{name}_hi"])]
    return out


# --------------------------------------------------------------------------- published logs

@dataclass(frozen=True)
class PublishedComparison:
    """Packaged published logs, recomputed and checked against the published numbers.

    Attributes
    ----------
    reports : dict of str -> ScoreReport
        Per log name, its scores (with the log's own ground truth, as its authors scored).
    check : DataFrame
        One row per (log, part, metric): ``log``, ``method``, ``part``, ``metric``
        (uf1, uar), ``n``, ``published`` (the text its source printed, ``""`` where none),
        ``decimals`` (printed), ``recomputed``, ``lo``, ``hi``, ``equal`` (recomputed
        rounded to the printed decimals is the published text; NA where none was
        printed), ``difference`` (recomputed minus published).
    paired : list of PairedReport
        Every pair of logs, on the composite's labels and the samples both predict.
    """

    reports: dict[str, ScoreReport]
    check: pd.DataFrame
    paired: list[PairedReport]


def primary_logs() -> list[str]:
    """The first packaged log of each method (a rerun of a method's log is left out)."""
    from merlib.data.published_logs import published_logs

    seen: dict[str, str] = {}
    for name, log in published_logs().items():
        seen.setdefault(log.method, name)
    return list(seen.values())


def compare_published(names: Sequence[str] | None = None, *, n_resamples: int = 1000, seed: int = 0,
                      level: float = 0.95) -> PublishedComparison:
    """Recompute every packaged log, check it against the published numbers, pair them.

    Parameters
    ----------
    names : sequence of str, optional
        Log names (:func:`merlib.data.published_logs.published_logs`); default
        :func:`primary_logs`.
    n_resamples, seed, level
        Subject-bootstrap settings for the intervals and the paired differences.

    Returns
    -------
    PublishedComparison
    """
    from merlib.data.published import published_as_written
    from merlib.data.published_logs import get_log, load_published_log

    names = list(names) if names is not None else primary_logs()
    published = published_as_written().set_index("method")
    reports, rows, tables = {}, [], {}
    for name in names:
        log = get_log(name)
        table = load_published_log(name)
        tables[name] = table
        report = score_predictions(table, labels="file", n_resamples=n_resamples, seed=seed, level=level)
        reports[name] = report
        for _, s in report.scores.iterrows():
            for metric in ("uf1", "uar"):
                column = f"{metric}_{s['part']}"
                text = ""
                if log.method in published.index and column in published.columns:
                    text = str(published.loc[log.method, column]).strip()
                rows.append(_check_row(name, log.method, s, metric, text))
    paired = [paired_scores(tables[x], tables[y], names=(get_log(x).method, get_log(y).method),
                            n_resamples=n_resamples, seed=seed, level=level)
              for x, y in itertools.combinations(names, 2) if get_log(x).method != get_log(y).method]
    return PublishedComparison(reports=reports, check=pd.DataFrame(rows), paired=paired)


def _check_row(name: str, method: str, s: pd.Series, metric: str, text: str) -> dict:
    value = float(s[metric])
    row = {"log": name, "method": method, "part": s["part"], "metric": metric, "n": int(s["n"]),
           "published": text, "decimals": pd.NA, "recomputed": value, "lo": float(s[f"{metric}_lo"]),
           "hi": float(s[f"{metric}_hi"]), "equal": pd.NA, "difference": np.nan}
    if text:
        decimals = len(text.partition(".")[2])
        row.update(decimals=decimals, equal=f"{value:.{decimals}f}" == text, difference=value - float(text))
    return row


def check_wide(check: pd.DataFrame, *, decimals: int = 4, interval_decimals: int = 3) -> pd.DataFrame:
    """:attr:`PublishedComparison.check` as one row per (method, part) for reading.

    Returns
    -------
    DataFrame of str
        Index (method, part); columns ``n``, then per metric ``UF1 published``,
        ``UF1 recomputed`` (with its interval) and ``UF1 check`` (``"equal (4 d.p.)"``, or
        the difference recomputed minus published, ``"differs: -0.0419"``), same for UAR.
    """
    out: dict[tuple[str, str], dict[str, str]] = {}
    for _, r in check.iterrows():
        cell = out.setdefault((r["method"], r["part"]), {"n": str(r["n"])})
        title = r["metric"].upper()
        cell[f"{title} published"] = r["published"] or "—"
        cell[f"{title} recomputed"] = format_interval(r["recomputed"], r["lo"], r["hi"], decimals, interval_decimals)
        if pd.isna(r["equal"]):
            cell[f"{title} check"] = "nothing published"
        elif bool(r["equal"]):
            cell[f"{title} check"] = f"equal ({int(r['decimals'])} d.p.)"
        else:
            cell[f"{title} check"] = f"differs: {r['difference']:+.{decimals}f}"
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["method", "part"])
    return table


def paired_wide(paired: Sequence[PairedReport], *, decimals: int = 4,
                interval_decimals: int = 3) -> pd.DataFrame:
    """Paired differences for reading: one row per (comparison, part).

    Returns
    -------
    DataFrame of str
        Index (``difference``: ``"a − b"``, ``part``); columns ``n`` (samples both
        predict), ``ΔUF1``, ``ΔUAR``, ``Δaccuracy``, each ``"+0.0878 [+0.001, +0.169]"``.
    """
    if not len(paired):
        raise ConfigError("paired: expected at least one PairedReport, got none")
    blocks = {}
    for p in paired:
        text = scores_text(p.differences, prefix="d_", decimals=decimals, interval_decimals=interval_decimals)
        blocks[f"{p.names[0]} − {p.names[1]}"] = text.set_index("part").rename(
            columns={"d_uf1": "ΔUF1", "d_uar": "ΔUAR", "d_accuracy": "Δaccuracy"})
    return pd.concat(blocks, names=["difference", "part"])
