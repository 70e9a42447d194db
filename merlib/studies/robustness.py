"""Robustness to capture conditions: perturb the test subject's apex frames, keep the model.

For every leave-one-subject-out fold the method is trained once on clean crops, exactly
as :func:`merlib.evaluation.fold.fit_predict` does (same fold seed, so the clean
predictions are the LOSO run's). Then the held-out subject's apex frames are read again,
degraded by each perturbation of :mod:`merlib.faces.perturb` at each strength *before*
pre-processing, and pre-processed anew (dlib detection and landmarks, alignment, eye
mask: :func:`merlib.faces.pipeline.find_landmarks` and :func:`~merlib.faces.pipeline.align`,
the paper's settings) and classified by the unchanged fold model.

Two outcomes are kept apart:

* ``failed``: the pre-processing found no usable face in the perturbed frame (no face,
  face too small, flat crop). Scored as the training folds' majority class -- what a
  system would fall back to -- and counted separately.
* a wrong class on a crop that was made: a misclassification.

The perturbed frames' neighbours are not used (the perturbation would apply to them too),
so a frame whose face is lost is lost. Each fold's result is written to
``out_dir/fold_<k>.csv`` as it completes; a rerun reads finished folds back. Folds run
in parallel on a local Dask cluster (``n_workers``), each a pure function of its inputs.

Two network inputs (``input``):

* ``"apex"``, the paper's: the apex frame is perturbed, its landmarks found again, and
  it is aligned and masked.
* ``"difference"`` (:mod:`merlib.training.difference`): the onset and apex frames are
  perturbed alike, as one camera, light, pose or occluder would degrade both; the
  landmarks are found on the perturbed apex frame and both frames are aligned with that
  one transform, as :func:`merlib.faces.clips.align_clip` does. Noise is drawn anew for
  each frame (a sensor's noise is not the same twice).

Chapter 08 calls :func:`prepare_robustness` (the studied root, its crops and the folds),
:func:`run_robustness` and :func:`summarise`, and writes :func:`summary_lines` as its verdict;
its table and figure are :mod:`merlib.reporting.robustness`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from merlib.config import FinetuneConfig
from merlib.data.schema import LABELS
from merlib.errors import ConfigError, DataLayoutError
from merlib.faces.perturb import PERTURBATIONS, perturb

if TYPE_CHECKING:
    from merlib.provenance import Provenance
    from merlib.training.crops import CropSet

#: The book's grid: three to five strengths per perturbation, mild to severe.
BOOK_GRID: dict[str, tuple[float, ...]] = {
    "noise": (8.0, 16.0, 32.0),
    "blur": (0.02, 0.04, 0.08),
    "brightness": (40.0, 80.0, 120.0),
    "contrast": (0.5, 0.25, 0.1),
    "gamma": (1.5, 2.5, 4.0),
    "jpeg": (30.0, 10.0, 3.0),
    "lowres": (32.0, 16.0, 8.0),
    "rotation": (10.0, 25.0, 45.0),
    "turn": (0.1, 0.2, 0.35),
    "occlude_mouth": (0.3, 0.6, 1.0),
    "occlude_brows": (0.3, 0.6, 1.0),
}

#: The wide grid (``profile='full'``).
FULL_GRID: dict[str, tuple[float, ...]] = {
    "noise": (4.0, 8.0, 16.0, 32.0, 64.0),
    "blur": (0.01, 0.02, 0.04, 0.08, 0.16),
    "brightness": (20.0, 40.0, 80.0, 120.0, -80.0),
    "contrast": (0.75, 0.5, 0.25, 0.1, 0.05),
    "gamma": (1.5, 2.5, 4.0, 0.5, 0.3),
    "jpeg": (50.0, 30.0, 10.0, 5.0, 2.0),
    "lowres": (40.0, 32.0, 16.0, 8.0, 4.0),
    "rotation": (5.0, 10.0, 25.0, 45.0, 60.0),
    "turn": (0.05, 0.1, 0.2, 0.35, 0.5),
    "occlude_mouth": (0.2, 0.3, 0.6, 1.0, 1.5),
    "occlude_brows": (0.2, 0.3, 0.6, 1.0, 1.5),
}

#: Network inputs the study perturbs.
INPUTS: tuple[str, ...] = ("apex", "difference")

_COLUMNS = ("fold", "dataset", "subject", "sample", "label", "perturbation", "strength", "status",
            "reason", "pred")


def check_grid(grid: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
    """Validate a perturbation grid: known names, at least one strength each."""
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(f"grid: expected a non-empty mapping of perturbation -> strengths, got {grid!r}")
    out = {}
    for name, strengths in grid.items():
        if name not in PERTURBATIONS:
            raise ConfigError(f"grid: unknown perturbation {name!r}; known: {sorted(PERTURBATIONS)}")
        values = tuple(float(s) for s in strengths)
        if not values:
            raise ConfigError(f"grid[{name!r}]: expected at least one strength")
        out[str(name)] = values
    return out


def conditions(grid: Mapping[str, Sequence[float]]) -> list[tuple[str, float]]:
    """``("clean", 0.0)`` then every ``(perturbation, strength)`` of the grid, in order."""
    return [("clean", 0.0)] + [(n, s) for n, ss in check_grid(grid).items() for s in ss]


def perturbed_crops(grey: np.ndarray, conds: Sequence[tuple[str, float]], align_cfg: Any = None,
                    *, seed: int = 0, onset: np.ndarray | None = None,
                    gain: float | None = None) -> tuple[list[np.ndarray | None], list[str]]:
    """Pre-process one frame (or an onset/apex pair) under each condition.

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
        The clean apex frame.
    conds : sequence of (name, strength)
        ``("clean", ...)`` or a perturbation of :data:`PERTURBATIONS`.
    align_cfg : AlignConfig, optional
        Pre-processing settings (default: the paper's, as the crop sets use). For a
        difference image, ``crop_size`` is its side.
    seed : int
        Noise seed.
    onset : ndarray of shape (H, W), uint8, optional
        The clean onset frame of the same sample: each crop is then the difference image
        (:func:`~merlib.training.difference.difference_image`) of the two frames,
        perturbed alike and aligned with the perturbed apex frame's landmarks.
    gain : float, optional
        Gain of the difference image (default
        :data:`~merlib.training.difference.DIFFERENCE_GAIN`).

    Returns
    -------
    crops : list of (S, S) uint8 arrays, or None where pre-processing failed
    reasons : list of str
        ``""`` for a crop; else why it failed (``no face found``, ``flat crop ...``;
        ``clean frame failed`` for every condition when the clean frame has no face,
        since the perturbations are placed with its landmarks).
    """
    from merlib.faces.align import face_std
    from merlib.faces.config import AlignConfig
    from merlib.faces.pipeline import align, find_landmarks

    from merlib.training.difference import DIFFERENCE_GAIN, difference_image

    cfg = align_cfg or AlignConfig()
    if onset is not None and np.shape(onset) != np.shape(grey):
        raise ConfigError(f"onset: expected the apex frame's shape {np.shape(grey)}, got {np.shape(onset)}")
    clean = find_landmarks(grey, cfg)
    if clean.points is None:
        return [None] * len(conds), [f"clean frame failed: {clean.reason}"] * len(conds)
    # The onset's noise is its own draw: a sensor's noise differs from frame to frame.
    onset_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    crops: list[np.ndarray | None] = []
    reasons: list[str] = []
    for name, strength in conds:
        g = grey if name == "clean" else perturb(grey, name, strength, clean.points, seed=seed)
        det = clean if name == "clean" else find_landmarks(g, cfg)
        if det.points is None:
            crops.append(None)
            reasons.append(det.reason or "no face found")
            continue
        aligned = align(g, det.points, cfg)
        std = face_std(aligned, g.shape)
        if std < cfg.min_face_std:
            crops.append(None)
            reasons.append(f"flat crop (std {std:.1f})")
            continue
        if onset is None:
            crops.append(aligned.crop)
        else:
            o = onset if name == "clean" else perturb(onset, name, strength, clean.points, seed=onset_seed)
            crops.append(difference_image(align(o, det.points, cfg).crop, aligned.crop,
                                          DIFFERENCE_GAIN if gain is None else gain))
        reasons.append("")
    return crops, reasons


def pick_folds(groups: np.ndarray, n_subjects: int | None, seed: int = 0) -> list[int]:
    """Indices of the LOSO folds whose test subjects the study perturbs.

    Every fold's model is still trained on all the other subjects; only the number of
    held-out subjects that are perturbed (and so the cost) shrinks. Subjects are drawn
    per dataset in proportion to its subjects (at least one each), seeded.

    Parameters
    ----------
    groups : ndarray of shape (n_samples,)
        ``dataset/subject`` keys (:attr:`CropSet.groups`).
    n_subjects : int or None
        None or at least the number of subjects: every fold.
    """
    from merlib.evaluation.splits import loso_folds

    folds = loso_folds(np.asarray(groups))
    if n_subjects is None or n_subjects >= len(folds):
        return [f.index for f in folds]
    if not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        raise ConfigError(f"n_subjects: expected a positive integer or None, got {n_subjects!r}")
    by_set: dict[str, list[int]] = {}
    for f in folds:
        by_set.setdefault(f.test_subject.split("/", 1)[0], []).append(f.index)
    rng = np.random.default_rng(seed)
    total = len(folds)
    chosen: list[int] = []
    for name in sorted(by_set):
        members = by_set[name]
        k = max(1, round(n_subjects * len(members) / total))
        chosen += [int(i) for i in rng.choice(members, size=min(k, len(members)), replace=False)]
    return sorted(chosen)


def _fold_seed(cfg: FinetuneConfig, fold: int) -> int:
    from merlib.evaluation.fold import outer_seed

    # The LOSO task's own seed, so the clean condition reproduces its predictions.
    return outer_seed(cfg.seed, fold)


def run_fold(crops: Any, fold: Any, cfg: FinetuneConfig, data_root: str | os.PathLike,
             conds: Sequence[tuple[str, float]], *, transfer_state: Any = None,
             align_cfg: Any = None, input: str = "apex", gain: float | None = None) -> pd.DataFrame:
    """Train one fold's model on clean crops; classify its test subject under each condition.

    Parameters
    ----------
    crops : CropSet
        The composite crops; ``meta`` must hold ``frame_path`` (relative to ``data_root``).
        For ``input="difference"``, the difference images of
        :func:`~merlib.training.difference.difference_crops`.
    fold : Fold
        From :func:`merlib.evaluation.splits.loso_folds`.
    cfg : FinetuneConfig
    data_root : path
    conds : sequence of (name, strength)
    transfer_state : dict of tensors, optional
    align_cfg : AlignConfig, optional
        The crops' pre-processing settings (default: the paper's).
    input : {"apex", "difference"}
        What the crops are (:data:`INPUTS`).
    gain : float, optional
        The difference images' gain (default: the module's).

    Returns
    -------
    DataFrame
        One row per (test sample, condition): ``fold``, ``dataset``, ``subject``,
        ``sample``, ``label``, ``perturbation``, ``strength``, ``status`` (``ok`` or
        ``failed``), ``reason``, ``pred`` (a class name; the training majority class
        where failed).
    """
    from dataclasses import replace

    from merlib.evaluation.splits import check_disjoint
    from merlib.faces.clips import composite_rows, key_frame_paths
    from merlib.faces.config import AlignConfig
    from merlib.faces.pipeline import read_grey
    from merlib.models.backbone import input_normalisation
    from merlib.training.batches import CropDataset
    from merlib.training.engine import predict, resolve_device
    from merlib.training.finetune import finetune
    from merlib.training.svm import fit_svm, search_settings

    if input not in INPUTS:
        raise ConfigError(f"input: expected one of {INPUTS}, got {input!r}")
    if "frame_path" not in crops.meta.columns:
        raise DataLayoutError(f"{crops.source}: crops meta has no frame_path column; load the crops "
                              "with merlib.training.crops.prepare_crop_sets")
    check_disjoint(crops.groups, fold.train_idx, fold.test_idx)
    seed = _fold_seed(cfg, fold.index)
    train = crops.subset(fold.train_idx)
    model = finetune(train, cfg, transfer_state=transfer_state, seed=seed).model
    device = resolve_device(cfg.device)
    mean, std = input_normalisation(model)
    view = dict(image_size=cfg.image_size, mean=mean, std=std)
    f_train, _ = predict(model, CropDataset(train.X, train.y, **view), device, early_grid=cfg.svm_early_grid)
    svm, _ = fit_svm(f_train, train.y, train.groups, **search_settings(cfg), seed=seed)
    majority = int(np.bincount(train.y, minlength=len(LABELS)).argmax())

    rows, X, where = [], [], []
    test = crops.meta.iloc[fold.test_idx]
    if input == "difference":
        # The difference images' side is their alignment's crop size.
        align_cfg = replace(align_cfg or AlignConfig(), crop_size=int(crops.X.shape[-1]))
        pairs = [key_frame_paths(row, data_root) for row in composite_rows(test, data_root).to_dict("records")]
    for i, r in enumerate(test.itertuples(index=False)):
        if input == "difference":
            onset_path, apex_path = pairs[i]
            grey, onset = read_grey(apex_path), read_grey(onset_path)
        else:
            grey, onset = read_grey(Path(data_root) / str(r.frame_path)), None
        out, reasons = perturbed_crops(grey, conds, align_cfg, seed=seed + i, onset=onset, gain=gain)
        for (name, strength), crop, reason in zip(conds, out, reasons):
            rows.append({"fold": fold.index, "dataset": r.dataset, "subject": str(r.subject),
                         "sample": str(r.sample), "label": r.label, "perturbation": name,
                         "strength": float(strength), "status": "failed" if crop is None else "ok",
                         "reason": reason, "pred": LABELS[majority]})
            if crop is not None:
                X.append(crop)
                where.append(len(rows) - 1)
    if X:
        Xa = np.stack(X)
        feats, _ = predict(model, CropDataset(Xa, np.zeros(len(Xa), np.int64), **view), device,
                           early_grid=cfg.svm_early_grid)
        for j, c in zip(where, svm.predict(feats).astype(np.int64)):
            rows[j]["pred"] = LABELS[int(c)]
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def run_robustness(crops: Any, cfg: FinetuneConfig, data_root: str | os.PathLike,
                   grid: Mapping[str, Sequence[float]], out_dir: str | os.PathLike, *,
                   transfer_state: Any = None, folds: Sequence[int] | None = None,
                   input: str = "apex", gain: float | None = None,
                   n_workers: int | None = 1) -> pd.DataFrame:
    """:func:`run_fold` over the LOSO folds, each stored in ``out_dir`` as it completes
    and reused.

    Parameters
    ----------
    crops : CropSet
    cfg : FinetuneConfig
    data_root : path
    grid : mapping of str -> sequence of float
        Perturbation -> strengths (:data:`BOOK_GRID`).
    out_dir : path
        ``settings.json`` records the crops, settings and grid; a folder holding another
        study's files is refused.
    folds : sequence of int, optional
        Only these fold indices (default: all).
    input : {"apex", "difference"}
        What ``crops`` are (:func:`run_fold`).
    gain : float, optional
        The difference images' gain.
    n_workers : int or None, default=1
        Folds at a time on a local Dask cluster (:func:`merlib.evaluation.runner.task_runner`;
        None: every core, 1: serially here). The numbers do not depend on it.

    Returns
    -------
    DataFrame
        Every fold's rows (:func:`run_fold`).
    """
    from merlib.evaluation.fold import state_digest
    from merlib.evaluation.runner import task_runner
    from merlib.evaluation.splits import loso_folds

    if input not in INPUTS:
        raise ConfigError(f"input: expected one of {INPUTS}, got {input!r}")
    grid = check_grid(grid)
    conds = conditions(grid)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(crops, cfg, grid, state_digest(transfer_state), input, gain)
    record = out / "settings.json"
    if record.is_file():
        if json.loads(record.read_text()) != json.loads(json.dumps(settings)):
            raise ConfigError(f"out_dir: {out} holds a robustness study of other crops, settings or grid; "
                              "use another folder or delete it")
    else:
        record.write_text(json.dumps(settings, indent=1))
    all_folds = loso_folds(crops.groups)
    chosen = [f for f in all_folds if folds is None or f.index in set(folds)]
    tables: dict[int, pd.DataFrame] = {}
    todo = []
    for f in chosen:
        path = out / f"fold_{f.index}.csv"
        if path.is_file():
            tables[f.index] = pd.read_csv(path, dtype={"subject": str, "sample": str, "reason": str},
                                          keep_default_na=False)
        else:
            todo.append(f)

    def store(key: str, table: pd.DataFrame) -> None:
        path = out / f"fold_{key}.csv"
        tmp = path.with_suffix(".tmp")
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)  # a fold file is complete or absent
        tables[int(key)] = table

    if todo:
        with task_runner(n_workers=min(n_workers, len(todo)) if n_workers else None) as runner:
            shared = runner.share(crops)
            runner.run(_fold_task, {str(f.index): (shared, f, cfg, str(data_root), conds, transfer_state,
                                                   input, gain) for f in todo},
                       desc="robustness folds", on_result=store)
    result = pd.concat([tables[f.index] for f in chosen], ignore_index=True)
    result["strength"] = result["strength"].astype(float)
    return result


def _settings(crops: Any, cfg: FinetuneConfig, grid: Mapping[str, Sequence[float]], transfer: str,
              input: str, gain: float | None) -> dict[str, Any]:
    settings = {"crops": crops.fingerprint(), "config": cfg.as_dict(), "transfer": transfer,
                "grid": {k: list(v) for k, v in check_grid(grid).items()}}
    if input != "apex":  # an apex study's record stays as earlier versions wrote it
        settings.update(input=input, gain=gain)
    return settings


def study_folder(base: str | os.PathLike, crops: Any, cfg: FinetuneConfig, grid: Mapping[str, Sequence[float]],
                 *, input: str = "apex", gain: float | None = None, transfer_state: Any = None) -> Path:
    """``base / "<input>_<size>px_<digest>"``: one folder per study settings, so a study
    with other crops, settings or grid gets its own folder instead of being refused by
    :func:`run_robustness`, and the same study finds its finished folds again."""
    from merlib.evaluation.fold import state_digest
    from merlib.paths import settings_digest

    settings = _settings(crops, cfg, grid, state_digest(transfer_state), input, gain)
    return Path(base) / f"{input}_{cfg.image_size}px_{settings_digest(settings)}"


def _fold_task(crops: Any, fold: Any, cfg: FinetuneConfig, data_root: str, conds: Sequence[tuple[str, float]],
               transfer_state: Any, input: str, gain: float | None) -> pd.DataFrame:
    """:func:`run_fold` with positional arguments (a task of the runner)."""
    return run_fold(crops, fold, cfg, data_root, conds, transfer_state=transfer_state, input=input, gain=gain)


def summarise(rows: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Composite UF1 / UAR with subject-bootstrap intervals per condition, and the failures.

    Parameters
    ----------
    rows : DataFrame
        :func:`run_robustness` output: every condition holds the same samples.

    Returns
    -------
    DataFrame
        One row per (perturbation, strength), ``clean`` first: ``n``, ``failed``
        (pre-processing lost the face), ``wrong`` (a crop was made and misclassified),
        ``uf1``, ``uf1_lo``, ``uf1_hi``, ``uar``, ``uar_lo``, ``uar_hi``, and ``d_uf1``,
        ``d_uf1_lo``, ``d_uf1_hi``: UF1 minus the clean UF1 with a *paired* interval
        (the same resampled subjects for both), so a loss is real when ``d_uf1_hi < 0``.

    Raises
    ------
    ConfigError
        A missing column, no clean condition, or a condition whose samples are not the
        clean condition's.
    """
    from merlib.evaluation.bootstrap import bootstrap_scores, paired_difference

    need = {"dataset", "subject", "sample", "label", "perturbation", "strength", "status", "pred"}
    if missing := sorted(need - set(rows.columns)):
        raise ConfigError(f"rows: missing columns {missing}")
    key = ["dataset", "subject", "sample"]
    clean = rows[rows["perturbation"] == "clean"].sort_values(key, kind="stable")
    if not len(clean):
        raise ConfigError("rows: no clean condition to compare with")
    clean_keys = clean[key].astype(str).to_numpy()
    out = []
    for (name, strength), sub in rows.groupby(["perturbation", "strength"], sort=False):
        sub = sub.sort_values(key, kind="stable")
        if sub[key].astype(str).to_numpy().shape != clean_keys.shape or \
                (sub[key].astype(str).to_numpy() != clean_keys).any():
            raise ConfigError(f"rows: condition {name} {strength:g} does not hold the clean condition's samples")
        groups = (sub["dataset"].astype(str) + "/" + sub["subject"].astype(str)).to_numpy()
        y = sub["label"].to_numpy()
        sc = bootstrap_scores(y, sub["pred"].to_numpy(), groups, n_resamples=n_resamples, seed=seed)
        d = paired_difference(y, sub["pred"].to_numpy(), clean["pred"].to_numpy(), groups,
                              n_resamples=n_resamples, seed=seed)["uf1"]
        ok = sub["status"] == "ok"
        out.append({"perturbation": name, "strength": float(strength), "n": len(sub),
                    "failed": int((~ok).sum()), "wrong": int((ok & (sub["pred"] != sub["label"])).sum()),
                    **{f"{m}{suf}": v for m in ("uf1", "uar") for suf, v in zip(("", "_lo", "_hi"), sc[m])},
                    "d_uf1": d[0], "d_uf1_lo": d[1], "d_uf1_hi": d[2]})
    return pd.DataFrame(out)


def absorbed(summary: pd.DataFrame) -> list[str]:
    """Perturbations that, at every strength of the grid, lose no face and no UF1 beyond
    noise (no paired interval of the change lies wholly below 0)."""
    s = summary[summary["perturbation"] != "clean"]
    bad = s[(s["failed"] > 0) | (s["d_uf1_hi"] < 0)]["perturbation"]
    return [p for p in pd.unique(s["perturbation"]) if p not in set(bad)]


def worst(summary: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` perturbations whose strongest setting loses the most UF1 (clean excluded)."""
    s = summary[summary["perturbation"] != "clean"]
    per = s.loc[s.groupby("perturbation")["uf1"].idxmin()].sort_values("d_uf1")
    return per.head(k).reset_index(drop=True)


@dataclass(frozen=True)
class RobustnessSetup:
    """What chapter 08 studies: the root, its crops, the settings and the perturbed folds.

    Attributes
    ----------
    root : Path
        The studied SynthME root (the data root itself at its own amplitude, else one
        generated under ``work_dir() / "amplitude"``).
    grid : dict of str -> tuple of float
        Perturbation -> strengths (:func:`check_grid`).
    n_subjects : int or None
        Test subjects perturbed (None: all; ``grid="full"`` sets it to None).
    cfg : FinetuneConfig
        The profile's micro settings with the chapter's seed, image size and epochs.
    provenance : Provenance
        Of ``root``, with the chapter's parameters.
    crops : CropSet
        The composite crops (n_samples, S, S): apex crops, or the difference images of
        side ``image_size`` for ``input="difference"``.
    left_out : DataFrame
        dataset, subject, sample, reason: samples without an aligned onset/apex pair
        (always empty for ``input="apex"``).
    work : Path
        The root's results folder for the profile (:func:`merlib.paths.results_dir`).
    folds : list of int
        LOSO fold indices whose test subjects are perturbed (:func:`pick_folds`).
    subjects : list of str
        Their ``dataset/subject`` keys, in the order of ``folds``.
    amplitude : float
    input : {"apex", "difference"}
    image_size : int
    """

    root: Path
    grid: dict[str, tuple[float, ...]]
    n_subjects: int | None
    cfg: FinetuneConfig
    provenance: Provenance
    crops: CropSet
    left_out: pd.DataFrame
    work: Path
    folds: list[int]
    subjects: list[str]
    amplitude: float
    input: str
    image_size: int

    def describe(self) -> str:
        """Two lines: the root, samples and perturbed folds; then the grid."""
        grid = {k: list(v) for k, v in self.grid.items()}
        return (f"root {self.root} (amplitude x{self.amplitude:g}); {len(self.crops)} composite samples "
                f"({self.input} input); perturbing the test subjects of {len(self.folds)} of "
                f"{len(set(self.crops.groups))} folds: {self.subjects}\n{grid}")


def prepare_robustness(data_root: str | os.PathLike | None = None, *, profile: str = "smoke",
                       device: str = "cpu", seed: int = 0, amplitude: float = 1.0, image_size: int = 64,
                       input: str = "difference", grid: str = "given",
                       perturbations: Mapping[str, Sequence[float]] | None = None,
                       n_subjects: int | None = None, micro_epochs: int | None = None,
                       micro_subjects: int | None = None,
                       macro_subjects: int | None = None) -> RobustnessSetup:
    """Chapter 08's set-up: the root at ``amplitude``, its crops, the config and the folds.

    The arguments are the chapter's parameters, under the same names.

    Parameters
    ----------
    data_root : path, optional
        A SynthME root (None: :func:`merlib.paths.resolve_data_root`); its ``SYNTHME.json``
        gives the seed and subject counts of the studied root.
    profile : {"smoke", "paper"}
    device : str
    seed : int
        Fine-tuning seed, crop selection and fold draw.
    amplitude : float
        Amplitude scale of the studied root: the data root when it records this
        amplitude, else a root generated once under ``work_dir() / "amplitude"``
        (:func:`merlib.studies.amplitude.synth_root`).
    image_size : int
        Model input side, pixels (and the difference images' side).
    input : {"apex", "difference"}
        The network input (:data:`INPUTS`).
    grid : {"given", "full"}
        ``"given"``: ``perturbations``; ``"full"``: :data:`FULL_GRID` on every test subject.
    perturbations : mapping of str -> sequence of float, optional
        Perturbation -> strengths (None: :data:`BOOK_GRID`); ignored for ``grid="full"``.
    n_subjects : int, optional
        Test subjects perturbed (None: all; :func:`pick_folds`).
    micro_epochs : int, optional
        Fine-tuning epochs (None or 0: the profile's).
    micro_subjects, macro_subjects : int, optional
        Subjects of the studied root (None: the data root's).

    Returns
    -------
    RobustnessSetup

    Raises
    ------
    ConfigError
        ``grid`` or ``input`` unknown, a bad perturbation grid, or ``data_root`` not a
        SynthME root (this chapter reads the amplitude from its truth).
    """
    from merlib.config import get_profile
    from merlib.evaluation.splits import loso_folds
    from merlib.paths import resolve_data_root, results_dir, work_dir
    from merlib.provenance import Provenance
    from merlib.studies.amplitude import synth_root
    from merlib.synth import generator_settings
    from merlib.training.crops import prepare_crop_sets
    from merlib.training.difference import difference_crops

    if grid == "full":
        perturbations, n_subjects = FULL_GRID, None
    elif grid != "given":
        raise ConfigError(f"grid: expected 'given' or 'full', got {grid!r}")
    chosen_grid = check_grid(perturbations if perturbations is not None else BOOK_GRID)
    base = resolve_data_root(data_root)
    if not (base / "SYNTHME.json").is_file():
        raise ConfigError(f"data_root: {base} is not a SynthME root; this chapter picks the amplitude from its truth")
    record = json.loads((base / "SYNTHME.json").read_text())
    root = synth_root(work_dir() / "amplitude", float(amplitude), reuse=[base], seed=record["seed"],
                      micro_subjects=micro_subjects or record["micro_subjects"],
                      macro_subjects=macro_subjects or record["macro_subjects"],
                      generator=generator_settings(record))
    prof = get_profile(profile, device)
    cfg = prof.micro.replace(seed=seed, image_size=image_size, **({"epochs": micro_epochs} if micro_epochs else {}))
    # After the root and the profile: the order in which chapter 08 has always checked.
    if input not in INPUTS:
        raise ConfigError(f"input: expected one of {INPUTS}, got {input!r}")
    prov = Provenance.for_data(root, profile=profile, device=device, seed=seed, amplitude=amplitude,
                               image_size=image_size, input=input, grid=grid, n_subjects=n_subjects,
                               micro_epochs=micro_epochs)
    # The book's own root keeps both sets in its pre-processing manifest (other chapters read the macro set).
    sets = ["composite", "macro"] if root == base else ["composite"]
    crops = prepare_crop_sets(root, sets=sets, seed=seed, allow_missing=True, provenance=prov)["composite"]
    work = results_dir(root, profile, fingerprint=prov.data_fingerprint)
    left_out = pd.DataFrame(columns=["dataset", "subject", "sample", "reason"])
    if input == "difference":
        crops, left_out = difference_crops(crops, root, size=image_size, cache_dir=work / "clips")
    folds = pick_folds(crops.groups, n_subjects, seed=seed)
    subjects = [loso_folds(crops.groups)[i].test_subject for i in folds]
    return RobustnessSetup(root=root, grid=chosen_grid, n_subjects=n_subjects, cfg=cfg, provenance=prov,
                           crops=crops, left_out=left_out, work=work, folds=folds, subjects=subjects,
                           amplitude=amplitude, input=input, image_size=image_size)


def summary_lines(summary: pd.DataFrame, subjects: Sequence[str]) -> list[str]:
    """The chapter's verdict, one Markdown paragraph per line.

    The largest UF1 losses (:func:`worst`), the clean UF1 and what is absorbed
    (:func:`absorbed`), the losses whose paired interval excludes 0, the detection
    failures (only when there are any) and, with fewer than 6 test subjects, a warning
    that the intervals are wide or degenerate.

    Parameters
    ----------
    summary : DataFrame
        :func:`summarise` output (a ``clean`` row and one row per condition).
    subjects : sequence of str
        The perturbed test subjects (:attr:`RobustnessSetup.subjects`).

    Returns
    -------
    list of str
        3 to 5 lines; join them with blank lines for Markdown.
    """
    from merlib.evaluation.bootstrap import format_interval
    from merlib.faces.perturb import UNITS

    clean = summary[summary["perturbation"] == "clean"].iloc[0]
    lines = []
    lines.append("Largest UF1 losses (at each perturbation's worst strength): " + "; ".join(
        f"**{r.perturbation}** at {r.strength:g} ({UNITS[r.perturbation]}): "
        f"UF1 {format_interval(r.uf1, r.uf1_lo, r.uf1_hi)}, {r.d_uf1:+.3f} vs clean, {r.failed} of {r.n} faces lost"
        for r in worst(summary, 3).itertuples()) + ".")
    kept = absorbed(summary)
    lines.append(f"Clean UF1 {format_interval(clean['uf1'], clean['uf1_lo'], clean['uf1_hi'])}. Absorbed at every "
                 "strength tried (no face lost, no real UF1 loss): " + (", ".join(kept) if kept else "none") + ".")
    real = summary[(summary["perturbation"] != "clean") & (summary["d_uf1_hi"] < 0)]
    lines.append("Losses whose paired interval excludes 0: " + ("; ".join(
        f"{r.perturbation} {r.strength:g}: {format_interval(r.d_uf1, r.d_uf1_lo, r.d_uf1_hi, signed=True)}"
        for r in real.itertuples()) if len(real) else "none") + ".")
    failing = summary[(summary["perturbation"] != "clean") & (summary["failed"] > 0)]
    if len(failing):
        lines.append("Face-detection failures caused by the perturbation: " + "; ".join(
            f"{r.perturbation} {r.strength:g}: {r.failed}" for r in failing.itertuples()) + ".")
    if len(subjects) < 6:
        lines.append("**Few test subjects**: the intervals are wide or degenerate; the book run perturbs more.")
    return lines
