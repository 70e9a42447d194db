"""Per-image latency of the backbones under each runtime, against timm eager in the same run.

    .venv/bin/python bench/inference.py [--models mobilevit_s,resnet18] [--runtimes eager,openvino-bf16]
                                        [--weights model_dir_or.safetensors] [--data-root PATH | --toy-crops]
                                        [--rounds 30] [--threads 2] [--compile] [--tcmalloc] [--quick]

Prints one line per model and runtime:

    MODEL RUNTIME median_ms=X speedup_vs_eager=Y argmax_agree=Z

then, per model, a comment line per runtime with its agreement in full (crops, largest
logit difference, argmax agreement).

- the measurement is :func:`merlib.inference.latency.measure_latency` (the timing
  chapter's too); batch 1, input 1x1xSxS (S = ``--image-size``, 256 the paper's; the
  ViTs at their own 224), ``--threads`` threads (torch, onnxruntime and OpenVINO alike);
- rounds are *interleaved*: each round times one call of every runtime of the model in
  turn, so a change of machine load hits all of them alike; X is the median over rounds;
  the load average is printed before and after;
- Y = the same model's timm eager fp32 median of this run / X (eager is always measured;
  ``mobilevit_s eager`` is always printed, it is the reference of the paper's Table 4);
- Z = argmax agreement with eager fp32, each crop run alone through the timed path.
  The crops are the default data's composite (``--data-root``; the odd-numbered
  subjects in sorted order are the check crops, the others calibrate int8), or 16 toy
  crops (``--toy-crops``, or when no data root is found). ``--weights`` gives
  ``mobilevit_s`` trained weights: a ``merlib fit`` model folder or bundle of
  mobilevit_s, or a safetensors file of its state. Without them every network has random
  weights, whose logits lie close together: the agreement then only shows that no
  graph is broken, not how often a reduced precision changes a trained model's decision.

Runtimes (default: all this machine offers but ``compile``): ``eager``, ``onnxruntime``,
``onnxruntime-int8``, ``openvino``, ``openvino-bf16``, ``compile``
(``torch.compile`` with inductor freezing; ``--compile``, compiling takes minutes); see
:mod:`merlib.inference.latency`. Runtimes the machine lacks (OpenVINO not installed, no
bf16 in the CPU) are named in a comment and skipped.
``--tcmalloc`` reruns eager and onnxruntime in a subprocess with
``LD_PRELOAD=libtcmalloc_minimal.so.4`` (Debian: ``apt-get install libtcmalloc-minimal4``);
those rows are not interleaved with the others (another process), compare with care.
OpenVINO is never run under tcmalloc (its compile crashes).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from merlib.errors import DataLayoutError
from merlib.inference.latency import RUNTIMES, available_runtimes, measure_latency, native_size
from merlib.reporting.timing import cpu_flags, cpu_model

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
REFERENCE = "mobilevit_s"


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _versions() -> str:
    import onnxruntime

    out = f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    try:
        import openvino

        out += f", openvino {openvino.__version__.split('-')[0]}"
    except ImportError:
        pass
    return out


def _trained(path: str, size: int) -> torch.nn.Module:
    """mobilevit_s with the weights of ``path`` (a model folder / bundle, or a safetensors state)."""
    from safetensors.torch import load_file

    from merlib.errors import ConfigError
    from merlib.inference.bundle import load_bundle
    from merlib.models.backbone import create_backbone, load_weights

    p = Path(path)
    if p.is_dir():
        bundle = load_bundle(p)
        if bundle.meta["arch"] != REFERENCE or int(bundle.meta["image_size"]) != size:
            raise ConfigError(f"--weights: {p} holds {bundle.meta['arch']} at {bundle.meta['image_size']} px, "
                              f"expected {REFERENCE} at {size} px")
        return bundle.torch_model()
    model = create_backbone(REFERENCE, image_size=size)
    load_weights(model, load_file(str(p)))  # safetensors: no pickle
    return model.eval()


def _crops(data_root: str | None):
    """(check crops, calibration crops) uint8 (N, S, S) of the composite, split by subject;
    None where no data root is found."""
    from merlib.paths import resolve_data_root
    from merlib.training.crops import prepare_crop_sets

    try:
        root = resolve_data_root(data_root)
    except DataLayoutError:
        return None
    crops = prepare_crop_sets(root, sets=("composite",), seed=0, allow_missing=True)["composite"]
    held = set(sorted(set(crops.groups))[1::2])
    is_held = np.array([g in held for g in crops.groups])
    return crops.X[is_held], crops.X[~is_held], root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=REFERENCE, help="comma-separated backbone names")
    ap.add_argument("--runtimes", default=",".join(r for r in RUNTIMES if r != "compile"),
                    help=",".join(RUNTIMES))
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo")
    ap.add_argument("--weights", help=f"trained {REFERENCE}: model folder / bundle, or .safetensors state")
    ap.add_argument("--data-root", help="crops for agreement and int8 calibration (default: the default data)")
    ap.add_argument("--toy-crops", action="store_true", help="16 toy crops instead of the data's")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile)")
    ap.add_argument("--tcmalloc", action="store_true", help="also eager/onnxruntime under tcmalloc")
    ap.add_argument("--quick", action="store_true", help="mobilevit_s only, 8 rounds, torchscript exporter")
    ap.add_argument("--prefix", default="", help=argparse.SUPPRESS)  # runtime name prefix (tcmalloc child)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.exporter = 8, "torchscript"
    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if REFERENCE not in models and not args.prefix:
        models.insert(0, REFERENCE)  # the reference row is always printed
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if args.compile and "compile" not in wanted:
        wanted.append("compile")
    runtimes, skipped = available_runtimes(wanted)
    crops = None if args.toy_crops else _crops(args.data_root)
    print(f"# {args.threads} threads, batch 1, 1x1x{args.image_size}x{args.image_size}, {args.rounds} interleaved "
          f"rounds, exporter {args.exporter}, {_versions()}", flush=True)
    print(f"# CPU: {cpu_model()} x{os.cpu_count()}, flags: {' '.join(cpu_flags()) or 'none notable'}; "
          f"load average (1/5/15 min) {_load()}", flush=True)
    print(f"# weights: {REFERENCE} {args.weights or 'random init (seed 0)'}, others random init; agreement on "
          + (f"the held-out half of {crops[2]}'s composite crops, int8 calibrated on the other half"
             if crops else "16 toy crops"), flush=True)
    for name, why in skipped.items():
        print(f"# skipped {name}: {why}", flush=True)
    from merlib.inference.predict import prepare_images
    from merlib.models.backbone import create_backbone, input_normalisation

    eagers, notes = {}, []
    for arch in models:
        size = native_size(arch, args.image_size)
        model = check = calibration = None
        if arch == REFERENCE and args.weights:
            model = _trained(args.weights, size)
        if crops is not None:
            if model is None:
                torch.manual_seed(0)
                model = create_backbone(arch, image_size=size)
            mean, std = input_normalisation(model)
            check = prepare_images(crops[0], size, mean, std)
            calibration = prepare_images(crops[1], size, mean, std)
        rows = measure_latency(arch, runtimes, rounds=args.rounds, threads=args.threads, image_size=size,
                               exporter=args.exporter, model=model, check=check, calibration=calibration)
        eagers[arch] = rows[0].median_ms
        for row in rows:
            model_name, rest = row.line().split(" ", 1)
            print(f"{model_name} {args.prefix}{rest}", flush=True)
        notes += [f"# agreement {r.model} {args.prefix}{r.runtime}: n={r.n_check} "
                  f"max_logit_diff={r.max_logit_diff:.4f} argmax_agree={r.argmax_agree:.4f}" for r in rows[1:]]
    print("\n".join(notes))
    print(f"# load average after (1/5/15 min) {_load()}", flush=True)
    if args.tcmalloc:
        if not Path(TCMALLOC).is_file():
            print(f"# tcmalloc: {TCMALLOC} not found (apt-get install libtcmalloc-minimal4)")
            return
        env = dict(os.environ, LD_PRELOAD=TCMALLOC)
        cmd = [sys.executable, __file__, "--models", ",".join(models), "--runtimes", "eager,onnxruntime",
               "--rounds", str(args.rounds), "--threads", str(args.threads), "--image-size", str(args.image_size),
               "--exporter", args.exporter, "--toy-crops", "--prefix", "tcmalloc+"]
        print("# tcmalloc rows: measured in another process after the rows above; speedup "
              "relative to the eager (glibc malloc) median above", flush=True)
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if line.startswith("#"):
                continue
            model_name, name, ms, _, agree = line.split()
            value = float(ms.split("=")[1])
            print(f"{model_name} {name} {ms} speedup_vs_eager={eagers[model_name] / value:.2f} {agree}")
        if out.returncode:
            print(f"# tcmalloc run failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}")


if __name__ == "__main__":
    main()
