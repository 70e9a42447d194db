"""One train/test split end to end: fine-tune, extract features, SVM, predict.

:func:`fit_predict` is the unit of work of both the LOSO protocol (outer folds) and the
grid search (inner folds): a pure function of the crops, the row indices, the config, the
transferred weights and a seed, so it gives the same answer serially or on any Dask
worker.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from merlib.config import FinetuneConfig
from merlib.errors import ConfigError
from merlib.evaluation.splits import check_disjoint
from merlib.models.backbone import input_normalisation
from merlib.models.features import early_width
from merlib.training.batches import CropDataset
from merlib.training.crops import CropSet
from merlib.training.engine import derive_seed, predict, resolve_device
from merlib.training.finetune import finetune
from merlib.training.svm import fit_svm, search_settings
from merlib.training.transfer import TransferResult, load_transfer

# torch's global RNG (weight init, dropout) and its thread count belong to the process:
# two tasks training at once in one process would draw from each other's stream. Tasks
# in one process therefore take turns; parallelism comes from processes.
_TORCH_TURN = threading.Lock()


def resolve_transfer(transfer: Any, cfg: FinetuneConfig) -> dict[str, torch.Tensor] | None:
    """The transferred tensors ``cfg.transfer_load`` asks for.

    Parameters
    ----------
    transfer : None, path, TransferResult or dict of tensors
        A ``train_macro`` output folder or result (its ``arch`` and ``image_size`` must
        be ``cfg``'s), or the tensors themselves.

    Raises
    ------
    ConfigError
        A checkpoint of another architecture or image size. Weights of another size would
        load (MobileViT's tensor shapes do not depend on the input size), but filters
        learnt on faces of one scale would be used at another, and the run's record
        would not say so.
    """
    if transfer is None or isinstance(transfer, dict):
        return transfer
    if isinstance(transfer, (str, os.PathLike)):
        transfer = load_transfer(Path(transfer))
    if not isinstance(transfer, TransferResult):
        raise ConfigError(f"transfer: expected None, a folder, a TransferResult or a dict of tensors, "
                         f"got {type(transfer).__name__}")
    arch = transfer.record["config"]["arch"]
    if arch != cfg.arch:
        raise ConfigError(f"transfer: {transfer.out_dir} was trained with arch={arch!r}, "
                         f"cfg.arch={cfg.arch!r}")
    size = transfer.record["config"].get("image_size")
    if size != cfg.image_size:
        raise ConfigError(f"transfer: {transfer.out_dir} was trained at image_size={size!r}, "
                         f"cfg.image_size={cfg.image_size!r}; train the macro model at the run's size")
    return transfer.extractor_state() if cfg.transfer_load == "blocks" else transfer.model_state()


def state_digest(state: dict[str, torch.Tensor] | None) -> str:
    """Hex digest of a state dict's names, dtypes, shapes and bytes ("none" for None).

    The identity of transferred weights, whatever they came from (a folder, a result, or
    tensors in memory), for the keys of stored task results.
    """
    if state is None:
        return "none"
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def outer_seed(seed: int, fold: int) -> int:
    """The seed of the fit on outer fold ``fold``'s training subjects.

    It does not depend on the grid point: a fixed-settings run, the grid search's final
    fit at the same settings and the leaky search's fit of that point are then the same
    task, computed once and shared (:class:`~merlib.evaluation.runner.TaskStore`'s fit
    cache). Grid points compared on the same fold also see the same random draws.
    """
    return derive_seed(seed, "outer", fold)


def inner_seed(seed: int, fold: int, split: int) -> int:
    """The seed of an inner-validation fit (outer ``fold``, inner ``split``), any grid point."""
    return derive_seed(seed, "inner", fold, split)


def task_identity(cfg: FinetuneConfig, seed: int, train_idx: np.ndarray,
                  test_idx: np.ndarray) -> dict[str, Any]:
    """What a :func:`fit_predict` result depends on besides the crops and the weights.

    Returns
    -------
    dict
        ``task``, ``config`` (every setting), ``seed`` and digests of the two index arrays.
    """
    def rows(idx: np.ndarray) -> str:
        arr = np.ascontiguousarray(np.asarray(idx, dtype=np.int64))
        return f"{len(arr)}:{hashlib.sha256(arr.tobytes()).hexdigest()[:16]}"

    return {"task": "fit_predict", "config": cfg.as_dict(), "seed": int(seed),
            "train_rows": rows(train_idx), "test_rows": rows(test_idx)}


def fit_predict(crops: CropSet, train_idx: np.ndarray, test_idx: np.ndarray, cfg: FinetuneConfig,
                transfer_state: dict[str, torch.Tensor] | None, seed: int) -> dict[str, Any]:
    """Fine-tune on ``train_idx``, fit the SVM on their features, predict ``test_idx``.

    Parameters
    ----------
    crops : CropSet
    train_idx, test_idx : ndarray of int
        Rows of ``crops``; no subject may appear in both (checked).
    cfg : FinetuneConfig
    transfer_state : dict of tensors or None
    seed : int

    Returns
    -------
    dict
        ``test_idx``; ``pred_svm``, ``pred_softmax`` (class codes, shape (n_test,));
        ``proba`` (n_test, 3) softmax; ``svm`` (chosen C, kernel, inner UF1);
        ``curves`` (DataFrame); ``seconds`` (wall time of the task, waiting included);
        ``timing``: ``train_s`` (fine-tuning), ``embed_s`` (feature extraction of the
        training and test crops), ``svm_s`` (SVM search, fit and prediction).
        With ``cfg.svm_early_grid`` > 0, also ``pred_svm_pooled`` and ``svm_pooled``: a
        second SVM, searched the same way on the pooled vector alone (the paper's head),
        from the same network: the two SVM inputs compared on one training.
    """
    t0 = time.perf_counter()
    check_disjoint(crops.groups, train_idx, test_idx)
    with _TORCH_TURN:
        t_wait = time.perf_counter()
        train = crops.subset(train_idx)
        result = finetune(train, cfg, transfer_state=transfer_state, seed=seed)
        model, device = result.model, resolve_device(cfg.device)
        t_train = time.perf_counter()
        mean, std = input_normalisation(model)
        test = crops.subset(test_idx)
        view = dict(image_size=cfg.image_size, mean=mean, std=std)
        grid = cfg.svm_early_grid
        f_train, _ = predict(model, CropDataset(train.X, train.y, **view), device, early_grid=grid)
        f_test, proba = predict(model, CropDataset(test.X, test.y, **view), device, early_grid=grid)
        n_grid = early_width(model, grid)
        t_embed = time.perf_counter()
    search = {**search_settings(cfg), "seed": seed}
    svm, info = fit_svm(f_train, train.y, train.groups, **search)
    out: dict[str, Any] = {"test_idx": np.asarray(test_idx), "pred_svm": svm.predict(f_test).astype(np.int64)}
    if n_grid:
        pooled, out["svm_pooled"] = fit_svm(f_train[:, n_grid:], train.y, train.groups, **search)
        out["pred_svm_pooled"] = pooled.predict(f_test[:, n_grid:]).astype(np.int64)
    t_end = time.perf_counter()
    return {**out, "pred_softmax": proba.argmax(1).astype(np.int64), "proba": proba, "svm": info,
            "curves": result.curves, "seconds": t_end - t0,
            "timing": {"train_s": t_train - t_wait, "embed_s": t_embed - t_train, "svm_s": t_end - t_embed}}
