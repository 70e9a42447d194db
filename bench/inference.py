"""Per-image latency of the backbones under each runtime, against timm eager in the same run.

    .venv/bin/python bench/inference.py [--models mobilevit_s,resnet18] [--runtimes eager,onnxruntime,int8]
                                        [--rounds 30] [--threads 2] [--compile] [--tcmalloc] [--quick]

Prints one line per model and runtime:

    MODEL RUNTIME median_ms=X speedup_vs_eager=Y argmax_agree=Z

- the measurement is :func:`merlib.inference.latency.measure_latency` (the timing
  chapter's too); batch 1, input 1x1xSxS (S = ``--image-size``, 256 the paper's; the
  ViTs at their own 224), ``--threads`` threads (torch and onnxruntime alike), random
  initialisation (seed 0; no pretrained weights here);
- rounds are *interleaved*: each round times one call of every runtime of the model in
  turn, so a change of machine load hits all of them alike; X is the median over rounds;
- Y = the same model's timm eager fp32 median of this run / X (eager is always measured;
  ``mobilevit_s eager`` is always printed, it is the reference of the paper's Table 4);
- Z = argmax agreement with eager fp32 logits on 16 toy face-like crops
  (:func:`merlib.training.data.synthetic_crop_set`, 256 px; the int8 graph is calibrated
  on 16 others). On random weights the logits are close together, so int8's agreement
  here is a lower bound of what a trained model gets.

Runtimes: ``eager`` (timm, fp32, ``torch.no_grad``), ``onnxruntime`` (fp32 graph,
:mod:`merlib.inference`), ``int8`` (static QDQ quantisation, onnxruntime), ``compile``
(``torch.compile`` with inductor freezing; ``--compile``, compiling takes minutes).
``--tcmalloc`` reruns eager and onnxruntime in a subprocess with
``LD_PRELOAD=libtcmalloc_minimal.so.4`` (Debian: ``apt-get install libtcmalloc-minimal4``);
those rows are not interleaved with the others (another process), compare with care.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

from merlib.inference.latency import measure_latency, native_size
from merlib.reporting.timing import cpu_model

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilevit_s", help="comma-separated backbone names")
    ap.add_argument("--runtimes", default="eager,onnxruntime,int8", help="eager,onnxruntime,int8,compile")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile)")
    ap.add_argument("--tcmalloc", action="store_true", help="also eager/onnxruntime under tcmalloc")
    ap.add_argument("--quick", action="store_true", help="mobilevit_s only, 8 rounds, torchscript exporter")
    ap.add_argument("--prefix", default="", help=argparse.SUPPRESS)  # runtime name prefix (tcmalloc child)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.exporter = 8, "torchscript"
    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if "mobilevit_s" not in models and not args.prefix:
        models.insert(0, "mobilevit_s")  # the reference row is always printed
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if args.compile and "compile" not in runtimes:
        runtimes.append("compile")
    print(f"# {args.threads} threads, batch 1, 1x1x{args.image_size}x{args.image_size}, {args.rounds} interleaved "
          f"rounds, exporter {args.exporter}, torch {torch.__version__}, CPU: {cpu_model()} x{os.cpu_count()}", flush=True)
    eagers = {}
    for arch in models:
        rows = measure_latency(arch, runtimes, rounds=args.rounds, threads=args.threads,
                               image_size=native_size(arch, args.image_size), exporter=args.exporter)
        eagers[arch] = rows[0].median_ms
        for row in rows:
            model, rest = row.line().split(" ", 1)
            print(f"{model} {args.prefix}{rest}", flush=True)
    if args.tcmalloc:
        if not Path(TCMALLOC).is_file():
            print(f"# tcmalloc: {TCMALLOC} not found (apt-get install libtcmalloc-minimal4)")
            return
        env = dict(os.environ, LD_PRELOAD=TCMALLOC)
        cmd = [sys.executable, __file__, "--models", ",".join(models), "--runtimes", "eager,onnxruntime",
               "--rounds", str(args.rounds), "--threads", str(args.threads), "--image-size", str(args.image_size),
               "--exporter", args.exporter, "--prefix", "tcmalloc+"]
        print("# tcmalloc rows: measured in another process after the rows above; speedup "
              "relative to the eager (glibc malloc) median above", flush=True)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if line.startswith("#"):
                continue
            model, name, ms, _, agree = line.split()
            value = float(ms.split("=")[1])
            print(f"{model} {name} {ms} speedup_vs_eager={eagers[model] / value:.2f} {agree}")
        if out.returncode:
            print(f"# tcmalloc run failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}")


if __name__ == "__main__":
    main()
