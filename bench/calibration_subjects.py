"""How the published references score on fewer subjects of the same root.

    .venv/bin/python bench/calibration_subjects.py --root build/calibration/dev-s7-v8 \\
        --subjects 24 --draws 5 --out bench/records/devnote-2026-12-07-calibration-subjects.json

The book's root has 24 micro subjects; the development root, like the real composite, 68.
A reference trained on 23 subjects per fold has less to learn from than one trained on
67, so the book's root can score lower than the development root with the same generator
settings. This measures that effect alone: draws of ``--subjects`` subjects of one
existing root (each dataset keeping its share of the subjects), each scored by the same
references as ``bench/calibrate_synthme.py`` (same clip settings, LOSO within the draw),
beside the whole root. Writes a development note (``--out``) that chapter 10 shows.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

NAMES = ("majority", "lbp_top_svm", "biwoof_svm")


def draw_subjects(meta: pd.DataFrame, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of ``n`` subjects, each dataset keeping its share (at least 2 each)."""
    per_ds = meta.groupby("dataset")["subject"].unique()
    total = sum(len(s) for s in per_ds)
    keep = []
    for ds, subjects in per_ds.items():
        k = max(2, int(round(n * len(subjects) / total)))
        chosen = rng.choice(sorted(subjects), size=min(k, len(subjects)), replace=False)
        keep += [(ds, s) for s in chosen]
    pairs = set(keep)
    return np.flatnonzero([(d, s) in pairs for d, s in zip(meta["dataset"], meta["subject"])])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True, help="a complete SynthME root (e.g. a calibration root)")
    p.add_argument("--subjects", type=int, default=24)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="seed of the draws")
    p.add_argument("--clip-size", type=int, default=128)
    p.add_argument("--clip-frames", type=int, default=10)
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--out", type=Path, required=True, help="development note (JSON) to write")
    args = p.parse_args(argv)

    from merlib.provenance import Provenance, code_version
    from merlib.reporting.timing import machine
    from merlib.studies.calibration import calibration_rows, published_uf1
    from merlib.training.crops import prepare_crop_sets

    prov = Provenance.for_data(args.root)
    crops = prepare_crop_sets(args.root, sets=("composite",), seed=0, allow_missing=True, provenance=prov)["composite"]
    cache = args.root.parent / "references"
    rng = np.random.default_rng(args.seed)
    draws = [("all", np.arange(len(crops)))] + [(f"draw {i + 1}", draw_subjects(crops.meta, args.subjects, rng))
                                               for i in range(args.draws)]
    rows = []
    t0 = time.perf_counter()
    for label, idx in draws:
        sub = crops.subset(idx)
        table = calibration_rows(sub, args.root, label, names=NAMES, clip_size=args.clip_size,
                                 clip_frames=args.clip_frames, cache_dir=cache, n_resamples=args.n_resamples)
        n_subjects = int(table["n_subjects"].iloc[0])
        for r in table.itertuples():
            rows.append([label, n_subjects, int(r.n), r.reference, r.uf1, r.uf1_lo, r.uf1_hi])
        print(table[["reference", "root", "uf1", "uf1_lo", "uf1_hi", "n", "n_subjects"]].to_string(index=False),
              flush=True)
    seconds = time.perf_counter() - t0
    frame = pd.DataFrame(rows, columns=["draw", "subjects", "samples", "reference", "uf1", "uf1_lo", "uf1_hi"])
    drawn = frame[frame["draw"] != "all"].groupby("reference")["uf1"].agg(["mean", "std", "min", "max"])
    whole = frame[frame["draw"] == "all"].set_index("reference")["uf1"]
    published = {k: v for k, (v, _) in published_uf1().items()}
    summary = [[ref, round(float(whole[ref]), 4), round(float(drawn.loc[ref, "mean"]), 4),
                round(float(drawn.loc[ref, "std"]), 4), round(float(drawn.loc[ref, "min"]), 4),
                round(float(drawn.loc[ref, "max"]), 4), round(float(drawn.loc[ref, "mean"] - whole[ref]), 4),
                published.get(ref)] for ref in NAMES]
    print(pd.DataFrame(summary, columns=["reference", "all", "mean", "sd", "min", "max", "mean - all",
                                         "published"]).to_string(index=False))
    host = machine(1)
    generator = json.loads((args.root / "SYNTHME.json").read_text())
    n_all = int(frame.loc[frame["draw"] == "all", "subjects"].iloc[0])
    note = {
        "title": f"The published references on {args.subjects} of the development root's subjects",
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": f"{host['cpu']}, {host['logical_cpus']} logical CPUs, {platform.platform()}",
        "commit": code_version(),
        "command": "bench/calibration_subjects.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": (f"Root {args.root.name} (seed {generator.get('seed')}, {n_all} micro subjects; "
                     f"data fingerprint {prov.data_fingerprint}); {args.draws} draws of {args.subjects} subjects, "
                     f"each dataset keeping its share; references as bench/calibrate_synthme.py (clips of "
                     f"{args.clip_size} px and {args.clip_frames} frames, LOSO within the draw, C chosen on inner "
                     f"subject folds); composite UF1 with {args.n_resamples}-resample subject-bootstrap intervals. "
                     f"SIMULATED data."),
        "finding": ("Computed by the script; read the tables: 'mean - all' is how much lower (negative) a "
                    "reference scores on the smaller draws than on the whole root with the same generator."),
        "source": f"this script's run, {seconds:.0f} s",
        "tables": [
            {"caption": "Composite UF1 per draw [95% subject-bootstrap interval] (SIMULATED)",
             "columns": list(frame.columns),
             "rows": [[*r[:4], round(float(r[4]), 4), round(float(r[5]), 4), round(float(r[6]), 4)]
                      for r in frame.itertuples(index=False)]},
            {"caption": f"Summary over the {args.draws} draws, beside the whole root and the published real value",
             "columns": ["reference", "all", "mean", "sd", "min", "max", "mean - all", "published"],
             "rows": summary},
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(note, indent=1) + "\n")
    print(f"note -> {args.out} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
