"""Fine-tuning on micro-expressions for one training set, with gradual unfreezing.

The paper: after transfer, "freeze the weights of all convolutional layers and gradually
unfreeze the convolutional layers as the number of training iterations increases until
all are unfrozen", with Adam (lr 0.007, batch 64) and the same number of samples per
class in each iteration.

Here the frozen part is exactly what was transferred: the stages of
:func:`~merlib.models.backbone.conv_stages` (MobileViT: stem + MobileNetV2 blocks). The
transformer blocks and the head train from the first epoch. The stages are unfrozen
one at a time, deepest first (nearest the head, the least generic features), between
``unfreeze_start`` and ``unfreeze_end`` (fractions of the epochs). A frozen stage also
keeps its BatchNorm statistics: it stays in eval mode. Without transferred weights
nothing is frozen (random filters are not worth keeping).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from merlib.config import FinetuneConfig
from merlib.models.backbone import (conv_stages, conv_state_keys, create_backbone, load_feature_extractor,
                                    load_weights)
from merlib.training.batches import CropDataset, make_datasets
from merlib.training.crops import CropSet
from merlib.training.engine import (make_optimizer, recalibrate_batchnorm, resolve_device,
                                    seed_everything, train_epoch)


def unfreeze_epochs(n_stages: int, epochs: int, start: float, end: float) -> list[int]:
    """The 0-based epoch from which each stage trains, stages listed input side first.

    The deepest stage unfreezes at ``floor(start * epochs)``, the shallowest at
    ``floor(end * epochs)``, the others evenly between.

    Examples
    --------
    >>> unfreeze_epochs(5, 10, 0.2, 0.6)
    [6, 5, 4, 3, 2]
    """
    if n_stages < 1:
        raise ValueError(f"n_stages: expected >= 1, got {n_stages}")
    if not 0 <= start <= end <= 1:
        raise ValueError(f"start, end: expected 0 <= start <= end <= 1, got {start}, {end}")
    deepest_first = [start + (end - start) * k / max(n_stages - 1, 1) for k in range(n_stages)]
    # The epsilon keeps 0.7 * 10 from flooring to 6.
    return [math.floor(f * epochs + 1e-9) for f in reversed(deepest_first)]


class GradualUnfreezer:
    """Freezes the stages of a model and releases them on schedule.

    Parameters
    ----------
    model : torch.nn.Module
    stages : list of tuple of str
        Module-name prefixes per stage, input side first.
    start_epochs : list of int
        0-based epoch from which each stage trains (same order as ``stages``).
    """

    def __init__(self, model: nn.Module, stages: list[tuple[str, ...]], start_epochs: list[int]) -> None:
        if len(stages) != len(start_epochs):
            raise ValueError(f"start_epochs: expected {len(stages)} values (one per stage), got {len(start_epochs)}")
        self.model, self.stages, self.start_epochs = model, stages, start_epochs

    def frozen_stages(self, epoch: int) -> list[int]:
        return [i for i, s in enumerate(self.start_epochs) if epoch < s]

    def modules(self, stages: list[int]) -> tuple[nn.Module, ...]:
        """The modules of the stages at positions ``stages``."""
        return tuple(self.model.get_submodule(p) for i in stages for p in self.stages[i])

    def apply(self, epoch: int) -> tuple[nn.Module, ...]:
        """Set ``requires_grad`` for ``epoch``; returns the frozen modules (keep them in eval)."""
        frozen = self.frozen_stages(epoch)
        for i, prefixes in enumerate(self.stages):
            for prefix in prefixes:
                self.model.get_submodule(prefix).requires_grad_(i not in frozen)
        return self.modules(frozen)


@dataclass
class FinetuneResult:
    """A fine-tuned model.

    Attributes
    ----------
    model : torch.nn.Module
        On the config's device, every stage unfrozen at the end.
    curves : DataFrame
        Per epoch: epoch (1-based), train_loss, train_acc, frozen_stages, trainable_params.
    loaded_keys : list of str
        State entries taken from the transferred weights (empty without transfer).
    """

    model: nn.Module
    curves: pd.DataFrame
    loaded_keys: list[str]


def _load_transfer(model: nn.Module, state: dict[str, torch.Tensor], how: str) -> list[str]:
    if how == "blocks":
        keys = set(conv_state_keys(model))
        return load_feature_extractor(model, {k: v for k, v in state.items() if k in keys})
    return load_weights(model, state, skip_classifier=True)


#: Called after each epoch with (epoch index, model, modules frozen in it, the training
#: crops unaugmented); returns extra columns for that epoch's row of the curves.
EpochHook = Callable[[int, nn.Module, tuple[nn.Module, ...], CropDataset], dict[str, Any]]


def finetune(crops: CropSet, cfg: FinetuneConfig = FinetuneConfig(), *,
             transfer_state: dict[str, torch.Tensor] | None = None, seed: int | None = None,
             on_epoch: EpochHook | None = None) -> FinetuneResult:
    """Train a fresh network on ``crops`` (a training split, never a test subject).

    Parameters
    ----------
    crops : CropSet
        The training samples.
    cfg : FinetuneConfig
    transfer_state : dict of str to Tensor, optional
        Transferred weights: the feature extractor (``transfer_load="blocks"``) or every
        weight of the macro model (``"full"``; its classifier is skipped). None trains
        from random initialisation without freezing.
    seed : int, optional
        Overrides ``cfg.seed`` (LOSO passes one per fold and grid point).
    on_epoch : callable, optional
        :data:`EpochHook`, e.g. a validation on held-out training subjects; it must leave
        the weights and the global RNG as it found them.

    Returns
    -------
    FinetuneResult
    """
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed if seed is None else seed, cfg.num_threads)
    model = create_backbone(cfg.arch, image_size=cfg.image_size, drop_rate=cfg.drop_rate)
    loaded = _load_transfer(model, transfer_state, cfg.transfer_load) if transfer_state is not None else []
    model.to(device)
    stages = conv_stages(model)
    starts = (unfreeze_epochs(len(stages), cfg.epochs, cfg.unfreeze_start, cfg.unfreeze_end)
              if loaded else [0] * len(stages))
    unfreezer = GradualUnfreezer(model, stages, starts)
    optimizer = make_optimizer(model, cfg)
    train_ds, plain_ds = make_datasets(crops, cfg, model, generator)
    curves = []
    for epoch in range(cfg.epochs):
        frozen_modules = unfreezer.apply(epoch)
        fit = train_epoch(model, train_ds, cfg, optimizer, generator, device, keep_eval=frozen_modules)
        curves.append({"epoch": epoch + 1, "train_loss": fit["loss"], "train_acc": fit["acc"],
                       "frozen_stages": len(unfreezer.frozen_stages(epoch)),
                       "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                       **(on_epoch(epoch, model, frozen_modules, plain_ds) if on_epoch else {})})
    # Stages still frozen in the last epoch trained on their transferred statistics.
    still_frozen = unfreezer.modules(unfreezer.frozen_stages(cfg.epochs - 1))
    unfreezer.apply(cfg.epochs)
    if cfg.bn_recalibrate:
        recalibrate_batchnorm(model, plain_ds, device, cfg.batch_size, generator, keep=still_frozen)
    return FinetuneResult(model, pd.DataFrame(curves), loaded)
