"""Grid search over batch size, initial learning rate and epochs, without test leakage.

The paper tunes "batch size, initial learning rate, and number of iterations" by grid
search. Under leave-one-subject-out every subject is a test subject once, so a single
search on the composite would choose with the test subjects' help. Here (``selection=
"inner"``) every outer fold gets its own choice, made on GroupKFold splits of *its
training subjects*: grid point ``g`` is trained on the inner-training subjects and scored
on the inner-validation ones, inner predictions are pooled over the inner folds, and the
best pooled score wins (ties: lowest ``g``).

``selection="leaky_test"`` is the common shortcut, kept only as a labelled option so the
book can measure it: every grid point runs the full LOSO and the point with the best
pooled *test* score is reported. Its numbers are optimistic by construction.

Tasks are (outer fold, grid index[, inner fold]); the grid index is the integer index of
:class:`~sklearn.model_selection.ParameterGrid`, stable across runs and machines.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterGrid

from merlib.config import FinetuneConfig, SearchConfig
from merlib.evaluation.fold import (fit_predict, inner_seed, outer_seed, resolve_transfer, state_digest,
                                    task_identity)
from merlib.evaluation.metrics import scores
from merlib.evaluation.runner import (STORE_FORMAT, Runner, TaskStore, atomic_write, run_tasks,
                                      task_runner)
from merlib.evaluation.splits import Fold, inner_folds, loso_folds
from merlib.provenance import code_version
from merlib.training.crops import CropSet
from merlib.training.engine import derive_seed

#: Sub-folder of an output folder that holds one file set per finished task.
TASKS_DIR = "tasks"

LEAKY_LABEL = "LEAKY: hyper-parameters chosen on the pooled test folds (optimistic, for comparison only)"
INNER_LABEL = "hyper-parameters chosen per fold on inner subject-wise validation (training subjects only)"
FIXED_LABEL = "hyper-parameters fixed in advance (no search)"


@dataclass(frozen=True)
class SearchResult:
    """The grid search's scores and choices.

    Attributes
    ----------
    scores : DataFrame
        One row per (fold, grid_index): the grid values, pooled ``uf1``, ``uar``,
        ``accuracy``, ``n``. Inner selection: inner-validation scores of each outer fold.
        Leaky selection: one row per grid index, ``fold`` = -1, the pooled LOSO test scores.
    chosen : DataFrame
        One row per outer fold: ``fold``, ``test_subject``, ``grid_index`` and the values.
    grid : list of dict
        ``list(ParameterGrid(...))``: position = grid index.
    selection : str
        ``inner`` or ``leaky_test``.
    label : str
        A sentence saying how the choice was made (LEAKY spelt out when it is).
    outer : dict
        Leaky selection only: ``{fold index: fit_predict output}`` of the chosen point, so
        the LOSO protocol reuses them instead of training again.
    """

    scores: pd.DataFrame
    chosen: pd.DataFrame
    grid: list[dict[str, Any]]
    selection: str
    label: str
    outer: dict[int, dict[str, Any]] = field(default_factory=dict)

    def params_for(self, fold: int) -> tuple[int, dict[str, Any]]:
        """(grid index, grid values) chosen for outer fold ``fold``."""
        row = self.chosen.loc[self.chosen["fold"] == fold]
        if row.empty:
            raise KeyError(f"fold: no choice recorded for fold {fold}")
        gi = int(row["grid_index"].iloc[0])
        return gi, dict(self.grid[gi])


def _pooled(outputs: list[dict[str, Any]], y: np.ndarray, classifier: str) -> dict[str, float]:
    idx = np.concatenate([o["test_idx"] for o in outputs])
    pred = np.concatenate([o[f"pred_{classifier}"] for o in outputs])
    return scores(y[idx], pred)


def _best(table: pd.DataFrame, metric: str) -> int:
    # Highest score; ties go to the lowest grid index (stable, documented).
    ranked = table.sort_values([metric, "grid_index"], ascending=[False, True], kind="mergesort")
    return int(ranked["grid_index"].iloc[0])


def open_task_store(out_dir: str | os.PathLike, crops: CropSet, cfg: FinetuneConfig,
                    search: SearchConfig | None, transfer_state: Any, *, resume: bool = True,
                    fit_cache: str | os.PathLike | None = None) -> TaskStore:
    """The :class:`~merlib.evaluation.runner.TaskStore` of a LOSO run in ``out_dir/tasks``.

    Its run key holds the crops' fingerprint, every setting of ``cfg`` and ``search`` and
    the digest of the transferred tensors: a rerun with any of them changed is refused
    (:class:`~merlib.errors.ConfigError`) instead of mixing results. It also holds a
    digest of the source of the code that computes a task (:func:`compute_code_digest`):
    after an edit there, the stored tasks are deleted with a warning and run again, so
    a notebook never shows numbers of older code. ``code_version`` is only recorded.

    With ``fit_cache`` (a folder), every fit is also looked up in and written to that
    folder (:func:`open_fit_cache`), where other runs on the same crops and transferred
    weights find it.
    """
    key = {"kind": "merlib LOSO tasks", "format": STORE_FORMAT, "crops": crops.fingerprint(),
           "n_samples": len(crops), "config": cfg.as_dict(),
           "search": search.as_dict() if search is not None else None,
           "transfer": state_digest(transfer_state), "code": compute_code_digest(),
           "code_version": code_version()}
    store = TaskStore.open(Path(out_dir) / TASKS_DIR, key, resume=resume, ignore=frozenset({"code_version"}),
                           renew=frozenset({"code"}))
    if fit_cache is not None:
        store.share_with(open_fit_cache(fit_cache, code=key["code"]),
                         {"crops": key["crops"], "n_samples": key["n_samples"], "transfer": key["transfer"]})
    return store


def open_fit_cache(folder: str | os.PathLike, *, code: str | None = None) -> TaskStore:
    """The fit cache in ``folder``: :func:`~merlib.evaluation.fold.fit_predict` results of
    any run, each known by its crops, transferred weights, settings, seed and rows.

    Runs of several notebooks share fits through it: a grid search's final fit at the
    fixed settings is the fixed-settings run's fit of that fold
    (:func:`~merlib.evaluation.fold.outer_seed`), and the leaky search reuses both. Like a
    run's own store, it is emptied when the code that computes a fit changes. ``code``:
    that code's digest when the caller already has it (:func:`compute_code_digest`
    reads every source file).
    """
    key = {"kind": "merlib fit cache", "format": STORE_FORMAT, "code": code or compute_code_digest(),
           "code_version": code_version()}
    return TaskStore.open(Path(folder), key, ignore=frozenset({"code_version"}), renew=frozenset({"code"}))


#: The parts of merlib a task's result depends on (training, networks, evaluation).
COMPUTE_SOURCES: tuple[str, ...] = ("config.py", "data/schema.py", "models", "training", "evaluation")


def compute_code_digest() -> str:
    """Hex digest of the source files in :data:`COMPUTE_SOURCES` (paths and bytes).

    Finer than the git commit: uncommitted edits count, and edits elsewhere (readers,
    the book) do not.
    """
    import merlib

    base = Path(merlib.__file__).resolve().parent
    h = hashlib.sha256()
    for entry in COMPUTE_SOURCES:
        files = [base / entry] if entry.endswith(".py") else sorted((base / entry).rglob("*.py"))
        for f in files:
            h.update(f.relative_to(base).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def grid_search(crops: CropSet, cfg: FinetuneConfig, search: SearchConfig, *,
                transfer: Any = None, folds: list[Fold] | None = None, client: Any = None,
                scheduler: str | None = None, n_workers: int | None = None, processes: bool = True,
                out_dir: str | os.PathLike | None = None, resume: bool = True,
                progress: bool = False) -> SearchResult:
    """Choose batch size, lr and epochs for each outer LOSO fold (or, leaky, for all).

    Parameters
    ----------
    crops : CropSet
        The micro-expression composite (or any crop set with several subjects).
    cfg : FinetuneConfig
        Everything but the grid's three values, which each grid point overrides.
    search : SearchConfig
        The grid, the inner splits, the metric and the selection (``inner`` or the
        labelled ``leaky_test``).
    transfer : None, path, TransferResult or dict of tensors
        Transferred weights (:func:`merlib.evaluation.fold.resolve_transfer`).
    folds : list of Fold, optional
        Outer folds; default every LOSO fold of ``crops``.
    client, scheduler, n_workers, processes
        Where tasks run (:func:`merlib.evaluation.runner.task_runner`): an existing
        client, a scheduler address, or a local cluster (default); ``n_workers=1`` runs
        serially in this process.
    out_dir : path, optional
        Writes ``search_scores.csv`` and ``search_chosen.csv`` there, and every finished
        task under ``out_dir/tasks`` as it completes (:func:`open_task_store`).
    resume : bool, default=True
        Reuse the finished tasks in ``out_dir``; False deletes them first.
    progress : bool

    Returns
    -------
    SearchResult

    Examples
    --------
    >>> from merlib.config import Profile
    >>> from merlib.training.crops import synthetic_crop_set
    >>> p = Profile.smoke()
    >>> res = grid_search(synthetic_crop_set(4, 6), p.micro, p.search, n_workers=1)  # doctest: +SKIP
    >>> res.chosen[["fold", "grid_index"]]  # doctest: +SKIP
    """
    folds = loso_folds(crops.groups) if folds is None else folds
    state = resolve_transfer(transfer, cfg)
    store = open_task_store(out_dir, crops, cfg, search, state, resume=resume) if out_dir is not None else None
    with task_runner(client, scheduler, n_workers, processes) as runner:
        result = run_search(crops, runner.share(crops), cfg, search, folds, runner,
                            runner.share(state) if state is not None else None, progress=progress,
                            store=store)
    if out_dir is not None:
        write_search(result, out_dir)
    return result


def write_search(result: SearchResult, out_dir: str | os.PathLike) -> None:
    """``search_scores.csv`` and ``search_chosen.csv`` (with the selection label column),
    each written to a unique temporary name and renamed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("search_scores.csv", result.scores), ("search_chosen.csv", result.chosen)):
        frame = table.assign(selection=result.label)
        atomic_write(out / name, lambda p, f=frame: f.to_csv(p, index=False))


def run_search(crops: CropSet, shared_crops: Any, cfg: FinetuneConfig, search: SearchConfig,
               folds: list[Fold], runner: Runner, transfer_state: Any = None, *,
               progress: bool = False, store: TaskStore | None = None) -> SearchResult:
    """:func:`grid_search` on an open runner, with already shared crops and weights.

    ``shared_crops`` and ``transfer_state`` are what :meth:`Runner.share` returned, so the
    LOSO protocol sends them to the workers once for the search and the final fits.
    With ``store``, finished (fold, grid point, inner fold) tasks are read back and the
    others written as they complete.
    """
    grid = list(ParameterGrid(search.param_grid()))
    y, groups = crops.y, crops.groups
    tasks: dict[str, tuple] = {}
    identities: dict[str, dict[str, Any]] = {}
    inner_keys: dict[tuple[int, int], list[str]] = {}
    if search.leaky:
        for fold in folds:
            for gi, params in enumerate(grid):
                key, point = f"outer-f{fold.index}-g{gi}", cfg.replace(**params)
                seed = outer_seed(cfg.seed, fold.index)
                tasks[key] = (shared_crops, fold.train_idx, fold.test_idx, point, transfer_state, seed)
                identities[key] = task_identity(point, seed, fold.train_idx, fold.test_idx)
    else:
        for fold in folds:
            splits = inner_folds(fold.train_idx, groups, search.inner_splits,
                                 seed=derive_seed(cfg.seed, "inner-split", fold.index))
            for gi, params in enumerate(grid):
                for k, (tr, va) in enumerate(splits):
                    key = f"inner-f{fold.index}-g{gi}-i{k}"
                    inner_keys.setdefault((fold.index, gi), []).append(key)
                    point, seed = cfg.replace(**params), inner_seed(cfg.seed, fold.index, k)
                    tasks[key] = (shared_crops, tr, va, point, transfer_state, seed)
                    identities[key] = task_identity(point, seed, tr, va)
    results = run_tasks(runner, fit_predict, tasks, identities, store, progress=progress, desc="grid search")

    rows, chosen, outer = [], [], {}
    if search.leaky:
        for gi, params in enumerate(grid):
            outs = [results[f"outer-f{f.index}-g{gi}"] for f in folds]
            rows.append({"fold": -1, "test_subject": "(all)", "grid_index": gi, **params,
                         **_pooled(outs, y, cfg.classifier)})
        table = pd.DataFrame(rows)
        best = _best(table, search.metric)
        chosen = [{"fold": f.index, "test_subject": f.test_subject, "grid_index": best, **grid[best]}
                  for f in folds]
        outer = {f.index: results[f"outer-f{f.index}-g{best}"] for f in folds}
        label = LEAKY_LABEL
    else:
        for fold in folds:
            fold_rows = []
            for gi, params in enumerate(grid):
                outs = [results[k] for k in inner_keys[(fold.index, gi)]]
                fold_rows.append({"fold": fold.index, "test_subject": fold.test_subject,
                                  "grid_index": gi, **params, **_pooled(outs, y, cfg.classifier)})
            best = _best(pd.DataFrame(fold_rows), search.metric)
            chosen.append({"fold": fold.index, "test_subject": fold.test_subject, "grid_index": best,
                           **grid[best]})
            rows += fold_rows
        table = pd.DataFrame(rows)
        label = INNER_LABEL
    return SearchResult(table, pd.DataFrame(chosen), grid, search.selection, label, outer)

