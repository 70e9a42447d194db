"""Wall time of the subject bootstrap (:mod:`merlib.evaluation.bootstrap`) on a made-up
predictions table.

    .venv/bin/python bench/bootstrap_speed.py [--subjects 24] [--per-subject 6]
                                              [--resamples 1000] [--columns 1,4] [--repeats 7]

The table has ``--subjects`` subjects spread over three datasets (so every call scores the
composite and three parts), ``--per-subject`` samples each, and prediction columns right
70% of the time. For each number of columns, :func:`bootstrap_table` and
:func:`paired_table` run ``--repeats`` times after one warm-up call; prints the median and
the fastest, in milliseconds and per column. Timings only: the tests check the numbers
(``tests/evaluation/test_bootstrap.py``), not the speed, which depends on the machine's
load.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from merlib.data.schema import LABELS
from merlib.evaluation.bootstrap import bootstrap_table, paired_table


def predictions_table(n_subjects: int, per_subject: int, n_columns: int, seed: int = 0) -> pd.DataFrame:
    """A predictions table: ``pred_0`` .. ``pred_<n_columns - 1>``, each right ~70% of the time."""
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    subject = np.repeat(np.arange(n_subjects), per_subject)
    labels = np.asarray(LABELS, dtype=object)
    y = labels[rng.integers(len(LABELS), size=n)]
    table = pd.DataFrame({"dataset": np.asarray(["casme2", "samm", "smic"], dtype=object)[subject % 3],
                          "subject": [f"s{s:02d}" for s in subject], "label": y})
    for k in range(n_columns):
        wrong = rng.random(n) >= 0.7
        table[f"pred_{k}"] = np.where(wrong, labels[rng.integers(len(LABELS), size=n)], y)
    return table


def _times(call: Callable[[], object], repeats: int) -> list[float]:
    call()  # warm-up: first-call imports and allocations are not the bootstrap's cost
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=24)
    ap.add_argument("--per-subject", type=int, default=6)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--columns", default="1,4", help="comma-separated numbers of prediction columns")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    columns = [int(c) for c in args.columns.split(",")]
    if args.repeats < 1 or args.subjects < 3 or args.per_subject < 1 or min(columns) < 1:
        ap.error("--repeats, --per-subject and --columns must be >= 1, --subjects >= 3")

    print(f"{args.subjects} subjects x {args.per_subject} samples, {args.resamples} resamples, "
          f"{args.repeats} repeats (milliseconds)")
    print(f"{'call':<16}{'columns':>8}{'median':>10}{'fastest':>10}{'median/col':>12}")
    for n_cols in columns:
        table = predictions_table(args.subjects, args.per_subject, n_cols + 1)
        preds = [f"pred_{k}" for k in range(n_cols)]
        calls = {
            "bootstrap_table": lambda: bootstrap_table(table, preds, n_resamples=args.resamples),
            # n_cols columns each against the extra one: the same number of scored columns.
            "paired_table": lambda: paired_table(table, f"pred_{n_cols}", preds, n_resamples=args.resamples),
        }
        for name, call in calls.items():
            ms = [1000 * s for s in _times(call, args.repeats)]
            med = statistics.median(ms)
            print(f"{name:<16}{n_cols:>8}{med:>10.1f}{min(ms):>10.1f}{med / n_cols:>12.1f}")


if __name__ == "__main__":
    main()
