"""How hard a data root is, measured by the references with published real-data scores.

SynthME's free parameters (appearance strength, head motion, weak expressions, ...) are
set so that two references score on it what they score on the real MEGC2019 composite,
on the same protocol (LOSO, three classes, composite UF1):

- LBP-TOP + linear SVM, the MEGC2019 baseline (See et al. 2019);
- Bi-WOOF + linear SVM (Liong et al. 2018, as listed by MEGC2019).

Their published values, with the source of each, are read from
``merlib/data/resources/published_results.csv`` (:func:`published_uf1`). The method under test is
never scored here: a generator tuned on it would be tuned to flatter it.

:func:`calibration_rows` scores a root; ``bench/calibrate_synthme.py`` does it for a
generated development root and keeps a dated record (``bench/records/``), and the data
chapter does it for the book's own root and shows both beside the published values.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from merlib.errors import ConfigError

__all__ = ["METHODS", "published_uf1", "CALIBRATION_COLUMNS", "calibration_rows", "calibration_table",
           "calibration_summary", "generators_to_compare",
           "read_records", "write_csv"]

#: Reference name -> its row (``method``) in ``published_results.csv``, where the real
#: composite UF1 and its source are kept.
METHODS: dict[str, str] = {"lbp_top_svm": "LBP-TOP (MEGC 2019 baseline)", "biwoof_svm": "Bi-WOOF"}


def published_uf1() -> dict[str, tuple[float, str]]:
    """Reference name -> (published real composite UF1, bib key), from the packaged
    ``published_results.csv`` (:func:`merlib.data.published.published_results`)."""
    from merlib.data.published import published_results

    table = published_results().set_index("method")
    out = {}
    for ref, method in METHODS.items():
        if method not in table.index:
            raise ConfigError(f"published_results.csv: no row {method!r} for the reference {ref}")
        out[ref] = (float(table.loc[method, "uf1_composite"]), str(table.loc[method, "bib_key"]))
    return out

#: The columns of ``calibration.csv`` that scripts read back.
CALIBRATION_COLUMNS: tuple[str, ...] = ("reference", "root", "uf1", "uf1_lo", "uf1_hi", "published")

#: Within this of the published value counts as calibrated.
TOLERANCE = 0.05


def calibration_rows(crops, data_root: str | os.PathLike, root_label: str, *,
                     names: Sequence[str] = ("majority", "lbp_top_svm", "biwoof_svm", "hoof_svm"),
                     clip_size: int = 128, clip_frames: int = 10, cache_dir: str | os.PathLike | None = None,
                     n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Score the references on a root's composite, with subject-bootstrap intervals.

    Parameters
    ----------
    crops : CropSet
        The root's composite apex crops (``prepare_crop_sets(...)["composite"]``): the
        samples and their LOSO folds.
    data_root : path
    root_label : str
        The ``root`` column (e.g. ``"book"`` or ``"development"``).
    names : sequence of str
        References of :data:`merlib.evaluation.handcrafted.REFERENCES`.
    clip_size, clip_frames : int
        Clip side in pixels and frames after resampling (LBP-TOP); Bi-WOOF and HOOF read
        the aligned onset and apex at the same side.
    cache_dir : path, optional
        The references' prediction cache.
    n_resamples, seed : int
        Subject bootstrap.

    Returns
    -------
    DataFrame
        One row per reference: :data:`CALIBRATION_COLUMNS`, then ``within`` (True when
        ``|uf1 - published| <= TOLERANCE``; None without a published value), ``n``,
        ``n_subjects``, ``clip_size``, ``clip_frames``.
    """
    from merlib.evaluation.bootstrap import bootstrap_table
    from merlib.evaluation.handcrafted import reference_predictions
    from merlib.evaluation.splits import loso_folds
    from merlib.faces.clips import ClipConfig

    if not names:
        raise ConfigError("names: expected at least one reference")
    preds = reference_predictions(crops, list(names), folds=loso_folds(crops.groups), data_root=data_root,
                                  cache_dir=cache_dir, clip_cfg=ClipConfig(size=clip_size, n_frames=clip_frames))
    table = bootstrap_table(preds, [f"pred_{n}" for n in names], n_resamples=n_resamples, seed=seed)
    comp = table[table["part"] == "composite"].set_index("classifier")
    published_values = {k: v for k, (v, _) in published_uf1().items()}
    rows = []
    for name in names:
        r = comp.loc[name]
        published = published_values.get(name)
        uf1 = round(float(r["uf1"]), 4)
        rows.append({"reference": name, "root": root_label, "uf1": uf1, "uf1_lo": round(float(r["uf1_lo"]), 4),
                     "uf1_hi": round(float(r["uf1_hi"]), 4), "published": published,
                     "within": None if published is None else bool(abs(uf1 - published) <= TOLERANCE),
                     "n": int(r["n"]), "n_subjects": int(r["n_subjects"]), "clip_size": clip_size,
                     "clip_frames": clip_frames})
    return pd.DataFrame(rows)


def write_csv(rows: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Replace ``rows``' roots in ``path`` (``calibration.csv``) by ``rows``; other roots'
    rows stay. Returns the path."""
    path = Path(path)
    missing = [c for c in CALIBRATION_COLUMNS if c not in rows.columns]
    if missing:
        raise ConfigError(f"rows: missing columns {missing}")
    if path.is_file():
        old = pd.read_csv(path)
        rows = pd.concat([old[~old["root"].isin(set(rows["root"]))], rows], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    rows.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def read_records(folder: str | os.PathLike, pattern: str = "calibration-*.json") -> pd.DataFrame:
    """The dated calibration records of ``bench/calibrate_synthme.py`` in ``folder``.

    Returns
    -------
    DataFrame
        One row per reference and record: the record's ``date``, ``code``, ``cpu``,
        ``data_fingerprint``, ``generator`` (its settings as JSON text), then the
        reference's row.
    """
    docs = []
    for path in Path(folder).glob(pattern):
        try:
            docs.append((path, json.loads(path.read_text())))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not a readable calibration record ({err})") from None
    rows = []
    # In the order they were made (v10 sorts before v2 by name).
    for path, doc in sorted(docs, key=lambda item: (str(item[1].get("date") or ""), item[0].name)):
        machine = doc.get("machine") or {}
        for r in doc.get("results", []):
            rows.append({"record": path.name, "date": doc.get("date"), "code": doc.get("code"),
                         "cpu": machine.get("cpu") if isinstance(machine, dict) else machine,
                         "data_fingerprint": doc.get("data_fingerprint"),
                         "generator": json.dumps(doc.get("generator"), sort_keys=True), **r})
    return pd.DataFrame(rows)


def calibration_table(book_rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The data chapter's table: the book root's rows, then each record's, one row per
    reference and root, with the published value and its source.

    Parameters
    ----------
    book_rows : DataFrame
        :func:`calibration_rows` of the book's root.
    records : DataFrame
        :func:`read_records` of ``bench/records`` (empty: none kept).

    Returns
    -------
    DataFrame
        ``reference``, ``root``, ``generator`` (the root's realism settings, or
        ``book`` settings), ``uf1`` with ``uf1_lo``/``uf1_hi``, ``published``,
        ``difference`` (uf1 minus published), ``within`` (|difference| <= 0.05), ``n``,
        ``date`` (the record's; empty for the book's own rows, computed here).
    """
    from merlib.synth import AMPLITUDE_FIELDS, REALISM_FIELDS, generator_settings

    plain = generator_settings({})

    def realism(text: str) -> str:
        doc = json.loads(text) if isinstance(text, str) and text else {}
        parts = [f"{k}={doc[k]}" for k in REALISM_FIELDS if k in doc]
        # A calibrated amplitude range is part of the generator's settings too.
        ranges = generator_settings(doc)
        parts += [f"{k}={list(ranges[k])}" for k in AMPLITUDE_FIELDS if ranges[k] != plain[k]]
        return ", ".join(parts) or "warp only (defaults)"

    cols = ["reference", "root", "uf1", "uf1_lo", "uf1_hi", "published", "n"]
    book = book_rows[cols].assign(date="", record="", generator="this book's root")
    frames = [book]
    if len(records):
        dev = records[cols + ["date", "record", "generator"]].copy()
        dev["generator"] = dev["generator"].map(realism)
        frames.append(dev)
    out = pd.concat(frames, ignore_index=True)
    out["difference"] = (out["uf1"] - out["published"]).round(4)
    out["within"] = [None if pd.isna(p) else bool(abs(d) <= TOLERANCE)
                     for p, d in zip(out["published"], out["difference"])]
    return out[["reference", "root", "record", "generator", "uf1", "uf1_lo", "uf1_hi", "published",
                "difference", "within", "n", "date"]]


def generators_to_compare(data_root: str | os.PathLike, records: pd.DataFrame):
    """The warp-only generator and a realistic one on this root's subjects, with one
    composite sample per class: the data chapter's figure input.

    A root made with realism options (the calibrated preset) is shown beside the
    warp-only generator on the same subjects; a warp-only root beside the latest
    record's settings.

    Returns
    -------
    (dict of str -> SynthConfig, list of (dataset, subject, sample)) or None
        Two configurations, the warp-only one first; None when ``data_root`` is not a
        SynthME root, or it is warp-only and there is no record.
    """
    from merlib.data.simulated import COMPOSITE, MARKER
    from merlib.synth import AMPLITUDE_FIELDS, REALISM_FIELDS, config_of_record, generator_settings

    root = Path(data_root)
    if not (root / MARKER).is_file():
        return None
    mine = config_of_record(json.loads((root / MARKER).read_text()))
    kept = {k: v for k, v in mine.record().items() if k not in (*REALISM_FIELDS, *AMPLITUDE_FIELDS)}
    if generator_settings(mine.record()) != generator_settings({}):
        configs = {"warp only (--realism none)": config_of_record(kept), "this root's generator": mine}
    elif len(records):
        latest = json.loads(records.sort_values(["date", "record"])["generator"].iloc[-1])
        # The record's realism settings on this root's subjects and samples.
        theirs = {k: v for k, v in latest.items() if k in (*REALISM_FIELDS, *AMPLITUDE_FIELDS)}
        configs = {"this root's generator": mine, "latest development record": config_of_record({**kept, **theirs})}
    else:
        return None
    listed = pd.read_csv(root / COMPOSITE, dtype=str)
    keys = [tuple(listed[listed["label"] == c].iloc[0][["dataset", "subject", "sample"]])
            for c in ("negative", "positive", "surprise") if (listed["label"] == c).any()]
    return configs, keys


def calibration_summary(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """:func:`calibration_table` as one row per root (the published values first, then this
    book's root, then each record in order), one column per reference.

    Parameters
    ----------
    table : DataFrame
        :func:`calibration_table` output.
    decimals : int, default=3

    Returns
    -------
    DataFrame of str
        Index: ``published (real)``, ``this book's root`` and the records (``dev-s7-v8`` for
        ``calibration-dev-s7-v8.json``). Columns:
        each reference as ``"0.564 [0.50, 0.64] ok"`` (``ok``: within :data:`TOLERANCE`
        of the published value, ``off``: not), then ``changed``: the generator settings
        that differ from the previous record's (all of them for the first).
    """
    refs = list(pd.unique(table["reference"]))
    keys = list(pd.unique(table["record"].fillna("")))
    published = table.drop_duplicates("reference").set_index("reference")["published"]
    out = {"published (real)": {r: ("" if pd.isna(published[r]) else f"{published[r]:.{decimals}f}") for r in refs}}
    out["published (real)"]["changed"] = ""
    previous: list[str] = []
    for key in keys:
        sub = table[table["record"].fillna("") == key].set_index("reference")
        row = {}
        for r in refs:
            if r not in sub.index:
                row[r] = ""
                continue
            x = sub.loc[r]
            flag = "" if x["within"] is None or pd.isna(x["within"]) else (" ok" if x["within"] else " off")
            row[r] = f"{x['uf1']:.{decimals}f} [{x['uf1_lo']:.2f}, {x['uf1_hi']:.2f}]{flag}"
        # "name=value" parts; a range's own ", " is inside its brackets.
        settings = re.split(r", (?=\w+=)", str(sub["generator"].iloc[0]))
        row["changed"] = "" if not key else ", ".join(p for p in settings if p not in previous) or "(as before)"
        if key:
            previous = settings
        out[key.removeprefix("calibration-").removesuffix(".json") if key else "this book's root"] = row
    return pd.DataFrame.from_dict(out, orient="index")[refs + ["changed"]]

