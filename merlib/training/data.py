"""Crop sets in memory and on disk, the torch dataset, pixel perturbation, balanced batches.

A *crop set* is what pre-processing produces and training consumes: ``X``, uint8 of shape
(N, S, S), aligned grey face crops (S = 256 in the paper), and ``meta``, one row per crop
with at least ``dataset``, ``subject``, ``sample`` and ``label`` (one of
:data:`~merlib.data.schema.LABELS`). Two on-disk forms are read by :func:`load_crop_set`:

- a ``merlib preprocess`` output folder (``manifest.csv`` + the crop store beside it);
  its usable rows (status ``ok`` or ``fallback``) of the requested ``set``;
- an ``.npz`` file holding the array ``X`` with a CSV manifest of the same stem beside
  it (``crops.npz`` + ``crops.csv``, one row per crop in order), as
  :func:`save_crop_set` writes.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from merlib.data.schema import LABELS
from merlib.errors import ConfigError, DataLayoutError

if TYPE_CHECKING:
    from merlib.reporting.provenance import Provenance

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
        :class:`~merlib.reporting.provenance.Provenance`.
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


@dataclass(frozen=True)
class PixelPerturbation:
    """The paper's "pixel fine-tuning with probability 0.3 (maximum value 20)".

    With probability ``p`` an image gets independent uniform integer noise in
    [-max_delta, max_delta] grey levels on every pixel (clipped to [0, 255]); otherwise
    it is unchanged. The paper says no more; per-pixel noise is our reading.
    """

    p: float = 0.3
    max_delta: int = 20

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``images`` (B, 1, H, W) float on [0, 1] -> perturbed copy, same shape."""
        hit = torch.rand(images.shape[0], generator=generator) < self.p
        noise = torch.randint(-self.max_delta, self.max_delta + 1, images.shape, generator=generator)
        noise = noise.to(images.dtype) / 255.0 * hit.view(-1, 1, 1, 1)
        return (images + noise).clamp_(0.0, 1.0)


def resize_crops(X: np.ndarray, size: int, chunk: int = 256) -> torch.Tensor:
    """uint8 (N, S, S) -> uint8 tensor (N, 1, size, size), antialiased bilinear.

    Done once per dataset; rounding back to uint8 keeps memory at one byte per pixel
    (under half a grey level of error, far below the 20-level perturbation).
    """
    t = torch.from_numpy(np.ascontiguousarray(X)).unsqueeze(1)
    if X.shape[1] == size:
        return t
    out = torch.empty((len(X), 1, size, size), dtype=torch.uint8)
    for i in range(0, len(X), chunk):
        part = F.interpolate(t[i:i + chunk].float(), size=(size, size), mode="bilinear",
                             antialias=True, align_corners=False)
        out[i:i + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


class CropDataset(Dataset):
    """Crops as normalised 1-channel float tensors, with optional training augmentation.

    Parameters
    ----------
    X : ndarray of shape (n_samples, S, S), uint8
    y : ndarray of shape (n_samples,), int
        Class codes (index into :data:`LABELS`).
    image_size : int
        Network input side; crops are resized once at construction.
    mean, std : float
        Normalisation on [0, 1] pixels, from :func:`merlib.models.backbone.input_normalisation`.
    perturb : PixelPerturbation, optional
        Training only; None for evaluation.
    generator : torch.Generator, optional
        Source of the perturbation's randomness (required with ``perturb``); sharing it
        with the sampler lets one saved state resume both.

    Notes
    -----
    ``dataset[i]`` gives ``(image (1, s, s), label)``; ``__getitems__`` builds a whole
    batch at once, which torch's DataLoader uses when present.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, *, image_size: int, mean: float = 0.0,
                 std: float = 1.0, perturb: PixelPerturbation | None = None,
                 generator: torch.Generator | None = None) -> None:
        if len(X) != len(y):
            raise ValueError(f"y: expected {len(X)} labels (one per crop), got {len(y)}")
        if perturb is not None and generator is None:
            raise ValueError("generator: required when perturb is given (seeded augmentation)")
        if std <= 0:
            raise ValueError(f"std: expected > 0, got {std}")
        self.images = resize_crops(X, image_size)
        self.labels = torch.tensor(np.asarray(y), dtype=torch.int64)  # a copy: pandas arrays are read-only
        self.mean, self.std = float(mean), float(std)
        self.perturb, self.generator = perturb, generator

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]

    def __getitems__(self, idx: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx_t = torch.as_tensor(list(idx), dtype=torch.int64)
        x = self.images[idx_t].float().div_(255.0)
        if self.perturb is not None:
            x = self.perturb(x, self.generator)
        return (x - self.mean) / self.std, self.labels[idx_t]


class BalancedBatchSampler(Sampler[list[int]]):
    """Batches with the same number of samples of each class.

    Each batch takes ``batch_size // n_classes`` samples of every class present; when
    ``batch_size`` is not a multiple of the class count, the remaining slots go to
    distinct, randomly drawn classes (per-class counts then differ by one within a
    batch, and even out over an epoch). Within a class, samples are drawn from a
    shuffled cycle, so a minority class repeats only after all its samples were used.

    Parameters
    ----------
    labels : array-like of shape (n_samples,), int
    batch_size : int
    n_batches : int, optional
        Batches per epoch; default ``ceil(n_samples / batch_size)`` (one epoch sees as
        many images as there are samples).
    generator : torch.Generator
    """

    def __init__(self, labels: np.ndarray | Sequence[int], batch_size: int, *,
                 n_batches: int | None = None, generator: torch.Generator) -> None:
        labels = np.asarray(labels)
        self.classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        if batch_size < len(self.classes):
            raise ValueError(f"batch_size: expected >= {len(self.classes)} (one per class), got {batch_size}")
        self.batch_size = batch_size
        self.n_batches = n_batches or math.ceil(len(labels) / batch_size)
        self.generator = generator
        self._cycles: list[list[int]] = [[] for _ in self.classes]

    def __len__(self) -> int:
        return self.n_batches

    def _draw(self, c: int, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if not self._cycles[c]:
                perm = torch.randperm(len(self.classes[c]), generator=self.generator).tolist()
                self._cycles[c] = [int(self.classes[c][j]) for j in perm]
            take = min(k - len(out), len(self._cycles[c]))
            out += self._cycles[c][:take]
            del self._cycles[c][:take]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        n_cls = len(self.classes)
        base, extra = divmod(self.batch_size, n_cls)
        # A fresh cycle per epoch: the epoch is then a function of the generator state
        # alone, which is what a resumed run restores.
        self._cycles = [[] for _ in self.classes]
        for _ in range(self.n_batches):
            bonus = set(torch.randperm(n_cls, generator=self.generator)[:extra].tolist())
            batch = [i for c in range(n_cls) for i in self._draw(c, base + (c in bonus))]
            order = torch.randperm(len(batch), generator=self.generator).tolist()
            yield [batch[j] for j in order]


class ShuffledBatchSampler(Sampler[list[int]]):
    """Plain shuffled batches (the unbalanced alternative); a last batch of one is dropped
    (BatchNorm cannot train on a single sample)."""

    def __init__(self, n_samples: int, batch_size: int, *, generator: torch.Generator) -> None:
        self.n_samples, self.batch_size, self.generator = n_samples, batch_size, generator

    def __len__(self) -> int:
        full, rest = divmod(self.n_samples, self.batch_size)
        return full + (rest > 1)

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(self.n_samples, generator=self.generator).tolist()
        for i in range(0, self.n_samples, self.batch_size):
            batch = perm[i:i + self.batch_size]
            if len(batch) > 1:
                yield batch


def _as_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch  # __getitems__ already stacked it


def train_loader(dataset: CropDataset, batch_size: int, *, balanced: bool,
                 generator: torch.Generator) -> DataLoader:
    """Training batches (balanced or shuffled), drawn in this process."""
    sampler: Sampler[list[int]]
    if balanced:
        sampler = BalancedBatchSampler(dataset.labels.numpy(), batch_size, generator=generator)
    else:
        sampler = ShuffledBatchSampler(len(dataset), batch_size, generator=generator)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=_as_batch, num_workers=0)


def eval_loader(dataset: CropDataset, batch_size: int) -> DataLoader:
    """Batches in dataset order, no augmentation (build ``dataset`` without ``perturb``)."""
    batches = [list(range(i, min(i + batch_size, len(dataset)))) for i in range(0, len(dataset), batch_size)]
    return DataLoader(dataset, batch_sampler=batches, collate_fn=_as_batch, num_workers=0)


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
    from merlib.reporting.provenance import Provenance

    prov = provenance if provenance is not None else Provenance.for_data(data_root, seed=seed)
    store = Path(store_dir) if store_dir is not None else default_store_dir(data_root, prov.data_fingerprint)
    jobs = build_jobs(data_root, list(sets), allow_missing=allow_missing, seed=seed)
    run = preprocess(jobs, data_root, store, workers=workers, progress=progress)
    write_outputs(run, store, prov)
    return {s: load_crop_set(store, set=s) for s in sets}
