"""Do CPU instruction sets change the method's numbers, and does pinning them help?

    .venv/bin/python bench/isa_pinning.py [--subjects 6] [--per-subject 9] [--out record.json]

The same commit gave different network UF1 on two x86 machines (one with AVX-512), while
majority and HOG agreed: torch picks its vector kernels (ATen), oneDNN its convolution
code and MKL its BLAS path by the CPU it runs on, and their float sums round differently.
This runs the real LOSO path (smoke fine-tuning settings, one thread) on a small crop set
in fresh processes, once per setting:

- ``default``: what the machine picks;
- ``avx2``: ``ATEN_CPU_CAPABILITY=avx2``, ``DNNL_MAX_CPU_ISA=AVX2``,
  ``MKL_ENABLE_INSTRUCTIONS=AVX2`` and ``MKL_CBWR=AVX2``: what any x86-64 machine with AVX2
  also runs;
- ``default`` again, to show the run is deterministic on one machine.

It prints, per setting, the wall time, a hash of the predictions and SVM scores, and the
UF1, and writes a JSON record. Identical hashes for ``default`` and ``avx2`` on an AVX-512
machine mean the pin changes nothing here; different ones mean the machine's own code
path moves the numbers, and the ``avx2`` pin is what makes two machines comparable.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "MKL_CBWR": "AVX2"}
SETTINGS = (("default", {}), ("avx2", PINS), ("default again", {}))


def one_run(subjects: int, per_subject: int) -> dict:
    """The LOSO path once, in this process; what it predicted, hashed."""
    import tempfile

    import torch

    from merlib.config import Profile
    from merlib.evaluation.protocol import evaluate_loso
    from merlib.scores import uf1_score
    from merlib.training.crops import synthetic_crop_set

    crops = synthetic_crop_set(n_subjects=subjects, per_subject=per_subject, size=64, signal=30.0, seed=3)
    cfg = Profile.smoke().micro.replace(svm_C=(1.0,), num_threads=1)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = evaluate_loso(crops, cfg, Path(tmp) / "loso", n_workers=1)
    seconds = time.perf_counter() - t
    p = res.predictions
    text = p.to_csv(index=False, float_format="%.17g")
    return {"seconds": round(seconds, 1), "hash": hashlib.sha256(text.encode()).hexdigest()[:16],
            "uf1_svm": round(uf1_score(p["label"], p["pred_svm"]), 4),
            "uf1_softmax": round(uf1_score(p["label"], p["pred_softmax"]), 4),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def devnote(rows: list[dict], *, date: str, code: str, machine: str, command: str, subjects: int,
            per_subject: int) -> dict:
    """The runs as a development record (:mod:`merlib.reporting.records`) for the book's
    appendix."""
    same_pin = rows[0]["hash"] == rows[1]["hash"]
    again = rows[0]["hash"] == rows[2]["hash"]
    finding = ("Two runs with the machine's own code paths gave " + ("identical" if again else "DIFFERENT")
               + " predictions and scores. Pinning the AVX2 code paths " + ("changed nothing" if same_pin else
               "changed the SVM scores (another hash)") + ("" if same_pin else
               ", so the instruction set the machine offers moves the network's numbers: two machines agree only "
               "where they run the same code paths, which the AVX2 pin asks of any x86-64 machine with AVX2 "
               "(not checked on a second machine here)") + ".")
    return {"title": "CPU instruction sets and the network's numbers", "date": date, "machine": machine,
            "commit": code, "command": command,
            "settings": f"The LOSO path at the smoke profile's fine-tuning settings, one thread, SVM C = 1, on "
                        f"synthetic_crop_set({subjects} subjects x {per_subject} crops, signal 30, seed 3), each "
                        f"run in a fresh process; avx2 pins: " + ", ".join(f"{k}={v}" for k, v in PINS.items()),
            "finding": finding, "source": "bench/isa_pinning.py",
            "tables": [{"caption": "One run per setting: wall time, a hash of the predictions and SVM scores, UF1",
                        "columns": ["setting", "torch CPU capability", "seconds", "hash", "UF1 (SVM)",
                                    "UF1 (softmax)"],
                        "rows": [[r["setting"], r["torch_cpu_capability"], r["seconds"], r["hash"], r["uf1_svm"],
                                  r["uf1_softmax"]] for r in rows]}]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--per-subject", type=int, default=9)
    ap.add_argument("--out", type=Path, default=None, help="the JSON record (default: print only)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(one_run(args.subjects, args.per_subject)))
        return 0
    from merlib.provenance import code_version
    from merlib.reporting.timing import machine

    rows = []
    for name, env in SETTINGS:
        cmd = [sys.executable, __file__, "--child", "--subjects", str(args.subjects),
               "--per-subject", str(args.per_subject)]
        out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True)
        row = {"setting": name, "env": env, **json.loads(out.stdout.strip().splitlines()[-1])}
        print(json.dumps(row), flush=True)
        rows.append(row)
    host = machine(1)
    record = devnote(rows, date=datetime.now(timezone.utc).date().isoformat(), code=code_version(),
                     machine=f"{host['cpu']}, {host['logical_cpus']} logical CPUs, flags {' '.join(host['flags'])}, "
                             f"{platform.platform()}",
                     command="bench/isa_pinning.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                     subjects=args.subjects, per_subject=args.per_subject)
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(record["finding"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
