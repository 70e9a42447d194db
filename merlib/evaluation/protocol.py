"""The MEGC2019 protocol: leave-one-subject-out, predictions pooled, UF1 / UAR / accuracy.

:func:`evaluate_loso` trains one fresh network per outer fold (optionally from the
transferred weights), classifies the test subject with the SVM and with the softmax
head, pools every fold's predictions, and scores the composite and each part from the
same pooled rows. Hyper-parameters are fixed in advance (``search=None``) or chosen by
the grid search on inner subject-wise validation (:mod:`merlib.evaluation.search`);
the leaky choice on test folds exists only as the labelled ``selection="leaky_test"``.

Files written to ``out_dir`` (what the notebooks read):

``tasks/``           one file set per finished task (outer fold, or fold x grid point
                     x inner fold), written atomically as each task completes, and
                     ``run_key.json``; a rerun with the same arguments reads them back
                     instead of training again (:class:`merlib.evaluation.runner.TaskStore`)
``predictions.csv``  one row per sample: dataset, subject, sample, label, fold,
                     grid_index, pred (the configured classifier), pred_svm,
                     pred_softmax, p_negative, p_positive, p_surprise; with
                     ``svm_early_grid`` > 0 also pred_svm_pooled (the paper's SVM on
                     the pooled vector, same networks); and ``flags`` when the crop
                     set's table has them (e.g. an estimated apex)
``metrics.csv``      classifier x part: uf1, uar, accuracy, ``n`` (the samples scored in
                     that part: the results are over these, not over the 442 listed);
                     the selection label
``excluded.csv``     crops from a ``merlib preprocess`` folder only: every sample of the
                     set that pre-processing could not use (sample, dataset, status,
                     reason), so the composite's ``n`` adds up to what was listed
``folds.csv``        one row per fold: test subject, sizes, chosen grid values, SVM
                     choice, seconds (and train_s, embed_s, svm_s)
``curves.csv``       one row per fold and epoch: training loss and accuracy
``search_scores.csv``, ``search_chosen.csv``  with a search
``run.json``         configs, selection label, transfer source, provenance, timings,
                     ``n_samples``, ``n_excluded``, task counts (reused / computed)

Every file is written to a unique temporary name and renamed, so a killed run leaves
whole files only, and ``out_dir`` is checked for writing before any training.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merlib.config import FinetuneConfig, SearchConfig
from merlib.data.schema import LABELS
from merlib.errors import ConfigError, DataLayoutError, MissingSamplesError
from merlib.evaluation.fold import fit_predict, outer_seed, resolve_transfer, task_identity
from merlib.evaluation.metrics import metrics_table
from merlib.evaluation.runner import TaskStore, atomic_write, run_tasks, task_runner
from merlib.evaluation.search import FIXED_LABEL, SearchResult, open_task_store, run_search, write_search
from merlib.evaluation.splits import loso_folds
from merlib.provenance import Provenance, code_version
from merlib.training.crops import CropSet
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
    excluded : DataFrame or None
        Samples pre-processing could not use (sample, dataset, status, reason); None when
        the crops do not come from a ``merlib preprocess`` folder (nothing known).
    tasks : dict
        ``total``, ``reused`` (read back from ``out_dir``) and ``computed`` task counts.
    """

    predictions: pd.DataFrame
    metrics: pd.DataFrame
    folds: pd.DataFrame
    curves: pd.DataFrame
    selection: str
    search: SearchResult | None
    seconds: float
    out_dir: Path | None = None
    excluded: pd.DataFrame | None = None
    tasks: dict[str, int] = field(default_factory=dict)

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
                  progress: bool = False, resume: bool = True,
                  fit_cache: str | os.PathLike | None = None) -> LosoResult:
    """Leave-one-subject-out over ``crops``' subjects, predictions pooled, then scored.

    Parameters
    ----------
    crops : CropSet
        The micro composite (``dataset`` in casme2/samm/smic gives the per-part rows).
    cfg : FinetuneConfig
    out_dir : path, optional
        Where the result files go (none written when None). Checked for writing before
        any training; every finished task is kept there as it completes.
    transfer : None, path, TransferResult or dict of tensors
        Transferred weights; None trains from random initialisation.
    search : SearchConfig, optional
        None: ``cfg``'s batch size, lr and epochs for every fold. Otherwise the grid
        search chooses them (per fold on inner validation, or the labelled leaky way).
    client, scheduler, n_workers, processes
        Where the tasks run (:func:`merlib.evaluation.runner.task_runner`): by default a
        local Dask cluster on all cores; ``n_workers=1`` runs serially in this process.
    progress : bool
    resume : bool, default=True
        Reuse the tasks a previous run with the same crops, settings and weights left in
        ``out_dir`` (the metrics are identical to an uninterrupted run); False deletes
        them first. A folder holding another run's tasks is refused either way unless
        ``resume=False``.
    fit_cache : path, optional
        A folder of fits shared between runs (:func:`~merlib.evaluation.search.open_fit_cache`):
        a fit another run already made on the same crops, weights, settings, seed and
        rows is read from there instead of trained again. Needs ``out_dir``.

    Returns
    -------
    LosoResult

    Raises
    ------
    ConfigError
        ``out_dir`` not writable or holding another run; a transfer checkpoint of another
        architecture or image size.
    MissingSamplesError
        A sample without a prediction after every fold ran (names it).

    Examples
    --------
    >>> from merlib.config import Profile
    >>> from merlib.training.crops import synthetic_crop_set
    >>> res = evaluate_loso(synthetic_crop_set(4, 6), Profile.smoke().micro, n_workers=1)  # doctest: +SKIP
    >>> res.score("uf1")  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    folds = loso_folds(crops.groups)
    state = resolve_transfer(transfer, cfg)
    excluded = excluded_samples(crops)
    # Before any training: a folder that cannot take the results, or holds another
    # run's, is found out now.
    if fit_cache is not None and out_dir is None:
        raise ConfigError("fit_cache: needs out_dir (the run's own copy of each fit goes there)")
    store = (open_task_store(out_dir, crops, cfg, search, state, resume=resume, fit_cache=fit_cache)
             if out_dir is not None else None)
    found: SearchResult | None = None
    with task_runner(client, scheduler, n_workers, processes) as runner:
        shared = runner.share(crops)
        shared_state = runner.share(state) if state is not None else None
        if search is not None:
            found = run_search(crops, shared, cfg, search, folds, runner, shared_state, progress=progress,
                               store=store)
        choice = {f.index: found.params_for(f.index) if found else (-1, {}) for f in folds}
        tasks, identities = {}, {}
        for f in folds:
            if found and found.outer:
                break  # the leaky search already ran every outer fold of the chosen point
            gi, params = choice[f.index]
            key, point = f"outer-f{f.index}-g{gi}", cfg.replace(**params)
            seed = outer_seed(cfg.seed, f.index)
            tasks[key] = (shared, f.train_idx, f.test_idx, point, shared_state, seed)
            identities[key] = task_identity(point, seed, f.train_idx, f.test_idx)
        done = run_tasks(runner, fit_predict, tasks, identities, store, progress=progress, desc="LOSO folds")
        runner_kind, computed = runner.kind, runner.completed
    outputs = found.outer if found and found.outer else {f.index: done[k] for f, k in zip(folds, tasks)}

    selection = found.label if found else FIXED_LABEL
    predictions = _predictions(crops, folds, outputs, choice, cfg.classifier)
    metrics = metrics_table(predictions, [c for c in ("pred_svm", "pred_softmax", "pred_svm_pooled")
                                          if c in predictions.columns])
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
    reused = store.reused if store is not None else 0
    counts = {"total": reused + computed, "reused": reused, "computed": computed}
    result = LosoResult(predictions, metrics, fold_table, curves, selection, found,
                        time.perf_counter() - t0, Path(out_dir) if out_dir is not None else None,
                        excluded, counts)
    if out_dir is not None:
        _write(result, crops, cfg, search, _transfer_info(transfer), runner_kind, store)
    return result


#: Pre-processing statuses whose crop is used (the rest exclude their sample).
USABLE_STATUS: tuple[str, ...] = ("ok", "fallback")


def excluded_samples(crops: CropSet) -> pd.DataFrame | None:
    """The samples of ``crops``' set that pre-processing could not use, with the reason.

    Parameters
    ----------
    crops : CropSet
        Read from a ``merlib preprocess`` folder (``crops.source`` holds ``manifest.csv``
        and, normally, ``report.csv``).

    Returns
    -------
    DataFrame or None
        Columns ``sample`` (the report's ``dataset/subject/sample`` id), ``dataset``,
        ``status`` (``failed``, ``missing``, ...), ``reason``, plus ``flags`` when the report
        has them; only rows of the set(s) ``crops`` holds. None when ``crops`` does not
        come from such a folder: what was left out is then unknown.

    Raises
    ------
    DataLayoutError
        The report lacks a column it needs (names the file).
    """
    folder = Path(crops.source) if crops.source else None
    if folder is None or not folder.is_dir() or not (folder / "manifest.csv").is_file():
        return None
    # report.csv lists failed jobs and listed-but-absent samples; an older folder without
    # it still has the failed jobs in the manifest.
    path = folder / "report.csv" if (folder / "report.csv").is_file() else folder / "manifest.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "sample_id" not in table.columns:
        table = table.assign(sample_id=table["sample"]) if "sample" in table.columns else table
    needed = ["sample_id", "dataset", "status", "reason"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DataLayoutError(f"{path}: missing columns {missing}; expected a merlib preprocess output")
    bad = table[~table["status"].isin(USABLE_STATUS)]
    if "set" in crops.meta.columns and "set" in bad.columns:
        bad = bad[bad["set"].isin(set(crops.meta["set"].astype(str)))]
    cols = {"sample_id": "sample", "dataset": "dataset", "status": "status", "reason": "reason"}
    if "flags" in bad.columns:
        cols["flags"] = "flags"
    return bad[list(cols)].rename(columns=cols).reset_index(drop=True)


def _predictions(crops: CropSet, folds: list, outputs: dict[int, dict[str, Any]],
                 choice: dict[int, tuple[int, dict]], classifier: str) -> pd.DataFrame:
    n = len(crops)
    fold_of = np.full(n, -1)
    grid_of = np.full(n, -1)
    pred = {"pred_svm": np.full(n, -1), "pred_softmax": np.full(n, -1)}
    if all("pred_svm_pooled" in outputs[f.index] for f in folds):
        pred["pred_svm_pooled"] = np.full(n, -1)  # svm_early_grid: the paper's head, same networks
    proba = np.full((n, len(LABELS)), np.nan)
    for f in folds:
        out = outputs[f.index]
        idx = out["test_idx"]
        fold_of[idx], grid_of[idx] = f.index, choice[f.index][0]
        for col in pred:
            pred[col][idx] = out[col]
        proba[idx] = out["proba"]
    # A row left at -1 (or out of range) means a fold did not return it: never let the
    # code index LABELS (-1 would silently read as the last class).
    for col, codes in pred.items():
        bad = np.flatnonzero((codes < 0) | (codes >= len(LABELS)))
        if len(bad):
            names = crops.meta["sample"].astype(str).to_numpy()[bad]
            shown = ", ".join(f"{crops.groups[i]}/{s}" for i, s in zip(bad[:5], names[:5]))
            raise MissingSamplesError(f"{col}: {len(bad)} sample(s) have no prediction from their fold "
                                      f"(or an invalid class code): {shown}")
    names = np.asarray(LABELS, dtype=object)
    table = crops.meta[["dataset", "subject", "sample", "label"]].astype(str).copy()
    table["fold"], table["grid_index"] = fold_of, grid_of
    table["pred"] = names[pred[f"pred_{classifier}"]]
    for col, codes in pred.items():
        table[col] = names[codes]
    for k, label in enumerate(LABELS):
        table[f"p_{label}"] = proba[:, k]
    if "flags" in crops.meta.columns:
        # Flags (an estimated apex, a fallback) travel with their sample to the results.
        table["flags"] = crops.meta["flags"].fillna("").astype(str).to_numpy()
    return table


def _write(result: LosoResult, crops: CropSet, cfg: FinetuneConfig, search: SearchConfig | None,
           transfer: dict[str, Any] | None, runner_kind: str, store: TaskStore | None) -> None:
    out = result.out_dir
    assert out is not None
    out.mkdir(parents=True, exist_ok=True)

    def csv(name: str, table: pd.DataFrame) -> None:
        atomic_write(out / name, lambda p: table.to_csv(p, index=False))

    csv("predictions.csv", result.predictions)
    csv("metrics.csv", result.metrics)
    csv("folds.csv", result.folds)
    csv("curves.csv", result.curves)
    if result.excluded is not None:
        csv("excluded.csv", result.excluded)
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
        # None: the crops do not come from a preprocess folder, so exclusions are unknown.
        "n_excluded": None if result.excluded is None else len(result.excluded),
        "excluded_by_status": (None if result.excluded is None
                               else result.excluded["status"].value_counts().sort_index().to_dict()),
        "n_folds": len(result.folds),
        "runner": runner_kind,
        "tasks": result.tasks,
        "seconds": result.seconds,
        "composite": {m: result.score(m) for m in ("uf1", "uar", "accuracy")},
    }
    text = json.dumps(record, indent=1, default=str)
    atomic_write(out / "run.json", lambda p: p.write_text(text))
