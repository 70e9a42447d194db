"""Results tables of the book's chapters: method beside references, intervals, readable numbers.

Every results chapter (02-06) shows the same kind of table: the method's classifiers
and simple references scored on the same LOSO folds, each UF1 / UAR / accuracy with
its subject-bootstrap interval (:mod:`merlib.evaluation.bootstrap`), and ``n`` per part.
The helpers live here so no notebook writes them again.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from merlib.errors import ConfigError
from merlib.evaluation.bootstrap import METRICS, bootstrap_table, format_interval

#: Classifier labels shown in tables (prediction column name without ``pred_`` -> label).
LABELS: dict[str, str] = {
    "svm": "method, SVM head", "softmax": "method, softmax head", "pred": "method",
    "majority": "majority class", "pixels_lr": "pixels (64 px) + logistic regression",
    "hog_svm": "HOG (64 px) + linear SVM", "lbp_top_svm": "LBP-TOP + linear SVM (MEGC2019 baseline)",
    "hoof_svm": "HOOF + linear SVM", "biwoof_svm": "Bi-WOOF + linear SVM",
}

#: Which rows are the method and which are references.
METHOD_CLASSIFIERS: tuple[str, ...] = ("svm", "softmax", "pred")


def _predictions_of(result: Any) -> pd.DataFrame:
    preds = result.predictions if hasattr(result, "predictions") else result
    if not isinstance(preds, pd.DataFrame):
        raise ConfigError(f"result: expected a LosoResult or a predictions DataFrame, got {type(result).__name__}")
    return preds


def with_references(result: Any, crops: Any = None, *, references: Sequence[str] = ("majority",),
                    method_columns: Sequence[str] = ("pred_svm", "pred_softmax"),
                    data_root: Any = None, cache_dir: Any = None, n_resamples: int = 1000,
                    seed: int = 0, level: float = 0.95, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """The method's scores with intervals, and references on the same folds beneath them.

    Parameters
    ----------
    result : LosoResult or DataFrame
        A LOSO run (or its ``predictions.csv``): dataset, subject, sample, label, fold
        and the method's prediction columns.
    crops : CropSet, optional
        The crops the run used, in the same row order; needed for any reference other
        than ``majority`` (which only needs the folds' labels).
    references : sequence of str
        From :data:`merlib.evaluation.handcrafted.REFERENCES`, e.g.
        ``("majority", "pixels_lr", "hog_svm")``.
    method_columns : sequence of str
        The run's prediction columns to show (those present are used).
    data_root, cache_dir
        Passed to :func:`merlib.evaluation.handcrafted.reference_predictions` (clip
        references need ``data_root``; ``cache_dir`` shares reference runs between
        chapters).
    n_resamples, seed, level
        Bootstrap settings (the same resamples for every row).
    labels : dict, optional
        classifier (column name without ``pred_``) -> row label, over :data:`LABELS`.

    Returns
    -------
    DataFrame
        :func:`~merlib.evaluation.bootstrap.bootstrap_table` output (classifier, part, n,
        n_subjects, uf1, uf1_lo, uf1_hi, ...) plus ``kind`` ("method" or "reference")
        and ``label`` (a readable name).

    Raises
    ------
    ConfigError
        A reference needs ``crops`` and none was given, or the crops are not the run's
        rows.
    """
    from merlib.evaluation.baselines import majority_class_predictions

    preds = _predictions_of(result).reset_index(drop=True)
    cols = [c for c in method_columns if c in preds.columns]
    if not cols:
        raise ConfigError(f"method_columns: none of {list(method_columns)} is in the predictions "
                          f"({list(preds.columns)})")
    table = preds[["dataset", "subject", "sample", "label", "fold", *cols]].copy()
    others = [r for r in references if r != "majority"]
    if "majority" in references:
        table["pred_majority"] = majority_class_predictions(table).astype(object).to_numpy()
    if others:
        if crops is None:
            raise ConfigError(f"crops: the references {others} are computed from the crops; pass the run's CropSet")
        from merlib.evaluation.handcrafted import merge_predictions, reference_predictions
        from merlib.evaluation.splits import loso_folds

        key = ["dataset", "subject", "sample", "label"]
        if len(crops) != len(table) or not crops.meta[key].astype(str).reset_index(drop=True).equals(
                table[key].astype(str)):
            raise ConfigError("crops: its rows (dataset, subject, sample, label) are not the run's "
                              "predictions in the same order; pass the CropSet the run used")
        refs = reference_predictions(crops, others, folds=loso_folds(crops.groups), data_root=data_root,
                                     cache_dir=cache_dir)
        table = merge_predictions(table, refs[[*key, "fold", *[f"pred_{r}" for r in others]]])
    pred_cols = cols + [f"pred_{r}" for r in references]
    out = bootstrap_table(table, pred_cols, n_resamples=n_resamples, seed=seed, level=level)
    # Rows from the run's own columns are the method (or its variants); the rest references.
    own = [c.removeprefix("pred_") for c in cols]
    out["kind"] = np.where(out["classifier"].isin(own), "method", "reference")
    out["label"] = out["classifier"].map({**LABELS, **(labels or {})}).fillna(out["classifier"])
    return out


def simulated_banner(provenance: Any) -> Any:
    """The chapter's SIMULATED DATA notice (IPython Markdown), or None on real data."""
    from IPython.display import Markdown

    if not provenance.simulated:
        return None
    return Markdown("> **SIMULATED DATA.** Everything below is computed from SynthME, generated by "
                    "`merlib synth`; it checks the software, not the method.")


def intervals_wide(table: pd.DataFrame, metrics: Sequence[str] = ("uf1", "uar"), *, by: str = "label",
                   decimals: int = 3, interval_decimals: int = 2) -> pd.DataFrame:
    """One row per classifier; per part ``n`` and each metric as ``"0.412 [0.31, 0.52]"``.

    Parameters
    ----------
    table : DataFrame
        :func:`with_references` or :func:`~merlib.evaluation.bootstrap.bootstrap_table`
        output.
    metrics : sequence of str
        Of ``uf1``, ``uar``, ``accuracy``.
    by : str
        Row label column (``label`` when present, else ``classifier``).

    Returns
    -------
    DataFrame of str
        Columns MultiIndex (part, ``n`` then the metrics), parts in table order, rows in
        table order.
    """
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"metrics: expected a subset of {METRICS}, got {bad}")
    by = by if by in table.columns else "classifier"
    parts = list(pd.unique(table["part"]))
    rows = list(pd.unique(table[by]))
    cells: dict[tuple[str, str], list[str]] = {}
    for part in parts:
        sub = table[table["part"] == part].set_index(by)
        cells[(part, "n")] = [str(int(sub.loc[r, "n"])) if r in sub.index else "" for r in rows]
        for m in metrics:
            cells[(part, m)] = [format_interval(sub.loc[r, m], sub.loc[r, f"{m}_lo"], sub.loc[r, f"{m}_hi"],
                                                decimals, interval_decimals) if r in sub.index else ""
                                for r in rows]
    out = pd.DataFrame(cells, index=pd.Index(rows, name=by))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["part", ""])
    return out


def differences_wide(paired: pd.DataFrame, metrics: Sequence[str] = ("uf1", "uar"), *,
                     labels: dict[str, str] | None = None, decimals: int = 3,
                     interval_decimals: int = 2) -> pd.DataFrame:
    """Paired differences as one row per classifier: per part, ``"+0.021 [-0.05, +0.09]"``.

    Parameters
    ----------
    paired : DataFrame
        :func:`~merlib.evaluation.bootstrap.paired_table` output (several references may
        be stacked: the ``reference`` column says what each row is compared with).
    metrics : sequence of str
    labels : dict, optional
        classifier -> row label (default: the classifier name).

    Returns
    -------
    DataFrame of str
        Index: row label; columns MultiIndex (part, ``vs`` then ``Δ<metric>``...). ``vs``
        names the reference of the row.
    """
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"metrics: expected a subset of {METRICS}, got {bad}")
    labels = labels or {}
    name = lambda c: labels.get(c, c)  # noqa: E731
    rows = list(pd.unique(paired["classifier"]))
    cells: dict[tuple[str, str], list[str]] = {}
    for part in pd.unique(paired["part"]):
        sub = paired[paired["part"] == part].set_index("classifier")
        cells[(part, "vs")] = [name(sub.loc[r, "reference"]) if r in sub.index else "" for r in rows]
        for m in metrics:
            cells[(part, f"Δ{m}")] = [
                format_interval(sub.loc[r, f"d_{m}"], sub.loc[r, f"d_{m}_lo"], sub.loc[r, f"d_{m}_hi"],
                                decimals, interval_decimals, signed=True) if r in sub.index else ""
                for r in rows]
    out = pd.DataFrame(cells, index=pd.Index([name(r) for r in rows], name="run"))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["part", ""])
    return out


#: Column names always shown in scientific notation (learning rates, weight decay).
SCIENTIFIC_COLUMNS: tuple[str, ...] = ("lr", "learning_rate", "weight_decay", "l2")


def format_number(value: Any, decimals: int = 3, *, scientific: bool = False) -> str:
    """A number for reading: ``decimals`` places, scientific when asked or when tiny.

    ``0.0003`` is ``"3e-04"`` (never ``"0.000"``), ``0.41234`` is ``"0.412"``, integers
    stay integers, NaN and None are ``""``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    v = float(value)
    if v == 0:
        return "0"
    if scientific or abs(v) < 10 ** (-decimals):
        mantissa, exp = f"{v:.{max(decimals - 2, 0)}e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exp}"
    return f"{v:.{decimals}f}"


def format_table(df: pd.DataFrame, decimals: int = 3,
                 scientific: Sequence[str] = SCIENTIFIC_COLUMNS) -> pd.DataFrame:
    """A copy with every number written by :func:`format_number` (text cells unchanged).

    Columns named in ``scientific`` (or whose last level is) are always in scientific
    notation: the chosen-settings table then shows lr 0.0003 as ``3e-04``.
    """
    if not 1 <= decimals <= 6:
        raise ConfigError(f"decimals: expected 1..6, got {decimals}")
    out = df.copy().astype(object)
    for col in df.columns:
        name = col[-1] if isinstance(col, tuple) else col
        sci = str(name) in scientific
        out[col] = [format_number(v, decimals, scientific=sci) for v in df[col]]
    return out


def styled(df: pd.DataFrame, provenance: Any, title: str, decimals: int = 3):
    """:func:`format_table` then :func:`merlib.reporting.tables.captioned` (title, provenance)."""
    from merlib.reporting.tables import captioned

    return captioned(format_table(df, decimals), provenance, title)


def sample_accounting(result: Any, n_listed: int = 442) -> pd.DataFrame:
    """Where the MEGC2019 composite's samples went, per part: listed, in this data root,
    excluded by pre-processing, evaluated.

    Parameters
    ----------
    result : LosoResult
        Its ``predictions`` (one row per evaluated sample, with ``dataset``) and
        ``excluded`` (the samples pre-processing could not use, with ``dataset``,
        ``status`` and ``reason``; None when the crops did not come from a
        pre-processing folder, so nothing is known of them).
    n_listed : int, default=442
        Samples the MEGC2019 list names over the three parts.

    Returns
    -------
    DataFrame
        Index ``part`` (each dataset, then ``composite``); columns ``in this root``
        (evaluated + excluded), ``excluded``, ``evaluated``; the composite row also has
        ``listed`` (the other rows leave it empty: the list's per-part counts are
        SMIC 164, CASME II 145, SAMM 133 only on a complete real tree).
    """
    preds = _predictions_of(result)
    excluded = getattr(result, "excluded", None)
    evaluated = preds.groupby("dataset").size()
    dropped = (excluded.groupby("dataset").size() if excluded is not None and len(excluded)
               else pd.Series(0, index=evaluated.index))
    parts = sorted(set(evaluated.index) | set(dropped.index))
    table = pd.DataFrame({"evaluated": evaluated.reindex(parts, fill_value=0),
                          "excluded": dropped.reindex(parts, fill_value=0)})
    table.loc["composite"] = table.sum()
    table.insert(0, "in this root", table["evaluated"] + table["excluded"])
    table["listed"] = pd.array([pd.NA] * (len(table) - 1) + [n_listed], dtype="Int64")
    if excluded is None:
        table["excluded"] = pd.array([pd.NA] * len(table), dtype="Int64")
        table["in this root"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.index.name = "part"
    return table
