"""Named LOSO runs that several book chapters share, each computed once per data and settings.

The results chapters (02-06) compare variants of the method: the full method, each
ablation of Table 2, the comparison backbones, the leaky selection of chapter 05. A
:class:`Study` names one such variant as a *difference* from the profile's full method;
:func:`run_study` turns it into concrete settings, runs it through
:func:`~merlib.evaluation.protocol.evaluate_loso` into a folder whose name holds the
settings' digest (under :func:`merlib.paths.results_dir`, i.e. per data fingerprint), and
on the next call -- from the same chapter or another -- reads the finished run back from
that folder instead of training again (``run.json`` and ``predictions.csv`` present and
recording the same settings, crops and transferred weights).

================  ===========================================================  ==========
study             what differs from the full method                             column
================  ===========================================================  ==========
``full``          nothing: transfer, SVM, L2, grid search                       pred_svm
``no_svm``        the softmax head's predictions of the *same* run (free)       pred_softmax
``no_transfer``   random initialisation instead of the macro-trained blocks     pred_svm
``no_l2``         ``l2=0``                                                      pred_svm
``no_grid``       the profile's fixed batch size, lr and epochs                 pred_svm
``sampler``       per-batch balanced sampler instead of shift/flip balancing    pred_svm
``leaky``         LEAKY: grid point chosen on the pooled test folds             pred_svm
``<arch>``...     a comparison backbone (MobileNetV2, ResNet18, DeiT-tiny),      pred_svm /
                  with or without transfer, SVM or softmax                       pred_softmax
================  ===========================================================  ==========

:meth:`Study.fixed` gives a study's fixed-settings version (no grid search): the book's
CPU budget runs the ablations that way and compares each with ``no_grid``, the full
method at the same fixed settings, so each row still differs in one thing only.

Chapter 04's Table 2 is :func:`table2_runs` (each row's study, as :func:`table2_study`
picks it, and the references the rows need), :func:`reference_of` (the run each row is
compared with) and :func:`table2_pairs` (those comparisons, grouped by reference).

Figures 6-8 need *validation* accuracy per epoch, which a LOSO fold does not have (its
held-out data is the test subject). :func:`inner_split_curves` trains once on an inner
split: validation = held-out *training* subjects, never a test subject of any LOSO run;
:func:`figure_settings` and :func:`figure_curves` give the three figures' settings and curves.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import ParameterGrid

from merlib.config import FinetuneConfig, Profile, SearchConfig, TrainConfig
from merlib.errors import ConfigError
from merlib.paths import settings_digest

#: Table 2's comparison networks (merlib backbone names).
COMPARISON_ARCHS: tuple[str, ...] = ("mobilenetv2_100", "resnet18", "deit_tiny")

#: Readable backbone names for tables.
ARCH_LABELS: dict[str, str] = {
    "mobilevit_s": "MobileViT-S", "mobilevit_xs": "MobileViT-XS", "mobilevit_xxs": "MobileViT-XXS",
    "mobilenetv2_100": "MobileNetV2", "mobilenetv3_large_100": "MobileNetV3-L", "resnet18": "ResNet18",
    "deit_tiny": "DeiT-tiny", "deit_small": "DeiT-small", "vit_base": "ViT-B",
}


@dataclass(frozen=True)
class Study:
    """One variant of the method, as its differences from the profile's full method.

    Parameters
    ----------
    name : str
        Key, e.g. ``"no_l2"``.
    label : str
        Row label in tables.
    arch : str or None
        Backbone; None: the profile's.
    transfer : bool
        Start from the macro-trained weights of the same backbone (else random init).
    search : bool
        Grid search (inner validation) for batch size, lr, epochs; else the profile's
        fixed values.
    classifier : {"svm", "softmax"}
        Which prediction column of the run is this study's.
    changes : tuple of (str, value)
        :class:`~merlib.config.FinetuneConfig` fields changed, e.g. ``(("l2", 0.0),)``.
    selection : {"inner", "leaky_test"}
        ``leaky_test``: the LABELLED LEAKY grid choice on the pooled test folds.
    """

    name: str
    label: str
    arch: str | None = None
    transfer: bool = True
    search: bool = True
    classifier: str = "svm"
    changes: tuple[tuple[str, Any], ...] = ()
    selection: str = "inner"

    def __post_init__(self) -> None:
        if self.classifier not in ("svm", "softmax"):
            raise ConfigError(f"classifier: expected 'svm' or 'softmax', got {self.classifier!r}")
        if self.selection not in ("inner", "leaky_test"):
            raise ConfigError(f"selection: expected 'inner' or 'leaky_test', got {self.selection!r}")
        if self.selection == "leaky_test" and not self.search:
            raise ConfigError(f"{self.name}: a leaky selection needs the grid search (search=True)")
        fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
        bad = [k for k, _ in self.changes if k not in fields or k in ("arch", "seed", "device")]
        if bad:
            raise ConfigError(f"changes: {bad} are not FinetuneConfig settings a study may change")

    @property
    def column(self) -> str:
        """The prediction column of the run that is this study's (``pred_svm``...)."""
        return f"pred_{self.classifier}"

    def fixed(self) -> Study:
        """This study at the profile's fixed settings (no grid search): ``<name>@fixed``."""
        if not self.search:
            return self
        if self.selection == "leaky_test":
            raise ConfigError(f"{self.name}: a leaky selection is a grid search; it has no fixed version")
        return dataclasses.replace(self, name=f"{self.name}@fixed", search=False,
                                   label=f"{self.label} (fixed settings)")

    def shortened(self, changes: dict[str, Any]) -> Study:
        """This study at fixed, cheaper settings, e.g. ``{"epochs": 2, "batch_size": 16}``.

        Named ``<name>@short`` (the fixed version first); the changes go into the run's
        settings, so its folder differs from the full-length run's. Empty ``changes``:
        just :meth:`fixed`.
        """
        base = self.fixed()
        if not changes:
            return base
        shown = ", ".join(f"{k} {v}" for k, v in sorted(changes.items()))
        merged = tuple(sorted({**dict(base.changes), **changes}.items()))
        return dataclasses.replace(base, name=f"{self.name}@short", changes=merged,
                                   label=base.label.replace("(fixed settings)", f"(short: {shown})"))

    def with_classifier(self, classifier: str) -> Study:
        """The same run, read through the other head (``<name>+softmax``): free."""
        if classifier == self.classifier:
            return self
        head = {"svm": "SVM", "softmax": "softmax"}
        # Comparison labels end with their head ("ResNet18, transfer, SVM (fixed settings)").
        ending = re.compile(rf", {head[self.classifier]}(?=$| \()")
        label = (ending.sub(f", {head[classifier]}", self.label, count=1) if ending.search(self.label)
                 else f"{self.label}, {head[classifier]} head")
        return dataclasses.replace(self, name=f"{self.name}+{classifier}", classifier=classifier, label=label)

    def run_name(self, profile: Profile) -> str:
        """Readable part of the run's folder name: backbone, weights, settings, changes."""
        arch = self.arch or profile.micro.arch
        parts = [arch, "transfer" if self.transfer else "scratch",
                 ("leaky" if self.selection == "leaky_test" else "grid") if self.search else "fixed"]
        parts += [f"{k}{v}" for k, v in self.changes]
        return "-".join(str(p) for p in parts).replace("/", "_")


def _comparison(arch: str, transfer: bool, classifier: str) -> Study:
    name = f"{arch}{'' if transfer else '_no_transfer'}{'' if classifier == 'svm' else '+softmax'}"
    label = (f"{ARCH_LABELS[arch]}, {'transfer' if transfer else 'no transfer'}, "
             f"{'SVM' if classifier == 'svm' else 'softmax'}")
    return Study(name, label, arch=arch, transfer=transfer, classifier=classifier)


#: Every named study (Table 2's rows, the balancing alternative, the leaky run).
STUDIES: dict[str, Study] = {s.name: s for s in [
    Study("full", "MobileViT: transfer, SVM, L2, grid search (the method)"),
    Study("no_transfer", "no transfer (random initialisation)", transfer=False),
    Study("no_svm", "no SVM (softmax head of the same run)", classifier="softmax"),
    Study("no_l2", "no L2 regularisation (l2 = 0)", changes=(("l2", 0.0),)),
    Study("no_grid", "no grid search (fixed settings)", search=False),
    Study("sampler", "balanced batch sampler instead of shift/flip balancing",
          changes=(("balance", "sampler"),)),
    Study("leaky", "LEAKY: grid point chosen on the test folds", selection="leaky_test"),
    *[_comparison(a, t, c) for a in COMPARISON_ARCHS for t in (True, False) for c in ("svm", "softmax")],
]}


#: Sub-folder of a chapter's results folder holding the fits its runs share.
FITS_DIR = "fits"


def get_study(name: str) -> Study:
    """:data:`STUDIES` entry ``name``; ``<name>@fixed`` gives its fixed-settings version."""
    base, fixed = (name[:-len("@fixed")], True) if name.endswith("@fixed") else (name, False)
    if base not in STUDIES:
        raise ConfigError(f"study: expected one of {sorted(STUDIES)} (optionally with '@fixed'), got {name!r}")
    return STUDIES[base].fixed() if fixed else STUDIES[base]


def settings(study: Study, profile: Profile) -> tuple[FinetuneConfig, SearchConfig | None, TrainConfig | None]:
    """The concrete (fine-tuning config, search config or None, macro config or None).

    The profile's ``micro``, ``search`` and ``macro`` configs (with whatever the caller
    already replaced in them: seed, epochs) changed as ``study`` says.
    """
    arch = study.arch or profile.micro.arch
    cfg = profile.micro.replace(arch=arch, **dict(study.changes))
    search = profile.search.replace(selection=study.selection) if study.search else None
    macro = profile.macro.replace(arch=arch) if study.transfer else None
    return cfg, search, macro


def chapter_profile(name: str = "smoke", device: str = "cpu", *, seed: int = 0, macro_epochs: int | None = None,
                    micro_epochs: int | None = None, grid_epochs: list[int] | tuple[int, ...] | None = None
                    ) -> Profile:
    """The profile a chapter's parameters cell describes, the same way in every chapter.

    ``None`` keeps the profile's value, so chapters given the same parameters compute the
    same run folders (:func:`run_dir`) and share them.

    Examples
    --------
    >>> p = chapter_profile("smoke", macro_epochs=1, micro_epochs=2, grid_epochs=[1])
    >>> p.macro.epochs, p.search.epochs, p.micro.epochs
    (1, (1,), 2)
    """
    from merlib.config import get_profile

    prof = get_profile(name, device)
    macro = prof.macro.replace(seed=seed, **({"epochs": int(macro_epochs)} if macro_epochs else {}))
    micro = prof.micro.replace(seed=seed, **({"epochs": int(micro_epochs)} if micro_epochs else {}))
    search = prof.search.replace(**({"epochs": tuple(int(e) for e in grid_epochs)} if grid_epochs else {}))
    return dataclasses.replace(prof, macro=macro, micro=micro, search=search)


def transfer_dir(work: str | os.PathLike, macro: TrainConfig, crops_fingerprint: str) -> Path:
    """``work/transfer/<arch>-<size>px-<digest of the settings and the macro crops>``.

    ``epochs`` is left out of the digest: :func:`merlib.training.transfer.train_macro`
    resumes a shorter run of the same settings to more epochs. ``device`` and
    ``num_threads`` too (they do not change what is learnt). The crops' fingerprint is
    in: the same data root gives another macro set when its class mapping changes.
    """
    key = {k: v for k, v in macro.as_dict().items() if k not in ("epochs", "device", "num_threads")}
    key["crops"] = crops_fingerprint
    return Path(work) / "transfer" / f"{macro.arch}-{macro.image_size}px-{settings_digest(key)}"


def macro_transfer(macro_crops: Any, macro: TrainConfig, work: str | os.PathLike) -> Any:
    """The macro-trained weights for ``macro`` (resumed or read back from its folder).

    Returns
    -------
    merlib.training.transfer.TransferResult
    """
    from merlib.training.transfer import train_macro

    return train_macro(macro_crops, macro, transfer_dir(work, macro, macro_crops.fingerprint()))


def run_dir(study: Study, profile: Profile, work: str | os.PathLike, crops_fingerprint: str,
            macro_fingerprint: str | None = None) -> Path:
    """``work/runs/<run name>-<digest>``; the digest covers every setting and the crops.

    ``macro_fingerprint`` (the macro crops' fingerprint) identifies the data the
    transferred weights were trained on; it is ignored for a study without transfer. The
    classifier is not in the digest: the SVM and softmax rows of a study are one run.
    """
    cfg, search, macro = settings(study, profile)
    key = {"config": cfg.as_dict(), "search": search.as_dict() if search else None,
           "macro": macro.as_dict() if macro else None, "crops": crops_fingerprint,
           "macro_crops": macro_fingerprint if macro else None}
    key["config"] = {k: v for k, v in key["config"].items() if k not in ("device", "num_threads")}
    if key["macro"]:
        key["macro"] = {k: v for k, v in key["macro"].items() if k not in ("device", "num_threads")}
    return Path(work) / "runs" / f"{study.run_name(profile)}-{settings_digest(key)}"


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _matches(record: dict[str, Any], cfg: FinetuneConfig, search: SearchConfig | None,
             transfer: Any, crops: Any, out_dir: Path) -> bool:
    ignore = ("device", "num_threads")
    saved_cfg = {k: v for k, v in (record.get("config") or {}).items() if k not in ignore}
    now_cfg = {k: v for k, v in _jsonable(cfg.as_dict()).items() if k not in ignore}
    if saved_cfg != now_cfg or record.get("search") != (_jsonable(search.as_dict()) if search else None):
        return False
    if record.get("n_samples") != len(crops) or \
            (record.get("provenance") or {}).get("data_fingerprint") != crops.fingerprint():
        return False
    saved_t = record.get("transfer")
    if transfer is None:
        if saved_t is not None:
            return False
    elif not (saved_t and saved_t.get("out_dir") == str(transfer.out_dir)
              and saved_t.get("best_epoch") == transfer.best_epoch):
        return False
    return _same_tasks(out_dir, cfg, transfer)


def _same_tasks(out_dir: Path, cfg: FinetuneConfig, transfer: Any) -> bool:
    # The run's task key names the code that computed it and the transferred tensors
    # themselves: a run of older code, or from weights retrained in the same folder, is
    # not read back (evaluate_loso then recomputes what changed).
    from merlib.evaluation.fold import resolve_transfer, state_digest
    from merlib.evaluation.runner import TaskStore
    from merlib.evaluation.search import TASKS_DIR, compute_code_digest

    key_file = out_dir / TASKS_DIR / TaskStore.RUN_KEY_FILE
    if not key_file.is_file():
        return False
    key = json.loads(key_file.read_text())
    if key.get("code") != compute_code_digest():
        return False
    return key.get("transfer") == state_digest(resolve_transfer(transfer, cfg))


def read_run(out_dir: str | os.PathLike) -> Any:
    """A finished :func:`~merlib.evaluation.protocol.evaluate_loso` run, from its files.

    Parameters
    ----------
    out_dir : path
        Holding ``run.json``, ``predictions.csv``, ``metrics.csv``, ``folds.csv``,
        ``curves.csv`` (and ``search_*.csv`` after a search, ``excluded.csv`` when known).

    Returns
    -------
    merlib.evaluation.protocol.LosoResult
        As the run returned it; ``tasks`` counts every task as reused.

    Raises
    ------
    DataLayoutError
        A file is missing (names it).
    """
    from merlib.errors import DataLayoutError
    from merlib.evaluation.protocol import LosoResult
    from merlib.evaluation.search import SearchResult

    out = Path(out_dir)
    need = ["run.json", "predictions.csv", "metrics.csv", "folds.csv", "curves.csv"]
    missing = [n for n in need if not (out / n).is_file()]
    if missing:
        raise DataLayoutError(f"{out}: missing {missing}; not a finished LOSO run (rerun it)")
    record = json.loads((out / "run.json").read_text())
    text = {c: str for c in ("dataset", "subject", "sample", "label", "pred", "pred_svm", "pred_softmax",
                             "flags", "test_subject")}
    read = lambda name: pd.read_csv(out / name, dtype=text, keep_default_na=False,  # noqa: E731
                                    na_values={"svm_inner_uf1": [""]})
    predictions, metrics, folds, curves = (read(n) for n in need[1:])
    search = None
    if record.get("search") and (out / "search_scores.csv").is_file():
        scfg = SearchConfig.from_dict(record["search"])
        scores = read("search_scores.csv").drop(columns="selection", errors="ignore")
        chosen = read("search_chosen.csv").drop(columns="selection", errors="ignore")
        search = SearchResult(scores, chosen, list(ParameterGrid(scfg.param_grid())), scfg.selection,
                              record["selection"])
    excluded = read("excluded.csv") if (out / "excluded.csv").is_file() else None
    total = int((record.get("tasks") or {}).get("total", len(folds)))
    return LosoResult(predictions, metrics, folds, curves, record["selection"], search,
                      float(record.get("seconds", 0.0)), out, excluded,
                      {"total": total, "reused": total, "computed": 0})


@dataclass(frozen=True)
class StudyRun:
    """A study's LOSO run.

    Attributes
    ----------
    study : Study
    result : LosoResult
    reused : bool
        True when read back from disk (no training in this call).
    """

    study: Study
    result: Any
    reused: bool

    def with_classifier(self, classifier: str) -> StudyRun:
        """The same run read through the other head (e.g. ``full`` -> ``full+softmax``)."""
        return StudyRun(self.study.with_classifier(classifier), self.result, self.reused)

    @property
    def predictions(self) -> pd.DataFrame:
        """The run's predictions with this study's column as ``pred_<study name>``."""
        p = self.result.predictions
        return p[["dataset", "subject", "sample", "label", "fold"]].assign(
            **{f"pred_{self.study.name}": p[self.study.column].to_numpy()})


def run_study(study: Study | str, crops: dict[str, Any] | Any, profile: Profile, work: str | os.PathLike, *,
              n_workers: int | None = 1, scheduler: str | None = None, progress: bool = False) -> StudyRun:
    """Run ``study`` on the composite (or read it back when another call already did).

    Parameters
    ----------
    study : Study or str
        A :data:`STUDIES` name (``"no_l2@fixed"`` for the fixed-settings version).
    crops : dict of CropSet, or CropSet
        ``{"composite": ..., "macro": ...}`` as :func:`~merlib.training.crops.prepare_crop_sets`
        returns (``macro`` is needed when the study transfers), or the composite alone for
        a study without transfer.
    profile : Profile
        The full method's settings (seed, epochs, device already set by the caller).
    work : path
        The chapter's results folder (:func:`merlib.paths.results_dir`); runs go to
        ``work/runs``, macro transfers to ``work/transfer``.
    n_workers, scheduler, progress
        Passed to :func:`~merlib.evaluation.protocol.evaluate_loso`.

    Returns
    -------
    StudyRun
    """
    from merlib.evaluation.protocol import evaluate_loso

    study = get_study(study) if isinstance(study, str) else study
    sets = crops if isinstance(crops, dict) else {"composite": crops}
    composite = sets["composite"]
    cfg, search, macro = settings(study, profile)
    transfer = None
    if macro is not None:
        if "macro" not in sets:
            raise ConfigError(f"crops: study {study.name!r} transfers from the macro set; pass "
                              "prepare_crop_sets(...) output with a 'macro' entry")
        transfer = macro_transfer(sets["macro"], macro, work)
    out = run_dir(study, profile, work, composite.fingerprint(),
                  sets["macro"].fingerprint() if macro is not None else None)
    if (out / "run.json").is_file() and (out / "predictions.csv").is_file():
        record = json.loads((out / "run.json").read_text())
        if _matches(record, cfg, search, transfer, composite, out):
            return StudyRun(study, read_run(out), True)
    # One fit cache per results folder: runs of several chapters (fixed settings, the grid
    # search's final fits, the leaky search) share the fits they have in common.
    result = evaluate_loso(composite, cfg, out, transfer=transfer, search=search, n_workers=n_workers,
                           scheduler=scheduler, progress=progress, fit_cache=Path(work) / FITS_DIR)
    return StudyRun(study, result, False)


def combined_predictions(runs: list[StudyRun]) -> pd.DataFrame:
    """One predictions table with a ``pred_<study>`` column per run (same samples, folds).

    Raises
    ------
    ConfigError
        Two runs predict different samples or folds (names the study).
    """
    if not runs:
        raise ConfigError("runs: expected at least one StudyRun, got none")
    key = ["dataset", "subject", "sample", "label", "fold"]
    base = runs[0].predictions
    out = base[key].copy()
    for run in runs:
        p = run.predictions
        if len(p) != len(base) or not p[key].astype(str).equals(base[key].astype(str)):
            raise ConfigError(f"runs: study {run.study.name!r} predicted other samples or folds than "
                              f"{runs[0].study.name!r}; runs must share the crops")
        col = f"pred_{run.study.name}"
        out[col] = p[col].to_numpy()
    return out



# ------------------------------------------------------------ Table 2 (chapter 04)

def _names(value: Sequence[str], parameter: str) -> list[str]:
    # A bare string would be iterated letter by letter into unknown study names.
    if isinstance(value, str):
        raise ConfigError(f"{parameter}: expected a list of study names, got the string {value!r}")
    return list(value)


def _short_reference(short_settings: Mapping[str, Any] | None) -> str:
    # The reference of the shortened rows: the full method at the same short settings.
    return "no_grid@short" if short_settings else "no_grid"


def table2_study(name: str, comparison: Sequence[str] = (), *, fixed_ablations: bool = True,
                 short_settings: Mapping[str, Any] | None = None) -> Study:
    """A Table 2 row's study as chapter 04 runs it.

    With ``fixed_ablations`` the MobileViT ablations run at the profile's fixed settings
    (``<name>@fixed``; ``no_transfer@fixed`` and ``no_grid`` are chapter 02's runs, read
    back) and the comparison backbones at the shortened ones (``<name>@short``); ``no_svm``
    is the full run read through its softmax head, so it keeps the grid search.

    Parameters
    ----------
    name : str
        A :data:`STUDIES` name, e.g. ``"no_l2"`` or ``"resnet18_no_transfer"``.
    comparison : sequence of str
        The chapter's comparison backbones: a ``name`` among them is shortened, not just fixed.
    fixed_ablations : bool
        False: every study as :data:`STUDIES` defines it (grid search).
    short_settings : dict, optional
        Changes of the comparison rows, e.g. ``{"epochs": 2, "batch_size": 16}``; empty or
        None: the profile's fixed settings (``<name>@fixed``).

    Returns
    -------
    Study

    Examples
    --------
    >>> table2_study("no_l2").name, table2_study("no_svm").name
    ('no_l2@fixed', 'no_svm')
    >>> table2_study("resnet18", ["resnet18"], short_settings={"epochs": 2}).name
    'resnet18@short'
    """
    study = get_study(name)
    if not fixed_ablations or not study.search or name == "no_svm":
        return study
    return study.shortened(dict(short_settings or {})) if name in comparison else study.fixed()


def reference_of(study: Study, short_settings: Mapping[str, Any] | None = None) -> str:
    """The run a Table 2 row is compared with: the full method at the same settings.

    Parameters
    ----------
    study : Study
        The row's study, as :func:`table2_study` gives it (or its softmax head).
    short_settings : dict, optional
        The chapter's ``short_settings``: non-empty, the ``@short`` rows are compared with
        ``no_grid@short``.

    Returns
    -------
    str
        ``"full"`` for a grid-search row and for ``no_grid`` itself; ``"no_grid"`` for a
        fixed-settings row; ``"no_grid@short"`` (``"no_grid"`` without short settings) for
        an ``@short`` row, its softmax head (``<name>@short+softmax``) included.

    Examples
    --------
    >>> reference_of(get_study("no_l2")), reference_of(get_study("no_l2@fixed"))
    ('full', 'no_grid')
    """
    if study.search or study.name == "no_grid":
        return "full"
    # '@short' rows include their softmax heads ('<name>@short+softmax').
    return _short_reference(short_settings) if "@short" in study.name else "no_grid"


def table2_runs(crops: dict[str, Any], profile: Profile, work: str | os.PathLike, *, ablations: Sequence[str],
                comparison: Sequence[str], fixed_ablations: bool = True,
                short_settings: Mapping[str, Any] | None = None, n_workers: int | None = 1
                ) -> dict[str, StudyRun]:
    """Table 2's runs: the full method, each ablation, each comparison backbone with its
    softmax head, and the references those rows are compared with.

    Each row is :func:`run_study` of :func:`table2_study`, so rows another chapter already
    ran are read back. A comparison backbone's softmax row (``<name>+softmax``) is the same
    run read through the other head. ``no_grid`` (and ``no_grid@short`` with short
    settings) are run last, when a row is compared with them (:func:`reference_of`) and
    ``ablations`` did not already hold them.

    Parameters
    ----------
    crops : dict of CropSet
        ``{"composite": ..., "macro": ...}`` (:func:`~merlib.training.crops.prepare_crop_sets`).
    profile : Profile
        The full method's settings (:func:`chapter_profile`).
    work : path
        The chapter's results folder (:func:`merlib.paths.results_dir`).
    ablations : sequence of str
        :data:`STUDIES` names of the ablation rows, e.g. ``["no_transfer", "no_svm"]``.
    comparison : sequence of str
        :data:`STUDIES` names of the comparison backbones, e.g. ``["resnet18_no_transfer"]``.
    fixed_ablations, short_settings
        As :func:`table2_study`.
    n_workers : int or None
        Passed to :func:`run_study`.

    Returns
    -------
    dict of str -> StudyRun
        Study name -> run, in the table's row order: ``full``, then ``ablations`` and
        ``comparison`` as given (each backbone followed by its softmax head), then the
        references added.

    Raises
    ------
    ConfigError
        ``ablations`` or ``comparison`` is a string, or names an unknown study.
    """
    ablations, comparison = _names(ablations, "ablations"), _names(comparison, "comparison")
    short = dict(short_settings or {})
    reference_name = _short_reference(short)
    full = run_study("full", crops, profile, work, n_workers=n_workers)
    runs = {"full": full}
    for name in [*ablations, *comparison]:
        study = table2_study(name, comparison, fixed_ablations=fixed_ablations, short_settings=short)
        runs[study.name] = run_study(study, crops, profile, work, n_workers=n_workers)
        if name in comparison:
            soft = runs[study.name].with_classifier("softmax")
            runs[soft.study.name] = soft
    if "no_grid" not in runs and any(reference_of(r.study, short) == "no_grid" for r in runs.values()):
        runs["no_grid"] = run_study("no_grid", crops, profile, work, n_workers=n_workers)
    if any(reference_of(r.study, short) == reference_name for r in runs.values()) and reference_name not in runs:
        runs[reference_name] = run_study(get_study("no_grid").shortened(short), crops, profile, work,
                                         n_workers=n_workers)
    return runs


def table2_labels(runs: Mapping[str, StudyRun], short_settings: Mapping[str, Any] | None = None
                  ) -> dict[str, str]:
    """Row labels of Table 2: each study's label; with short settings, ``no_grid@short``
    is named as the full method at those settings (it is the short rows' reference).

    Parameters
    ----------
    runs : dict of str -> StudyRun
        As :func:`table2_runs` returns.
    short_settings : dict, optional

    Returns
    -------
    dict of str -> str
        Study name -> label, in the order of ``runs`` (``no_grid@short`` last when
        ``runs`` lacks it).
    """
    labels = {name: r.study.label for name, r in runs.items()}
    short = dict(short_settings or {})
    if short:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(short.items()))
        labels[_short_reference(short)] = f"MobileViT: transfer, SVM, L2 (short: {shown})"
    return labels


def run_times(runs: Mapping[str, StudyRun], labels: Mapping[str, str]) -> pd.DataFrame:
    """One row per run: its label, settings, wall time and whether it was read back.

    Parameters
    ----------
    runs : dict of str -> StudyRun
    labels : dict of str -> str
        A label for every key of ``runs`` (:func:`table2_labels`).

    Returns
    -------
    DataFrame
        ``len(runs)`` rows; columns row, settings (``grid search`` or ``fixed``), seconds
        (the run's own wall time when it was computed), read back from disk.

    Raises
    ------
    ConfigError
        ``labels`` lacks a run's name (names it).
    """
    missing = [name for name in runs if name not in labels]
    if missing:
        raise ConfigError(f"labels: no label for the runs {missing}")
    return pd.DataFrame([{"row": labels[name], "settings": "grid search" if r.study.search else "fixed",
                          "seconds": r.result.seconds, "read back from disk": r.reused}
                         for name, r in runs.items()])


def table2_pairs(runs: Mapping[str, StudyRun], short_settings: Mapping[str, Any] | None = None
                 ) -> dict[str, list[str]]:
    """Table 2's paired comparisons: each reference's prediction columns compared with it.

    Parameters
    ----------
    runs : dict of str -> StudyRun
        As :func:`table2_runs` returns.
    short_settings : dict, optional
        As :func:`reference_of`.

    Returns
    -------
    dict of str -> list of str
        Reference name (:func:`reference_of`) -> ``pred_<name>`` columns of the rows
        compared with it, in the order of ``runs``, for
        :func:`~merlib.evaluation.bootstrap.paired_table`. ``full`` and each reference
        itself are no row of it (a reference is not compared with itself).
    """
    pairs: dict[str, list[str]] = {}
    for name, r in runs.items():
        if name != "full" and reference_of(r.study, short_settings) != name:
            pairs.setdefault(reference_of(r.study, short_settings), []).append(f"pred_{name}")
    return pairs

#: Columns of :func:`table2_record` (``build/results/table2.csv``), in order.
TABLE2_COLUMNS: tuple[str, ...] = ("run", "label", "kind", "n", "uf1", "uf1_lo", "uf1_hi", "diff_vs_majority",
                                   "diff_lo", "diff_hi", "diff_vs_hog", "diff_vs_hog_lo", "diff_vs_hog_hi")


def table2_record(predictions: pd.DataFrame, crops: Any = None, *, references: Sequence[str] = ("hog_svm",),
                  cache_dir: str | os.PathLike | None = None, n_resamples: int = 1000, seed: int = 0,
                  labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Table 2 as numbers a script can read back: each run's composite UF1 and its paired
    difference from the majority class and from HOG + SVM on the same crops and folds.

    Parameters
    ----------
    predictions : DataFrame
        :func:`combined_predictions` of the runs (one ``pred_<run>`` column each).
    crops : CropSet, optional
        The runs' composite crops, for ``references`` other than the majority class.
    references : sequence of str
        Simple references scored beside the runs (:data:`merlib.evaluation.handcrafted.REFERENCES`);
        with ``hog_svm`` among them, every row also gets its difference from it.
    cache_dir : path, optional
        The chapters' shared reference cache.
    n_resamples, seed : int
        The subject bootstrap; the same seed as the chapter's tables gives the same
        intervals.
    labels : dict, optional
        Run name -> the label shown in the chapter.

    Returns
    -------
    DataFrame
        One row per run, then per reference (``kind``), :data:`TABLE2_COLUMNS`: UF1 with
        its 95% interval, and ``diff_*``: the row minus the majority class (minus HOG +
        SVM), paired on the same resampled subjects (NaN where it is the row itself or
        HOG was not asked for).
    """
    from merlib.evaluation.baselines import majority_class_predictions
    from merlib.evaluation.bootstrap import bootstrap_table, paired_table
    from merlib.evaluation.handcrafted import merge_predictions, reference_predictions
    from merlib.evaluation.splits import loso_folds

    key = ["dataset", "subject", "sample", "label", "fold"]
    runs = [c for c in predictions.columns if c.startswith("pred_")]
    if not runs:
        raise ConfigError("predictions: no pred_<run> column")
    table = predictions.reset_index(drop=True).copy()
    table["pred_majority"] = majority_class_predictions(table).astype(object).to_numpy()
    others = [r for r in references if r != "majority"]
    if others:
        if crops is None:
            raise ConfigError(f"crops: the references {others} are computed from the crops; pass the runs' CropSet")
        refs = reference_predictions(crops, others, folds=loso_folds(crops.groups), cache_dir=cache_dir)
        table = merge_predictions(table, refs[[*key, *[f"pred_{r}" for r in others]]])
    cols = [*runs, *[f"pred_{r}" for r in others]]
    scores = bootstrap_table(table, cols, n_resamples=n_resamples, seed=seed)
    scores = scores[scores["part"] == "composite"].set_index("classifier")

    def differences(reference: str) -> pd.DataFrame:
        compared = [c for c in cols if c != reference]
        d = paired_table(table, reference, compared, n_resamples=n_resamples, seed=seed)
        return d[d["part"] == "composite"].set_index("classifier")

    vs_majority = differences("pred_majority")
    vs_hog = differences("pred_hog_svm") if "hog_svm" in others else None
    rows = []
    for col in cols:
        name = col.removeprefix("pred_")
        s = scores.loc[name]
        row = {"run": name, "label": (labels or {}).get(name, name), "kind": "run" if col in runs else "reference",
               "n": int(s["n"]), "uf1": float(s["uf1"]), "uf1_lo": float(s["uf1_lo"]), "uf1_hi": float(s["uf1_hi"])}
        m = vs_majority.loc[name]
        row.update(diff_vs_majority=float(m["d_uf1"]), diff_lo=float(m["d_uf1_lo"]), diff_hi=float(m["d_uf1_hi"]))
        h = vs_hog.loc[name] if vs_hog is not None and name in vs_hog.index else None
        row.update(diff_vs_hog=np.nan if h is None else float(h["d_uf1"]),
                   diff_vs_hog_lo=np.nan if h is None else float(h["d_uf1_lo"]),
                   diff_vs_hog_hi=np.nan if h is None else float(h["d_uf1_hi"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))


# ------------------------------------------------------------ validation curves (Figs 6-8)

def inner_split_curves(crops: Any, cfg: FinetuneConfig, *, transfer_state: dict | None = None,
                       val_fraction: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """Training and validation accuracy per epoch of one fine-tuning, validation = held-out
    *training* subjects.

    The same steps as :func:`merlib.training.finetune.finetune` (fresh network,
    transferred blocks, gradual unfreezing, the config's balancing and L2), on the
    subjects :func:`~merlib.evaluation.splits.holdout_subjects` keeps for training; after
    each epoch the network predicts the held-out subjects in eval mode, with its BatchNorm
    statistics recalibrated on the training crops first (as ``finetune`` does after the
    last epoch; its own generator, so the training batches are those of a plain run).

    Parameters
    ----------
    crops : CropSet
        The micro composite (no LOSO test subject is involved: this is not a LOSO run).
    cfg : FinetuneConfig
    transfer_state : dict of tensors, optional
    val_fraction : float
        Fraction of the subjects held out.
    seed : int

    Returns
    -------
    DataFrame
        epoch (1-based), train_loss, train_acc (train mode: dropout, augmentation),
        val_acc, val_uf1, n_train, n_val.
    """
    import torch

    from merlib.evaluation.metrics import scores
    from merlib.evaluation.splits import holdout_subjects
    from merlib.training.batches import CropDataset
    from merlib.training.engine import predict, recalibrate_batchnorm
    from merlib.training.finetune import finetune

    train_idx, val_idx = holdout_subjects(crops.groups, val_fraction, seed=seed)
    train, val = crops.subset(train_idx), crops.subset(val_idx)
    recal_gen = torch.Generator().manual_seed(seed + 7)

    def validate(epoch: int, model: torch.nn.Module, frozen: tuple, plain: CropDataset) -> dict[str, float]:
        device = next(model.parameters()).device
        val_ds = CropDataset(val.X, val.y, image_size=cfg.image_size, mean=plain.mean, std=plain.std)
        # Eval-mode accuracy needs statistics of the current weights (see finetune).
        saved = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}
        if cfg.bn_recalibrate:
            recalibrate_batchnorm(model, plain, device, cfg.batch_size, recal_gen, keep=frozen)
        _, proba = predict(model, val_ds, device)
        model.load_state_dict(saved, strict=False)  # training continues from its own statistics
        s = scores(val.y, proba.argmax(1))
        return {"val_acc": s["accuracy"], "val_uf1": s["uf1"]}

    curves = finetune(train, cfg, transfer_state=transfer_state, seed=seed, on_epoch=validate).curves
    return curves[["epoch", "train_loss", "train_acc", "val_acc", "val_uf1"]].assign(
        n_train=len(train), n_val=len(val))


def cached_inner_split_curves(crops: Any, cfg: FinetuneConfig, work: str | os.PathLike, *,
                              transfer: Any = None, val_fraction: float = 0.25, seed: int = 0) -> pd.DataFrame:
    """:func:`inner_split_curves`, stored in ``work/curves/<digest>.csv`` and read back.

    Parameters
    ----------
    crops : CropSet
    cfg : FinetuneConfig
    work : path
    transfer : TransferResult, optional
        Its blocks are loaded as ``cfg.transfer_load`` says; its folder and best epoch
        are part of the key.
    val_fraction, seed
        As :func:`inner_split_curves`.

    Returns
    -------
    DataFrame
    """
    from merlib.evaluation.fold import resolve_transfer

    ignore = ("device", "num_threads")
    key = {"config": {k: v for k, v in cfg.as_dict().items() if k not in ignore}, "crops": crops.fingerprint(),
           "transfer": None if transfer is None else [str(transfer.out_dir), transfer.best_epoch],
           "val_fraction": val_fraction, "seed": seed}
    path = Path(work) / "curves" / f"{cfg.arch}-{settings_digest(key)}.csv"
    if path.is_file():
        return pd.read_csv(path)
    state = resolve_transfer(transfer, cfg) if transfer is not None else None
    curves = inner_split_curves(crops, cfg, transfer_state=state, val_fraction=val_fraction, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    curves.to_csv(tmp, index=False)
    tmp.replace(path)
    return curves


def most_chosen(run: Any, cfg: FinetuneConfig) -> FinetuneConfig:
    """``cfg`` with the grid point the search chose for the most outer folds (ties: lowest index)."""
    folds = run.folds
    if "grid_index" not in folds or (folds["grid_index"] < 0).all():
        return cfg
    counts = folds["grid_index"].value_counts()
    gi = int(counts[counts == counts.max()].index.min())
    row = folds[folds["grid_index"] == gi].iloc[0]
    return cfg.replace(batch_size=int(row["batch_size"]), lr=float(row["lr"]), epochs=int(row["epochs"]))



def figure_settings(full_result: Any, profile: Profile) -> dict[str, FinetuneConfig]:
    """The fine-tuning settings of Figures 6-8, by panel title.

    Parameters
    ----------
    full_result : LosoResult
        The full method's (grid-search) run: its most chosen grid point (:func:`most_chosen`)
        is the *full* setting.
    profile : Profile

    Returns
    -------
    dict of str -> FinetuneConfig
        ``"Figure 6: no grid search"``: the profile's fixed settings; ``"Figure 7: no L2"``:
        the most chosen point with ``l2 = 0``; ``"Figure 8: grid search and L2 (full)"``:
        the most chosen point (the fixed settings when the run had no search).
    """
    best = most_chosen(full_result, profile.micro)
    return {"Figure 6: no grid search": profile.micro, "Figure 7: no L2": best.replace(l2=0.0),
            "Figure 8: grid search and L2 (full)": best}


def figure_curves(crops: dict[str, Any], profile: Profile, work: str | os.PathLike,
                  configs: Mapping[str, FinetuneConfig], *, epochs: int, val_fraction: float = 0.25,
                  seed: int = 0) -> dict[str, pd.DataFrame]:
    """Inner-split curves of each of ``configs``, from the profile's macro transfer.

    Parameters
    ----------
    crops : dict of CropSet
        ``{"composite": ..., "macro": ...}``.
    profile : Profile
        Its ``macro`` config names the transferred weights (read back or trained).
    work : path
        The chapter's results folder; curves are cached in ``work/curves``.
    configs : dict of str -> FinetuneConfig
        Title -> settings (:func:`figure_settings`).
    epochs : int
        Epochs of each curve (replaces each config's).
    val_fraction, seed
        As :func:`inner_split_curves`.

    Returns
    -------
    dict of str -> DataFrame
        Title -> :func:`cached_inner_split_curves` (``epochs`` rows each).
    """
    transfer = macro_transfer(crops["macro"], profile.macro, work)
    return {title: cached_inner_split_curves(crops["composite"], cfg.replace(epochs=epochs), work,
                                             transfer=transfer, val_fraction=val_fraction, seed=seed)
            for title, cfg in configs.items()}

__all__ = ["ARCH_LABELS", "COMPARISON_ARCHS", "STUDIES", "Study", "StudyRun", "cached_inner_split_curves",
           "chapter_profile", "combined_predictions", "figure_curves", "figure_settings", "get_study",
           "inner_split_curves", "macro_transfer", "most_chosen", "read_run", "reference_of", "run_dir",
           "run_study", "run_times", "settings", "table2_labels", "table2_pairs", "table2_runs", "table2_study",
           "transfer_dir"]
