"""Crop sets: aligned face crops and their sample table, in memory and on disk.

A *crop set* is what pre-processing produces and training consumes: ``X``, uint8 of shape
(N, S, S), aligned grey face crops (S = 256 in the paper), and ``meta``, one row per crop
with at least ``dataset``, ``subject``, ``sample`` and ``label`` (one of
:data:`~merlib.data.schema.LABELS`). Two on-disk forms are read by :func:`load_crop_set`:

- a ``merlib preprocess`` output folder (``manifest.csv`` + the crop store beside it);
  its usable rows (status ``ok`` or ``fallback``) of the requested ``set``;
- an ``.npz`` file holding the array ``X`` with a CSV manifest of the same stem beside
  it (``crops.npz`` + ``crops.csv``, one row per crop in order), as
  :func:`save_crop_set` writes.

The torch side (datasets, augmentation, batches) is :mod:`merlib.training.batches`.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from merlib.data.schema import LABELS
from merlib.errors import ConfigError, DataLayoutError

if TYPE_CHECKING:
    from merlib.provenance import Provenance

#: Columns a crop set's ``meta`` must have.
META_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "label")


@dataclass(frozen=True, eq=False)
class CropSet:
    """Aligned face crops and their sample table.

    Parameters
    ----------
    X : ndarray of shape (n_samples, S, S), uint8
    meta : DataFrame
        n_samples rows, in the order of ``X``, with :data:`META_COLUMNS`.
    source : str, default=""
        Where it was read from (for records).
    data_kind : str, default="unspecified"
        "SIMULATED (SynthME ...)" or "real" when known, as in
        :class:`~merlib.provenance.Provenance`.
    """

    X: np.ndarray
    meta: pd.DataFrame
    source: str = ""
    data_kind: str = "unspecified"

    def __post_init__(self) -> None:
        X = self.X
        if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 3 or X.shape[1] != X.shape[2]:
            raise ConfigError("X: expected a uint8 array of shape (n_samples, S, S), got "
                             f"{getattr(X, 'dtype', type(X).__name__)} {getattr(X, 'shape', '')}")
        missing = [c for c in META_COLUMNS if c not in self.meta.columns]
        if missing:
            raise ConfigError(f"meta: missing columns {missing}; expected at least {list(META_COLUMNS)}")
        if len(self.meta) != len(X):
            raise ConfigError(f"meta: expected {len(X)} rows (one per crop), got {len(self.meta)}")
        bad = ~self.meta["label"].isin(LABELS).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"meta: row {i} ({self.meta['sample'].iloc[i]}): label "
                             f"{self.meta['label'].iloc[i]!r} is not one of {LABELS}")
        object.__setattr__(self, "meta", self.meta.reset_index(drop=True))

    def __len__(self) -> int:
        return len(self.X)

    @property
    def y(self) -> np.ndarray:
        """Class codes, int64 of shape (n_samples,): index into :data:`LABELS`."""
        return self.meta["label"].map({c: i for i, c in enumerate(LABELS)}).to_numpy(np.int64)

    @property
    def groups(self) -> np.ndarray:
        """Subject keys ``dataset/subject`` of shape (n_samples,): LOSO groups (names are
        only unique within a dataset)."""
        m = self.meta
        return (m["dataset"].astype(str) + "/" + m["subject"].astype(str)).to_numpy()

    def subset(self, idx: Sequence[int] | np.ndarray) -> CropSet:
        """The crops at integer positions ``idx``, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        return CropSet(self.X[idx], self.meta.iloc[idx], self.source, self.data_kind)

    def fingerprint(self, length: int = 12) -> str:
        """Hex digest of the pixels and the (dataset, subject, sample, label) rows."""
        digest = hashlib.sha256()
        digest.update(str(self.X.shape).encode())
        digest.update(np.ascontiguousarray(self.X).data)
        digest.update(self.meta[list(META_COLUMNS)].astype(str).to_csv(index=False).encode())
        return digest.hexdigest()[:length]


def save_crop_set(crops: CropSet, path: str | os.PathLike) -> Path:
    """Write ``<path>.npz`` (array ``X``) and ``<path>.csv`` (``meta``); returns the npz."""
    npz = Path(path).with_suffix(".npz")
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, X=crops.X)
    crops.meta.to_csv(npz.with_suffix(".csv"), index=False)
    if crops.data_kind != "unspecified":
        npz.with_suffix(".json").write_text(json.dumps({"data_kind": crops.data_kind}))
    return npz


def load_crop_set(path: str | os.PathLike, *, set: str | None = None) -> CropSet:
    """Read a crop set from a ``merlib preprocess`` folder or an ``.npz`` + ``.csv`` pair.

    Parameters
    ----------
    path : path
        A folder holding ``manifest.csv`` (pre-processing output), or an ``.npz`` file
        with an array ``X`` and a manifest CSV of the same stem beside it.
    set : {"composite", "macro"}, optional
        Pre-processing folders hold both sets; pick one (required there when the
        manifest has both). Ignored for ``.npz`` files unless their CSV has a ``set``
        column.
    """
    p = Path(path)
    if p.is_dir():
        X, meta = _read_preprocess_folder(p)
    elif p.suffix == ".npz" and p.is_file():
        csv = p.with_suffix(".csv")
        if not csv.is_file():
            raise DataLayoutError(f"path: {p} has no manifest {csv.name} beside it")
        with np.load(p, allow_pickle=False) as z:
            if "X" not in z.files:
                raise ConfigError(f"path: {p} holds {z.files}, expected an array named 'X'")
            X = z["X"]
        meta = pd.read_csv(csv, dtype={c: "string" for c in META_COLUMNS}, keep_default_na=False)
    else:
        raise DataLayoutError(f"path: expected a preprocess folder with manifest.csv or an "
                                f".npz file, got {p}")
    if "set" in meta.columns:
        present = sorted(meta["set"].dropna().unique())
        if set is None and len(present) > 1:
            raise ConfigError(f"set: {p} holds the sets {present}; choose one")
        if set is not None:
            if set not in present:
                raise ConfigError(f"set: expected one of {present}, got {set!r}")
            keep = (meta["set"] == set).to_numpy()
            X, meta = X[keep], meta[keep]
    # The data kind travels in a small JSON beside the crops (pre-processing: run.json).
    kind_file = p / "run.json" if p.is_dir() else p.with_suffix(".json")
    kind = json.loads(kind_file.read_text()).get("data_kind", "unspecified") if kind_file.is_file() else "unspecified"
    return CropSet(X, meta.reset_index(drop=True), str(p), kind)


def _read_preprocess_folder(folder: Path) -> tuple[np.ndarray, pd.DataFrame]:
    from merlib.faces.run import load_crops

    manifest_path = folder / "manifest.csv"
    if not manifest_path.is_file():
        raise DataLayoutError(f"path: {folder} has no manifest.csv (run `merlib preprocess`)")
    manifest = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    X, _, rows = load_crops(manifest, folder)
    return X, rows


def synthetic_crop_set(n_subjects: int = 6, per_subject: int = 10, size: int = 64, *,
                       datasets: Sequence[str] = ("casme2", "samm", "smic"), signal: float = 60.0,
                       seed: int = 0) -> CropSet:
    """A small crop set with a learnable class cue, for tests and benchmarks.

    Each class brightens a different face region (negative: brows, positive: mouth
    corners, surprise: forehead and mouth) by ``signal`` grey levels on a noisy
    background that differs per subject. Subjects are spread round-robin over
    ``datasets``; labels cycle so every subject has every class.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cues = [
        np.exp(-((yy - 0.3) ** 2 + (xx - 0.5) ** 2) / 0.01),                       # brows
        np.exp(-((yy - 0.75) ** 2) / 0.005) * np.exp(-((np.abs(xx - 0.5) - 0.2) ** 2) / 0.01),  # mouth corners
        np.exp(-((yy - 0.15) ** 2) / 0.01) + np.exp(-((yy - 0.8) ** 2 + (xx - 0.5) ** 2) / 0.01),  # forehead + mouth
    ]
    X, rows = [], []
    for s in range(n_subjects):
        base = 100 + 40 * rng.random() + 15 * rng.standard_normal((size, size))
        for k in range(per_subject):
            c = k % len(LABELS)
            img = base + signal * cues[c] * (0.7 + 0.6 * rng.random()) + 10 * rng.standard_normal((size, size))
            X.append(np.clip(img, 0, 255).astype(np.uint8))
            rows.append({"dataset": datasets[s % len(datasets)], "subject": f"s{s:02d}",
                         "sample": f"s{s:02d}_{k:02d}", "label": LABELS[c]})
    return CropSet(np.stack(X), pd.DataFrame(rows).astype("string"), "synthetic", "SIMULATED (toy)")


def prepare_crop_sets(data_root: str | os.PathLike, store_dir: str | os.PathLike | None = None, *,
                      sets: Sequence[str] = ("composite", "macro"), seed: int = 0,
                      workers: int | None = None, allow_missing: bool = False,
                      progress: bool = False, provenance: "Provenance | None" = None) -> dict[str, CropSet]:
    """Pre-process ``data_root`` (through the on-disk cache) and load its crop sets.

    What a notebook or script needs before training: the aligned crops of the MEGC2019
    composite (``"composite"``) and of the macro transfer set (``"macro"``), with the
    paper's pre-processing settings. A rerun with the same data is a cache hit.

    Parameters
    ----------
    data_root : path
    store_dir : path, optional
        Pre-processing cache and output folder (default:
        :func:`merlib.faces.cache.default_store_dir` of ``data_root``).
    sets : sequence of {"composite", "macro"}
    seed : int
        MUG frame selection.
    workers : int, optional
        Pre-processing workers (default: all cores).
    allow_missing : bool
        Proceed with the composite samples on disk (SynthME holds a subset); the missing
        ones are in ``report.csv``.
    provenance : Provenance, optional
        The caller's provenance of ``data_root`` (saves walking the data tree again).

    Returns
    -------
    dict of str -> CropSet
        One per set, labelled with the data kind (simulated or real). Samples whose
        pre-processing failed are not in the sets; ``report.csv`` lists them.
    """
    from merlib.faces.cache import default_store_dir
    from merlib.faces.run import build_jobs, preprocess, write_outputs
    from merlib.provenance import Provenance

    prov = provenance if provenance is not None else Provenance.for_data(data_root, seed=seed)
    store = Path(store_dir) if store_dir is not None else default_store_dir(data_root, prov.data_fingerprint)
    jobs = build_jobs(data_root, list(sets), allow_missing=allow_missing, seed=seed)
    run = preprocess(jobs, data_root, store, workers=workers, progress=progress)
    write_outputs(run, store, prov)
    return {s: load_crop_set(store, set=s) for s in sets}


def holdout_subjects(groups: np.ndarray, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) with about ``val_fraction`` of the subjects in validation.

    The held-out split of training (the best macro epoch, inner curves); the LOSO folds
    are :mod:`merlib.evaluation.splits`, which re-exports this.
    """
    groups = np.asarray(groups)
    if len(np.unique(groups)) < 2:
        raise ValueError("groups: a subject-wise validation split needs at least 2 subjects")
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    tr, va = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return tr.astype(np.int64), va.astype(np.int64)
