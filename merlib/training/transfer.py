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

``transfer.json`` always holds ``config`` (every :class:`~merlib.config.TrainConfig`
field, among them ``arch`` and ``image_size``: the network input side the weights were
trained at, which a run that loads them must share) and ``segments``: which epochs ran
on which device, thread count and torch version (one entry unless the run was resumed
with other ones; floating-point sums then differ, so the numbers can differ from an
uninterrupted run, and ``mixed_settings`` is true).

Resuming (``resume=True``, the default) continues from ``state.pt`` when the settings and
the data are the same, except ``device`` and ``num_threads`` (with a
:class:`~merlib.errors.MerlibWarning`) and a *larger* ``epochs``. Asking for fewer epochs
than ``state.pt`` holds is an error: the best epoch of the longer run is not the best
epoch of the shorter one, and the weights of earlier epochs are not kept. Every file is
checked on reading: a cut-short or foreign ``state.pt`` or ``.safetensors`` raises
:class:`~merlib.errors.BrokenFileError` naming it (``resume=False`` starts again).
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from merlib.config import TrainConfig
from merlib.data.schema import LABELS
from merlib.errors import BrokenFileError, ConfigError, DataLayoutError, MerlibWarning
from merlib.models.backbone import (conv_state_keys, create_backbone, feature_extractor_state,
                                    input_normalisation)
from merlib.provenance import Provenance, code_version
from merlib.scores import scores
from merlib.training.batches import CropDataset, make_datasets
from merlib.training.crops import CropSet, holdout_subjects
from merlib.training.engine import (eval_loss, make_optimizer, predict, recalibrate_batchnorm,
                                    resolve_device, seed_everything, train_epoch)

MODEL_FILE = "model.safetensors"
EXTRACTOR_FILE = "feature_extractor.safetensors"
RECORD_FILE = "transfer.json"
CURVES_FILE = "curves.csv"
STATE_FILE = "state.pt"
#: Settings that may change between a run and its resumption.
RESUMABLE_CHANGES: frozenset[str] = frozenset({"epochs", "device", "num_threads"})
#: What a resumed run names when its state file cannot be used (CLI flag, library argument).
_RESTART = "start again with --no-resume (resume=False) or use another --out"
#: Keys every ``state.pt`` holds.
_STATE_KEYS: frozenset[str] = frozenset({"epoch", "model", "optimizer", "torch_rng", "data_rng", "curves",
                                         "best_epoch", "best_acc", "config", "data_fingerprint"})
#: Keys every ``transfer.json`` holds (``config`` holds every TrainConfig field).
_RECORD_KEYS: tuple[str, ...] = ("best_epoch", "best_val_acc", "config", "files")


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

    @property
    def arch(self) -> str:
        """The backbone the weights belong to (``record["config"]["arch"]``)."""
        return str(self.record["config"]["arch"])

    @property
    def image_size(self) -> int:
        """Side of the network input, pixels, that the weights were trained at
        (``record["config"]["image_size"]``); a run loading them must use the same."""
        return int(self.record["config"]["image_size"])

    def extractor_state(self) -> dict[str, torch.Tensor]:
        """The transferred feature-extractor tensors (best epoch)."""
        return _read_safetensors(self.out_dir / EXTRACTOR_FILE, "rerun `merlib train-macro`")

    def model_state(self) -> dict[str, torch.Tensor]:
        """Every weight of the best epoch."""
        return _read_safetensors(self.out_dir / MODEL_FILE, "rerun `merlib train-macro`")


def _read_safetensors(path: Path, fix: str) -> dict[str, torch.Tensor]:
    """Every tensor of ``path``; a missing, cut-short or foreign file names itself and ``fix``."""
    _safetensors_metadata(path, fix)
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise BrokenFileError(f"{path}: not a readable safetensors file ({err}); {fix}") from None


def _safetensors_metadata(path: Path, fix: str) -> dict[str, str]:
    """The header metadata of ``path``, read without the tensors. safetensors checks here
    that the header is well formed and that the file is exactly as long as the header
    says, which catches a cut-short or foreign file at the cost of reading the header."""
    if not path.is_file():
        raise DataLayoutError(f"{path}: missing; {fix}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise BrokenFileError(f"{path}: not a readable safetensors file ({err}); {fix}") from None


def _read_state(path: Path) -> dict[str, Any]:
    """``state.pt``, loaded without unpickling arbitrary objects (``weights_only``)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch answers with a page on weights_only: garbage, or a pickle of other objects
        # (which merlib never writes, and which must not be unpickled to find out).
        raise BrokenFileError(f"{path}: not a readable merlib training state (not a torch file of "
                              f"plain tensors); {_RESTART}") from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        # A cut-short file: "PytorchStreamReader failed reading zip archive: failed finding
        # central directory", then advice that does not name the file; keep the first clause.
        first = str(err).strip().split(". ")[0].splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise BrokenFileError(f"{path}: not a readable merlib training state ({first}); {_RESTART}") from None
    missing = sorted(_STATE_KEYS - set(saved)) if isinstance(saved, dict) else sorted(_STATE_KEYS)
    if missing:
        raise BrokenFileError(f"{path}: not a merlib training state (missing {missing}); {_RESTART}")
    return saved


def _segment(cfg: TrainConfig, first_epoch: int) -> dict[str, Any]:
    return {"first_epoch": first_epoch, "last_epoch": first_epoch - 1, "device": cfg.device,
            "num_threads": cfg.num_threads, "torch": str(torch.__version__)}  # plain str: weights_only


#: Segment fields whose change makes a resumed run's numbers differ from an uninterrupted one.
_SEGMENT_SETTINGS: tuple[str, ...] = ("device", "num_threads", "torch")


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary file beside ``path``, then rename it over ``path``: a kill
    leaves the old file or the new one, never half of one. The temporary name is unique,
    so two processes writing the same folder do not write through each other's file."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path, meta: dict[str, str]) -> None:
    plain = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(plain, str(tmp), metadata=meta))


def _atomic_torch_save(obj: dict[str, Any], path: Path) -> None:
    _atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _atomic_text(text: str, path: Path) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def _check_resumable(saved: dict[str, Any], cfg: TrainConfig, fingerprint: str, out_dir: Path) -> None:
    now, then = cfg.as_dict(), saved["config"]
    for key in sorted(set(then) | set(now)):
        if key in RESUMABLE_CHANGES or then.get(key) == now.get(key):
            continue
        # A setting only one side has: the state comes from another merlib version.
        was = f"{key}={then[key]!r}" if key in then else f"no setting {key} (another merlib version)"
        has = f"{key}={now[key]!r}" if key in now else f"no setting {key} (another merlib version)"
        raise ConfigError(f"cfg: {out_dir / STATE_FILE} was trained with {was}, this call has {has}; "
                         f"use another out_dir or resume=False")
    if saved["data_fingerprint"] != fingerprint:
        raise ConfigError(f"crops: {out_dir / STATE_FILE} was trained on data {saved['data_fingerprint']}, "
                         f"these crops are {fingerprint}; use another out_dir or resume=False")
    if saved["epoch"] > cfg.epochs:
        # Refused rather than truncated: the best of the first cfg.epochs epochs may be an
        # epoch whose weights were overwritten, and state.pt is past it.
        raise ConfigError(f"epochs: {out_dir / STATE_FILE} already holds {saved['epoch']} finished epochs, "
                         f"this call asks for epochs={cfg.epochs}; ask for at least {saved['epoch']} "
                         f"to resume, or {_RESTART}")
    if saved["best_epoch"] > 0:
        # The best epoch's weights live in the safetensors files, not in state.pt: a resumed
        # run that keeps its best epoch must be able to read them.
        fix = f"the run in {out_dir} cannot be resumed; {_RESTART}"
        for name in (MODEL_FILE, EXTRACTOR_FILE):
            _safetensors_metadata(out_dir / name, fix)


def _resume_note(segments: list[dict[str, Any]], now: dict[str, Any], state_path: Path) -> str | None:
    """A warning when the epochs still to run use other settings than the last ones did."""
    last = segments[-1]
    # "unrecorded": a state written before segments existed knows no torch version.
    changed = [k for k in _SEGMENT_SETTINGS if last.get(k, "unrecorded") not in ("unrecorded", now[k])]
    if not changed:
        return None
    ran = "; ".join(f"epochs {seg['first_epoch']}-{seg['last_epoch']} ran with "
                    + ", ".join(f"{k}={seg.get(k)}" for k in _SEGMENT_SETTINGS) for seg in segments)
    return (f"resuming {state_path} with " + ", ".join(f"{k}={now[k]}" for k in changed)
            + f" ({ran}): its numbers can differ from an uninterrupted run "
            "(floating-point sums depend on the device, the thread count and the torch version)")


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
        ``device`` and ``num_threads``, which warn, and an ``epochs`` at least as large as
        the epochs done); False starts again and overwrites.
    progress : bool, default=False
        tqdm bar over epochs.

    Returns
    -------
    TransferResult

    Raises
    ------
    ConfigError
        Resuming with other settings, other data, or fewer epochs than ``state.pt`` holds.
    BrokenFileError
        Resuming from a ``state.pt`` or best-epoch ``.safetensors`` that is cut short or
        foreign (names it).

    Warns
    -----
    MerlibWarning
        Resuming with another device, thread count or torch version: the numbers can
        differ from an uninterrupted run (also recorded: ``segments``, ``mixed_settings``).
    """
    from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = crops.fingerprint()
    train_idx, val_idx = holdout_subjects(crops.groups, cfg.val_fraction, seed=cfg.seed)
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed, cfg.num_threads)
    model = create_backbone(cfg.arch, image_size=cfg.image_size, drop_rate=cfg.drop_rate).to(device)
    optimizer = make_optimizer(model, cfg)
    train_ds, train_plain = make_datasets(crops.subset(train_idx), cfg, model, generator)
    mean, std = input_normalisation(model)
    held_out = crops.subset(val_idx)
    val_ds = CropDataset(held_out.X, held_out.y, image_size=cfg.image_size, mean=mean, std=std)
    y_val = crops.y[val_idx]

    curves: list[dict[str, float]] = []
    best_epoch, best_acc, start = 0, -1.0, 0
    segments: list[dict[str, Any]] = []
    notes: list[str] = []
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        saved = _read_state(state_path)
        _check_resumable(saved, cfg, fingerprint, out)
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            torch.set_rng_state(saved["torch_rng"])
            generator.set_state(saved["data_rng"])
        except (RuntimeError, ValueError, KeyError, TypeError) as err:
            first = str(err).strip().splitlines()[0][:160]
            raise BrokenFileError(f"{state_path}: its tensors do not fit a {cfg.arch} at "
                                 f"{cfg.image_size}px ({first}); {_RESTART}") from None
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        curves, best_epoch, best_acc, start = saved["curves"], saved["best_epoch"], saved["best_acc"], saved["epoch"]
        # States written before segments were recorded ran on the settings they saved.
        old = saved["config"]
        segments = list(saved.get("segments") or [
            {"first_epoch": 1, "last_epoch": start, "device": old.get("device"),
             "num_threads": old.get("num_threads"), "torch": "unrecorded"}])
        notes = list(saved.get("notes", []))
        note = _resume_note(segments, _segment(cfg, start + 1), state_path) if start < cfg.epochs else None
        if note:
            warnings.warn(note, MerlibWarning, stacklevel=2)
            notes.append(note)
    if start < cfg.epochs:
        segments.append(_segment(cfg, start + 1))

    meta = {"arch": cfg.arch, "image_size": str(cfg.image_size), "code_version": code_version()}
    for epoch in tqdm(range(start, cfg.epochs), desc="macro epochs", disable=not progress,
                      initial=start, total=cfg.epochs):
        t0 = time.perf_counter()
        fit = train_epoch(model, train_ds, cfg, optimizer, generator, device)
        # Validation (eval mode) and the saved best epoch need BatchNorm statistics of
        # this epoch's weights, not the running averages of earlier ones.
        recalibrate_batchnorm(model, train_plain, device, cfg.batch_size, generator)
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
        _atomic_text(pd.DataFrame(curves).to_csv(index=False), out / CURVES_FILE)
        segments[-1]["last_epoch"] = epoch + 1
        state = {"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), "data_rng": generator.get_state(),
                 "curves": curves, "best_epoch": best_epoch, "best_acc": best_acc,
                 "config": cfg.as_dict(), "data_fingerprint": fingerprint,
                 "segments": segments, "notes": notes}
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
        "segments": segments,
        "mixed_settings": bool(notes),
        "notes": notes,
        "files": {"model": MODEL_FILE, "feature_extractor": EXTRACTOR_FILE, "curves": CURVES_FILE,
                  "state": STATE_FILE},
    }
    _atomic_text(json.dumps(record, indent=1), out / RECORD_FILE)
    return TransferResult(out, pd.DataFrame(curves), best_epoch, best_acc, record)


def load_transfer(out_dir: str | os.PathLike) -> TransferResult:
    """A finished run's result, read back from its ``out_dir``.

    Checks, without loading the weights, that ``transfer.json`` is a merlib record whose
    ``config`` names ``arch`` and ``image_size`` (:attr:`TransferResult.arch`,
    :attr:`TransferResult.image_size`), that ``curves.csv`` reads, and that both
    safetensors files are whole and were written by the same run (their header metadata
    carries ``arch`` and ``image_size``).

    Raises
    ------
    DataLayoutError
        ``out_dir`` or one of its files is missing.
    BrokenFileError
        A file is cut short, garbage, or disagrees with the record (names it).
    """
    out = Path(out_dir)
    fix = f"rerun `merlib train-macro --out {out}`"
    record_path = out / RECORD_FILE
    if not record_path.is_file():
        raise DataLayoutError(f"transfer: {out} has no {RECORD_FILE} (run `merlib train-macro`)")
    try:
        record = json.loads(record_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BrokenFileError(f"{record_path}: not a JSON record ({err}); {fix}") from None
    missing = [k for k in _RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise BrokenFileError(f"{record_path}: not a merlib transfer record (missing {missing}); {fix}")
    # Only what a loader needs is required: a record of an older merlib, whose other
    # settings have since changed name, still names its backbone and input side.
    config = record["config"]
    arch = config.get("arch") if isinstance(config, dict) else None
    size = config.get("image_size") if isinstance(config, dict) else None
    if not isinstance(arch, str) or not isinstance(size, int) or isinstance(size, bool):
        raise BrokenFileError(f"{record_path}: its config lacks a valid arch and image_size "
                              f"(got arch={arch!r}, image_size={size!r}); {fix}")
    for name in (MODEL_FILE, EXTRACTOR_FILE):
        meta = _safetensors_metadata(out / name, fix)
        said = {k: meta.get(k) for k in ("arch", "image_size")}
        if said != {"arch": arch, "image_size": str(size)}:
            raise BrokenFileError(f"{out / name}: written for {said}, but {record_path} says "
                                 f"arch={arch!r}, image_size={size}; {fix}")
    try:
        curves = pd.read_csv(out / CURVES_FILE)
    except FileNotFoundError:
        raise DataLayoutError(f"{out / CURVES_FILE}: missing; {fix}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise BrokenFileError(f"{out / CURVES_FILE}: not a curves table ({err}); {fix}") from None
    return TransferResult(out, curves, int(record["best_epoch"]), float(record["best_val_acc"]), record)
