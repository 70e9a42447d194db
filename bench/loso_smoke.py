"""Wall time of a smoke-profile LOSO on a small synthetic crop set, with and without
transfer learning and the grid search, and where the time goes (fine-tuning, feature
extraction, SVM).

    .venv/bin/python bench/loso_smoke.py [--subjects 6] [--per-subject 10] [--size 64]
                                         [--workers 1] [--out bench-out/loso_smoke.csv]

The crop set is :func:`merlib.training.crops.synthetic_crop_set` (60 crops, 6 subjects,
64 x 64 by default); the macro set for transfer is a larger synthetic one (8 subjects x
24). The smoke profile: MobileViT-XXS at 64 px, 3 epochs, two grid points, two inner
folds. ``--workers 1`` runs everything in this process; more starts a local Dask cluster
of processes. Prints one table; all times are wall clock on this machine.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from merlib.config import Profile
from merlib.evaluation.protocol import evaluate_loso
from merlib.training.crops import synthetic_crop_set
from merlib.training.transfer import train_macro


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--per-subject", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="CSV of the table")
    args = ap.parse_args()

    profile = Profile.smoke()
    crops = synthetic_crop_set(args.subjects, args.per_subject, args.size)
    macro = synthetic_crop_set(8, 24, args.size, seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        transfer = train_macro(macro, profile.macro, Path(tmp) / "transfer")
        rows.append({"run": f"train_macro ({len(macro)} crops, {profile.macro.epochs} epochs)",
                     "seconds": time.perf_counter() - t0, "fits": 1})
        for use_transfer in (False, True):
            for search in (None, profile.search):
                res = evaluate_loso(crops, profile.micro, transfer=transfer if use_transfer else None,
                                    search=search, n_workers=args.workers)
                f = res.folds
                n_fits = len(f) if search is None else len(res.search.scores) * search.inner_splits + len(f)
                rows.append({
                    "run": f"LOSO {'transfer' if use_transfer else 'random init'}, "
                           f"{'grid search (inner)' if search else 'fixed settings'}",
                    "seconds": res.seconds, "fits": n_fits,
                    "outer_train_s": f["train_s"].sum(), "outer_embed_s": f["embed_s"].sum(),
                    "outer_svm_s": f["svm_s"].sum(),
                    "uf1_svm": res.score("uf1", "svm"), "uf1_softmax": res.score("uf1", "softmax")})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{len(crops)} crops, {args.subjects} subjects, {args.size} px, workers={args.workers}")
    print(table.to_string(index=False, float_format="%.2f"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
