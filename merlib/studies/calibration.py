"""How hard a data root is, measured by the references with published real-data scores.

SynthME's free parameters (appearance strength, head motion, weak expressions, ...) are
set so that two references score on it what they score on the real MEGC2019 composite,
on the same protocol (LOSO, three classes, composite UF1):

- LBP-TOP + linear SVM, the MEGC2019 baseline: 0.5882 (See et al. 2019);
- Bi-WOOF + linear SVM: 0.6296 (Liong et al. 2018, as listed by MEGC2019).

Both are in ``merlib/data/resources/published_results.csv``. The method under test is
never scored here: a generator tuned on it would be tuned to flatter it.

:func:`calibration_rows` scores a root; ``bench/calibrate_synthme.py`` does it for a
generated development root and keeps a dated record (``bench/records/``), and the data
chapter does it for the book's own root and shows both beside the published values.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from merlib.errors import ConfigError

__all__ = ["PUBLISHED", "CALIBRATION_COLUMNS", "calibration_rows", "read_records", "write_csv"]

#: Published real composite UF1 of the calibration references (``published_results.csv``).
PUBLISHED: dict[str, float] = {"lbp_top_svm": 0.5882, "biwoof_svm": 0.6296}

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
    rows = []
    for name in names:
        r = comp.loc[name]
        published = PUBLISHED.get(name)
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
    rows = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not a readable calibration record ({err})") from None
        machine = doc.get("machine") or {}
        for r in doc.get("results", []):
            rows.append({"record": path.name, "date": doc.get("date"), "code": doc.get("code"),
                         "cpu": machine.get("cpu") if isinstance(machine, dict) else machine,
                         "data_fingerprint": doc.get("data_fingerprint"),
                         "generator": json.dumps(doc.get("generator"), sort_keys=True), **r})
    return pd.DataFrame(rows)
