"""Benchmark of the face pre-processing on the simulated data: per step and whole runs.

    .venv/bin/python bench/preprocess.py [--data-root DIR] [--composite 442] [--macro 9342]
                                         [--workers 1,2] [--step-frames 60]

Per-step times: one process, one frame at a time, frames of every dataset in turn.
Whole runs: the composite's apex frames and the macro images of the data root, repeated
as distinct copies (a tag appended after the image data, so nothing is a cache hit but
the work per frame is unchanged) up to the paper's counts (442 and 9,342), aligned on a
fresh cache with each worker count (Dask local cluster; 1 = in-process), then rerun warm.
Prints two tables; all times are wall clock on this machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from merlib.faces.run import build_jobs, preprocess
from merlib.faces.timing import replicate_frames, step_timings
from merlib.paths import resolve_data_root


def _spread(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to n rows, taking the datasets in turn (so a sample covers every layout)."""
    order = table.assign(_k=table.groupby("dataset").cumcount()).sort_values(["_k", "dataset"])
    return order.drop(columns="_k").head(n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None)
    p.add_argument("--composite", type=int, default=442, help="composite frames to time (0: skip)")
    p.add_argument("--macro", type=int, default=9342, help="macro frames to time (0: skip)")
    p.add_argument("--workers", default=f"1,{os.cpu_count()}", help="comma-separated worker counts")
    p.add_argument("--step-frames", type=int, default=60)
    args = p.parse_args()

    root = resolve_data_root(args.data_root)
    jobs = build_jobs(root, allow_missing=True).table
    print(f"data root {root}: {len(jobs)} frames "
          f"({(jobs['set'] == 'composite').sum()} composite, {(jobs['set'] == 'macro').sum()} macro); "
          f"{os.cpu_count()} CPUs\n")

    sample = _spread(jobs, args.step_frames)
    steps = step_timings([root / f for f in sample["frame_path"]])
    print("Per step (1 process, mean over frames):")
    print(steps.round({"ms_per_frame": 2, "fps": 1}).to_string(), "\n")

    rows = []
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="merlib-bench-") as tmp:
        for name, target in (("composite", args.composite), ("macro", args.macro)):
            base = jobs[jobs["set"] == name]
            if target <= 0 or base.empty:
                continue
            t0 = time.perf_counter()
            reps = replicate_frames(base, root, Path(tmp) / name, target)
            print(f"{name}: {len(reps)} frames from {len(base)} distinct "
                  f"(copies written in {time.perf_counter() - t0:.1f} s)")
            for w in workers:
                store = Path(tmp) / f"store-{name}-{w}"
                cold = preprocess(reps, Path(tmp) / name, store, workers=w, progress=False)
                warm = preprocess(reps, Path(tmp) / name, store, workers=w, progress=False)
                assert warm.stats["computed"] == 0
                bad = int((cold.manifest["status"] == "failed").sum())
                rows.append({"set": name, "frames": len(reps), "workers": w,
                             "cold_s": cold.stats["seconds"],
                             "fps": len(reps) / cold.stats["seconds"],
                             "warm_s": warm.stats["seconds"], "failed": bad})
                print(f"  workers={w}: cold {cold.stats['seconds']:.1f} s, warm {warm.stats['seconds']:.2f} s")
    runs = pd.DataFrame(rows)
    if len(runs):
        print("\nWhole runs (wall clock, Dask start-up included):")
        print(runs.round({"cold_s": 1, "fps": 1, "warm_s": 2}).to_string(index=False))


if __name__ == "__main__":
    main()
