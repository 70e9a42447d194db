"""Crops as the network sees them: a config's training and evaluation views of a crop set
(:func:`make_datasets`), the torch dataset, pixel perturbation, batch samplers, loaders.

A :class:`CropDataset` resizes a crop set's uint8 crops (:mod:`merlib.training.crops`)
once to the network's input side and normalises them per batch. The training view is
class-balanced as the config says: the paper's way tops the split up with shifted and
flipped copies (:mod:`merlib.training.balance`), the other draws class-balanced batches
(:class:`BalancedBatchSampler`); evaluation batches come in dataset order.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from merlib.config import NetworkConfig
from merlib.models.backbone import input_normalisation
from merlib.training.balance import balance_training_set
from merlib.training.crops import CropSet


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
        Class codes (index into :data:`~merlib.data.schema.LABELS`).
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


#: Largest shift of class balancing, fraction of the crop side (the paper's "small":
#: 10 px at its 256 px).
BALANCE_SHIFT_FRACTION = 10 / 256


def make_datasets(crops: CropSet, cfg: NetworkConfig, model: nn.Module,
                  generator: torch.Generator) -> tuple[CropDataset, CropDataset]:
    """(training view, evaluation view) of ``crops``.

    The training view is class-balanced as ``cfg.balance`` says and perturbed
    (``cfg.perturb_p``); the evaluation view is the crops as they are. With
    ``balance="augment"`` (the paper's), the minority classes are topped up to the
    largest class's count with small shifts and horizontal flips of their own crops
    (:func:`merlib.training.balance.balance_training_set`); ``crops`` is always a training
    split, so nothing of a test subject is augmented. Its seed is drawn from
    ``generator``, so the same seed gives the same new crops.
    """
    mean, std = input_normalisation(model)
    perturb = PixelPerturbation(cfg.perturb_p, cfg.perturb_max) if cfg.perturb_p > 0 else None
    X, y = crops.X, crops.y
    if cfg.balance == "augment":
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        # The paper's "small" shift, 10 px at 256 px (4 % of the side), at any crop size.
        shift = max(1, round(BALANCE_SHIFT_FRACTION * X.shape[1]))
        balanced = balance_training_set(X, y, np.arange(len(y)), seed=seed, max_shift_px=shift)
        X, y = balanced.X, balanced.y
    train = CropDataset(X, y, image_size=cfg.image_size, mean=mean, std=std,
                        perturb=perturb, generator=generator)
    plain = CropDataset(crops.X, crops.y, image_size=cfg.image_size, mean=mean, std=std)
    return train, plain
