"""Calibrate SynthME on the references with published real-data scores.

    .venv/bin/python bench/calibrate_synthme.py --root build/calibration/dev-s7 --seed 7 \\
        --micro-subjects 68 [--appearance facs --au-statistics real --head-motion 0.02 ...]

Generates (or reuses) a SynthME root with the given generator settings, pre-processes its
composite apex frames, and scores the two references whose real composite UF1 is
published on the same protocol (LOSO, 3 classes, MEGC2019 composite):

- LBP-TOP + linear SVM, the MEGC2019 baseline (real: 0.5882; See et al. 2019);
- Bi-WOOF + linear SVM (real: 0.6296; Liong et al. 2018, as listed in MEGC2019),
  with HOOF beside it and the majority class for scale.

Each UF1 comes with a 95% subject-bootstrap interval. The reference settings are stated
in the record: clips of ``--clip-size`` px and ``--clip-frames`` frames, 5 x 5 blocks,
C chosen by inner subject-wise folds. Never run this on the method under test: the
calibration sees only these references (issue: "calibrated on published references").

Writes a dated record (``--record``; commit it under ``bench/records/`` to show it in the
data chapter) and puts one row per reference into ``--csv`` (default
``build/results/calibration.csv``: reference, root, uf1, uf1_lo, uf1_hi, published, ...),
replacing that root's earlier rows (:mod:`merlib.studies.calibration`).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

NAMES = ("majority", "lbp_top_svm", "biwoof_svm", "hoof_svm")


def main(argv: list[str] | None = None) -> int:
    from merlib.cli import add_realism_arguments, synth_config_from

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--label", default=None, help="the csv's root column (default: the root's name)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--micro-subjects", type=int, default=68)
    p.add_argument("--macro-subjects", type=int, default=4)
    # The generator flags of `merlib synth`, from the warp-only preset by default so that a
    # record names every setting it moved.
    add_realism_arguments(p, default="none")
    p.add_argument("--amplitude", nargs=2, type=float, default=None, metavar=("LO", "HI"),
                   help="micro amplitude range, IOD (default: the generator's)")
    p.add_argument("--clip-size", type=int, default=128)
    p.add_argument("--clip-frames", type=int, default=10)
    p.add_argument("--names", default=",".join(NAMES))
    p.add_argument("--csv", type=Path, default=Path("build/results/calibration.csv"))
    p.add_argument("--record", type=Path, default=None,
                   help="the dated JSON record (default: calibration-<root name>.json beside the root)")
    p.add_argument("--n-resamples", type=int, default=1000)
    args = p.parse_args(argv)

    from merlib.provenance import Provenance, code_version
    from merlib.reporting.timing import machine
    from merlib.studies.calibration import calibration_rows, write_csv
    from merlib.synth import generate
    from merlib.training.crops import prepare_crop_sets

    extra = {} if args.amplitude is None else {"micro_amplitude_iod": tuple(args.amplitude)}
    cfg = synth_config_from(args, seed=args.seed, micro_subjects=args.micro_subjects,
                            macro_subjects=args.macro_subjects, **extra)
    timings = {}
    marker = args.root / "SYNTHME.json"
    t = time.perf_counter()
    wanted = {**cfg.record(), "complete": True}
    same = False
    if marker.is_file():
        have = json.loads(marker.read_text())
        same = all(have.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in wanted.items())
    if not same:
        generate(args.root, cfg, progress=False)
    timings["generate_s"] = None if same else round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    prov = Provenance.for_data(args.root, seed=args.seed)
    crops = prepare_crop_sets(args.root, sets=("composite",), seed=0, allow_missing=True, provenance=prov)["composite"]
    timings["preprocess_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    names = tuple(n.strip() for n in args.names.split(",") if n.strip())
    rows = calibration_rows(crops, args.root, args.label or args.root.name, names=names,
                            clip_size=args.clip_size, clip_frames=args.clip_frames,
                            cache_dir=args.root.parent / "references", n_resamples=args.n_resamples)
    timings["references_s"] = round(time.perf_counter() - t, 1)
    print(rows[["reference", "root", "uf1", "uf1_lo", "uf1_hi", "published", "within", "n"]].to_string(index=False))
    print(json.dumps(timings))
    host = machine(1)
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "code": code_version(),
              "machine": {"cpu": host["cpu"], "logical_cpus": host["logical_cpus"], "flags": host["flags"],
                          "load_average": host["load_average"], "platform": platform.platform()},
              "python": sys.version.split()[0], "data_fingerprint": prov.data_fingerprint,
              "generator": cfg.record(), "clip": {"size": args.clip_size, "n_frames": args.clip_frames},
              "timings": timings, "results": rows.to_dict("records")}
    out = args.record or args.root.parent / f"calibration-{args.root.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    write_csv(rows, args.csv)
    print(f"record -> {out}; rows -> {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
