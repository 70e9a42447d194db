"""The MEGC2019 protocol: leave-one-subject-out, predictions pooled, UF1 / UAR / accuracy.

:func:`evaluate_loso` trains one fresh network per outer fold (optionally from the
transferred weights), classifies the test subject with the SVM and with the softmax
head, pools every fold's predictions, and scores the composite and each part from the
same pooled rows. Hyper-parameters are fixed in advance (``search=None``) or chosen by
the grid search on inner subject-wise validation (:mod:`merlib.evaluation.search`);
the leaky choice on test folds exists only as the labelled ``selection="leaky_test"``.

Files written to ``out_dir`` (what the notebooks read):

``predictions.csv``  one row per sample: dataset, subject, sample, label, fold,
                     grid_index, pred (the configured classifier), pred_svm,
                     pred_softmax, p_negative, p_positive, p_surprise
``metrics.csv``      classifier x part: uf1, uar, accuracy, n; the selection label
``folds.csv``        one row per fold: test subject, sizes, chosen grid values, SVM
                     choice, seconds (and train_s, embed_s, svm_s)
``curves.csv``       one row per fold and epoch: training loss and accuracy
``search_scores.csv``, ``search_chosen.csv``  with a search
``run.json``         configs, selection label, transfer source, provenance, timings
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merlib.config import FinetuneConfig, SearchConfig
from merlib.data.schema import LABELS
from merlib.evaluation.fold import fit_predict, resolve_transfer
from merlib.evaluation.metrics import metrics_table
from merlib.evaluation.runner import task_runner
from merlib.evaluation.search import FIXED_LABEL, SearchResult, run_search, write_search
from merlib.evaluation.splits import loso_folds
from merlib.reporting.provenance import Provenance, code_version
from merlib.training.data import CropSet
from merlib.training.engine import derive_seed
from merlib.training.transfer import TransferResult, load_transfer


@dataclass(frozen=True)
class LosoResult:
    """A LOSO evaluation.

    Attributes
    ----------
    predictions : DataFrame
        One row per sample (crop-set order); see the module docstring.
    metrics : DataFrame
        Columns classifier (``svm``/``softmax``), part, uf1, uar, accuracy, n, selection.
    folds : DataFrame
        One row per outer fold.
    curves : DataFrame
        fold, epoch, train_loss, train_acc, frozen_stages, trainable_params.
    selection : str
        How hyper-parameters were chosen (a sentence; starts with "LEAKY" when leaky).
    search : SearchResult or None
    seconds : float
        Wall time of the whole evaluation.
    out_dir : Path or None
    """

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    folds: pd.DataFrame
    curves: pd.DataFrame
    selection: str
    search: SearchResult | None
    seconds: float
    out_dir: Path | None = None

    def score(self, metric: str = "uf1", classifier: str = "svm", part: str = "composite") -> float:
        """One number of :attr:`metrics`, e.g. ``score("uar", "softmax", "samm")``."""
        m = self.metrics
        row = m[(m["classifier"] == classifier) & (m["part"] == part)]
        if row.empty:
            raise KeyError(f"classifier, part: no row for {classifier!r}, {part!r}")
        return float(row[metric].iloc[0])


def _transfer_info(transfer: Any) -> dict[str, Any] | None:
    if transfer is None:
        return None
    if isinstance(transfer, (str, os.PathLike)):
        transfer = load_transfer(transfer)
    if isinstance(transfer, TransferResult):
        prov = transfer.record.get("provenance", {})
        return {"out_dir": str(transfer.out_dir), "best_epoch": transfer.best_epoch,
                "best_val_acc": transfer.best_val_acc,
                "macro_data_fingerprint": prov.get("data_fingerprint")}
    return {"out_dir": None, "note": "tensors passed in memory"}


def evaluate_loso(crops: CropSet, cfg: FinetuneConfig = FinetuneConfig(),
                  out_dir: str | os.PathLike | None = None, *, transfer: Any = None,
                  search: SearchConfig | None = None, client: Any = None, scheduler: str | None = None,
                  n_workers: int | None = None, processes: bool = True,
                  progress: bool = False) -> LosoResult:
    """Leave-one-subject-out over ``crops``' subjects, predictions pooled, then scored.

    Parameters
    ----------
    crops : CropSet
        The micro composite (``dataset`` in casme2/samm/smic gives the per-part rows).
    cfg : FinetuneConfig
    out_dir : path, optional
        Where the result files go (none written when None).
    transfer : None, path, TransferResult or dict of tensors
        Transferred weights; None trains from random initialisation.
    search : SearchConfig, optional
        None: ``cfg``'s batch size, lr and epochs for every fold. Otherwise the grid
        search chooses them (per fold on inner validation, or the labelled leaky way).
    client, scheduler, n_workers, processes
        Where the tasks run (:func:`merlib.evaluation.runner.task_runner`): by default a
        local Dask cluster on all cores; ``n_workers=1`` runs serially in this process.
    progress : bool

    Returns
    -------
    LosoResult

    Examples
    --------
    >>> from merlib.config import Profile
    >>> from merlib.training.data import synthetic_crop_set
    >>> res = evaluate_loso(synthetic_crop_set(4, 6), Profile.smoke().micro, n_workers=1)  # doctest: +SKIP
    >>> res.score("uf1")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    folds = loso_folds(crops.groups)
    state = resolve_transfer(transfer, cfg)
    found: SearchResult | None = None
    with task_runner(client, scheduler, n_workers, processes) as runner:
        shared = runner.share(crops)
        shared_state = runner.share(state) if state is not None else None
        if search is not None:
            found = run_search(crops, shared, cfg, search, folds, runner, shared_state, progress=progress)
        choice = {f.index: found.params_for(f.index) if found else (-1, {}) for f in folds}
        tasks = {f"outer-f{f.index}-g{choice[f.index][0]}": (
                     shared, f.train_idx, f.test_idx, cfg.replace(**choice[f.index][1]), shared_state,
                     derive_seed(cfg.seed, "outer", f.index, choice[f.index][0]))
                 for f in folds if not (found and found.outer)}
        done = runner.run(fit_predict, tasks, progress=progress, desc="LOSO folds")
        runner_kind = runner.kind
    outputs = found.outer if found and found.outer else {f.index: done[k] for f, k in zip(folds, tasks)}

    selection = found.label if found else FIXED_LABEL
    predictions = _predictions(crops, folds, outputs, choice, cfg.classifier)
    metrics = metrics_table(predictions, ("pred_svm", "pred_softmax"))
    metrics["classifier"] = metrics["classifier"].str.removeprefix("pred_")
    metrics["selection"] = selection
    fold_table = pd.DataFrame([
        {"fold": f.index, "test_subject": f.test_subject, "n_train": len(f.train_idx),
         "n_test": len(f.test_idx), "grid_index": choice[f.index][0],
         **{k: choice[f.index][1].get(k, getattr(cfg, k)) for k in ("batch_size", "lr", "epochs")},
         "svm_C": outputs[f.index]["svm"]["C"], "svm_kernel": outputs[f.index]["svm"]["kernel"],
         "svm_inner_uf1": outputs[f.index]["svm"]["inner_uf1"], "seconds": outputs[f.index]["seconds"],
         **outputs[f.index].get("timing", {})}
        for f in folds])
    curves = pd.concat([outputs[f.index]["curves"].assign(fold=f.index) for f in folds], ignore_index=True)
    curves = curves[["fold", *[c for c in curves.columns if c != "fold"]]]
    result = LosoResult(predictions, metrics, fold_table, curves, selection, found,
                        time.perf_counter() - t0, Path(out_dir) if out_dir is not None else None)
    if out_dir is not None:
        _write(result, crops, cfg, search, _transfer_info(transfer), runner_kind)
    return result


def _predictions(crops: CropSet, folds: list, outputs: dict[int, dict[str, Any]],
                 choice: dict[int, tuple[int, dict]], classifier: str) -> pd.DataFrame:
    n = len(crops)
    fold_of = np.full(n, -1)
    grid_of = np.full(n, -1)
    pred = {"pred_svm": np.full(n, -1), "pred_softmax": np.full(n, -1)}
    proba = np.full((n, len(LABELS)), np.nan)
    for f in folds:
        out = outputs[f.index]
        idx = out["test_idx"]
        fold_of[idx], grid_of[idx] = f.index, choice[f.index][0]
        for col in pred:
            pred[col][idx] = out[col]
        proba[idx] = out["proba"]
    names = np.asarray(LABELS, dtype=object)
    table = crops.meta[["dataset", "subject", "sample", "label"]].astype(str).copy()
    table["fold"], table["grid_index"] = fold_of, grid_of
    table["pred"] = names[pred[f"pred_{classifier}"]]
    for col, codes in pred.items():
        table[col] = names[codes]
    for k, label in enumerate(LABELS):
        table[f"p_{label}"] = proba[:, k]
    return table


def _write(result: LosoResult, crops: CropSet, cfg: FinetuneConfig, search: SearchConfig | None,
           transfer: dict[str, Any] | None, runner_kind: str) -> None:
    out = result.out_dir
    assert out is not None
    out.mkdir(parents=True, exist_ok=True)
    result.predictions.to_csv(out / "predictions.csv", index=False)
    result.metrics.to_csv(out / "metrics.csv", index=False)
    result.folds.to_csv(out / "folds.csv", index=False)
    result.curves.to_csv(out / "curves.csv", index=False)
    if result.search is not None:
        write_search(result.search, out)
    record = {
        "kind": "merlib LOSO evaluation",
        "selection": result.selection,
        "config": cfg.as_dict(),
        "search": search.as_dict() if search else None,
        "transfer": transfer,
        "provenance": Provenance(crops.data_kind, crops.fingerprint(), code_version(),
                                 cfg.as_dict()).as_dict(),
        "source": crops.source,
        "n_samples": len(crops),
        "n_folds": len(result.folds),
        "runner": runner_kind,
        "seconds": result.seconds,
        "composite": {m: result.score(m) for m in ("uf1", "uar", "accuracy")},
    }
    (out / "run.json").write_text(json.dumps(record, indent=1, default=str))
