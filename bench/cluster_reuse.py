"""What a notebook saves by keeping one local Dask cluster for all its LOSO runs
(:func:`merlib.parallel.keep_local_clusters`), and that the predictions do not change.

    .venv/bin/python bench/cluster_reuse.py [--runs 3] [--subjects 6] [--per-subject 10]
                                            [--workers 2] [--epochs 1]

Runs the same short fixed-settings LOSO ``--runs`` times in one process, first starting a
cluster for each run (the default), then with the cluster kept. Each run writes to a
fresh folder, so nothing is read back. Prints the wall time of every run, the mean of the
runs after the first (the first pays for the start either way), and whether all
predictions agree.
"""
from __future__ import annotations

import argparse
import tempfile
import time

from merlib.config import Profile
from merlib.evaluation.protocol import evaluate_loso
from merlib.parallel import keep_local_clusters
from merlib.training.crops import synthetic_crop_set


def _runs(crops, cfg, n: int, workers: int) -> tuple[list[float], list[list[int]]]:
    seconds, preds = [], []
    for _ in range(n):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            res = evaluate_loso(crops, cfg, tmp, n_workers=workers)
            seconds.append(time.perf_counter() - t)
            preds.append(res.predictions["pred_svm"].tolist())
    return seconds, preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--per-subject", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()

    crops = synthetic_crop_set(args.subjects, args.per_subject, 64)
    cfg = Profile.smoke().micro.replace(epochs=args.epochs)
    table = {}
    for keep in (False, True):
        keep_local_clusters(keep)
        table[keep] = _runs(crops, cfg, args.runs, args.workers)
    keep_local_clusters(False)
    for keep, (seconds, _) in table.items():
        later = seconds[1:] or seconds
        print(f"{'kept cluster ' if keep else 'cluster a run'}: runs {', '.join(f'{s:.1f}' for s in seconds)} s; "
              f"mean after the first {sum(later) / len(later):.1f} s")
    all_preds = table[False][1] + table[True][1]
    print(f"predictions identical in all {len(all_preds)} runs: {all(p == all_preds[0] for p in all_preds)}")


if __name__ == "__main__":
    main()
