"""Transfer learning: train the network on macro-expressions, keep the best epoch, export
the convolutional (MobileNetV2-block) weights as the facial-expression feature extractor.

The paper: "the macro-expression samples were used to train the MobileNetV2 block in
MobileViT as a facial expression feature extractor and to save the weights when the
accuracy was highest" (SGD, momentum 0.9, lr 0.01, batch 32, 100 epochs, pixel
perturbation p 0.3 up to 20). "Highest accuracy" is measured here on held-out macro
*subjects* (:attr:`TrainConfig.val_fraction`), never on micro-expression data.

Files written to ``out_dir`` (all loadable without pickle):

=============================  =====================================================
``model.safetensors``          every weight of the best epoch
``feature_extractor.safetensors``  the extractor's weights and BatchNorm buffers, best epoch
``transfer.json``              parameters, data fingerprint, code version, best epoch,
                               the validation subjects, file list
``curves.csv``                 one row per epoch: train/val loss and accuracy, val UF1
``state.pt``                   the last finished epoch: model, optimiser and RNG states;
                               a rerun with ``resume=True`` continues from it
=============================  =====================================================
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from merlib.config import TrainConfig
from merlib.data.schema import LABELS
from merlib.errors import ConfigError, DataLayoutError
from merlib.evaluation.metrics import scores
from merlib.evaluation.splits import holdout_subjects
from merlib.models.backbone import conv_state_keys, create_backbone, feature_extractor_state
from merlib.reporting.provenance import Provenance, code_version
from merlib.training.data import CropSet
from merlib.training.engine import (eval_loss, make_datasets, make_optimizer, predict,
                                    resolve_device, seed_everything, train_epoch)

MODEL_FILE = "model.safetensors"
EXTRACTOR_FILE = "feature_extractor.safetensors"
RECORD_FILE = "transfer.json"
CURVES_FILE = "curves.csv"
STATE_FILE = "state.pt"
#: Settings that may change between a run and its resumption.
RESUMABLE_CHANGES: frozenset[str] = frozenset({"epochs", "device", "num_threads"})


@dataclass(frozen=True)
class TransferResult:
    """A finished (or resumed) macro training run.

    Attributes
    ----------
    out_dir : Path
    curves : DataFrame
        Columns epoch (1-based), train_loss, train_acc, val_loss, val_acc, val_uf1,
        val_uar, seconds.
    best_epoch : int
        1-based epoch whose weights were kept (highest validation accuracy, earliest on ties).
    best_val_acc : float
    record : dict
        The content of ``transfer.json``.
    """

    out_dir: Path
    curves: pd.DataFrame
    best_epoch: int
    best_val_acc: float
    record: dict[str, Any]

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.record["config"])

    def extractor_state(self) -> dict[str, torch.Tensor]:
        """The transferred feature-extractor tensors (best epoch)."""
        return load_file(self.out_dir / EXTRACTOR_FILE)

    def model_state(self) -> dict[str, torch.Tensor]:
        """Every weight of the best epoch."""
        return load_file(self.out_dir / MODEL_FILE)


def _atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def _atomic_torch_save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _check_resumable(saved: dict[str, Any], cfg: TrainConfig, fingerprint: str, out_dir: Path) -> None:
    now = cfg.as_dict()
    for key, value in saved["config"].items():
        if key not in RESUMABLE_CHANGES and now.get(key) != value:
            raise ConfigError(f"cfg: {out_dir / STATE_FILE} was trained with {key}={value!r}, this "
                             f"call has {key}={now.get(key)!r}; use another out_dir or resume=False")
    if saved["data_fingerprint"] != fingerprint:
        raise ConfigError(f"crops: {out_dir / STATE_FILE} was trained on data {saved['data_fingerprint']}, "
                         f"these crops are {fingerprint}; use another out_dir or resume=False")


def train_macro(crops: CropSet, cfg: TrainConfig = TrainConfig(), out_dir: str | os.PathLike = "transfer",
                *, resume: bool = True, progress: bool = False) -> TransferResult:
    """Train on macro-expression crops; keep the best epoch; export the extractor.

    Parameters
    ----------
    crops : CropSet
        Macro-expression crops (labels in :data:`LABELS`), several subjects.
    cfg : TrainConfig
    out_dir : path
        Created if needed; see the module docstring for the files.
    resume : bool, default=True
        Continue from ``out_dir/state.pt`` when present (same settings and data, except
        ``epochs``, ``device``, ``num_threads``); False starts again and overwrites.
    progress : bool, default=False
        tqdm bar over epochs.

    Returns
    -------
    TransferResult
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = crops.fingerprint()
    train_idx, val_idx = holdout_subjects(crops.groups, cfg.val_fraction, seed=cfg.seed)
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed, cfg.num_threads)
    model = create_backbone(cfg.arch, image_size=cfg.image_size, drop_rate=cfg.drop_rate).to(device)
    optimizer = make_optimizer(model, cfg)
    train_ds, _ = make_datasets(crops.subset(train_idx), cfg, model, generator)
    _, val_ds = make_datasets(crops.subset(val_idx), cfg, model, generator)
    y_val = crops.y[val_idx]

    curves: list[dict[str, float]] = []
    best_epoch, best_acc, start = 0, -1.0, 0
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        saved = torch.load(state_path, map_location="cpu", weights_only=True)
        _check_resumable(saved, cfg, fingerprint, out)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        generator.set_state(saved["data_rng"])
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        curves, best_epoch, best_acc, start = saved["curves"], saved["best_epoch"], saved["best_acc"], saved["epoch"]

    meta = {"arch": cfg.arch, "image_size": str(cfg.image_size), "code_version": code_version()}
    for epoch in tqdm(range(start, cfg.epochs), desc="macro epochs", disable=not progress,
                      initial=start, total=cfg.epochs):
        t0 = time.perf_counter()
        fit = train_epoch(model, train_ds, cfg, optimizer, generator, device)
        _, proba = predict(model, val_ds, device)
        val = scores(y_val, proba.argmax(1))
        curves.append({"epoch": epoch + 1, "train_loss": fit["loss"], "train_acc": fit["acc"],
                       "val_loss": eval_loss(proba, y_val), "val_acc": val["accuracy"],
                       "val_uf1": val["uf1"], "val_uar": val["uar"], "seconds": time.perf_counter() - t0})
        if val["accuracy"] > best_acc:
            best_epoch, best_acc = epoch + 1, val["accuracy"]
            epoch_meta = {**meta, "epoch": str(best_epoch)}
            _atomic_save_safetensors(model.state_dict(), out / MODEL_FILE, epoch_meta)
            _atomic_save_safetensors(feature_extractor_state(model), out / EXTRACTOR_FILE, epoch_meta)
        pd.DataFrame(curves).to_csv(out / CURVES_FILE, index=False)
        state = {"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "data_rng": generator.get_state(),
                 "curves": curves, "best_epoch": best_epoch, "best_acc": best_acc,
                 "config": cfg.as_dict(), "data_fingerprint": fingerprint}
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        _atomic_torch_save(state, state_path)

    groups = crops.groups
    record = {
        "kind": "merlib transfer learning (macro-expressions)",
        "config": cfg.as_dict(),
        "provenance": Provenance(crops.data_kind, fingerprint, code_version(), cfg.as_dict()).as_dict(),
        "source": crops.source,
        "epochs_done": len(curves),
        "best_epoch": best_epoch,
        "best_val_acc": best_acc,
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
        "val_subjects": sorted(set(groups[val_idx].tolist())),
        "train_subjects": sorted(set(groups[train_idx].tolist())),
        "class_counts": {c: int((crops.meta["label"] == c).sum()) for c in LABELS},
        "feature_extractor_keys": len(conv_state_keys(model)),
        "files": {"model": MODEL_FILE, "feature_extractor": EXTRACTOR_FILE, "curves": CURVES_FILE,
                  "state": STATE_FILE},
    }
    (out / RECORD_FILE).write_text(json.dumps(record, indent=1))
    return TransferResult(out, pd.DataFrame(curves), best_epoch, best_acc, record)


def load_transfer(out_dir: str | os.PathLike) -> TransferResult:
    """A finished run's result, read back from its ``out_dir``."""
    out = Path(out_dir)
    record_path = out / RECORD_FILE
    if not record_path.is_file():
        raise DataLayoutError(f"transfer: {out} has no {RECORD_FILE} (run `merlib train-macro`)")
    record = json.loads(record_path.read_text())
    curves = pd.read_csv(out / CURVES_FILE)
    return TransferResult(out, curves, int(record["best_epoch"]), float(record["best_val_acc"]), record)
