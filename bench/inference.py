"""Per-image latency of the backbones under each runtime, against timm eager in the same run.

    .venv/bin/python bench/inference.py [--models mobilevit_s,resnet18] [--runtimes eager,onnxruntime,int8]
                                        [--rounds 30] [--threads 2] [--compile] [--tcmalloc] [--quick]

Prints one line per model and runtime:

    MODEL RUNTIME median_ms=X speedup_vs_eager=Y argmax_agree=Z

- batch 1, input 1x1xSxS (S = 256, the paper's), ``--threads`` threads (torch and
  onnxruntime alike), random initialisation (seed 0; no pretrained weights here);
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
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from merlib.inference.export import export_onnx, quantize_int8, torch_outputs
from merlib.inference.runtime import OnnxModel
from merlib.models.backbone import create_backbone, input_normalisation
from merlib.training.data import synthetic_crop_set

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def _images(n: int, size: int, seed: int, mean: float, std: float) -> np.ndarray:
    crops = synthetic_crop_set(max(1, n // 3 + 1), 3, size, seed=seed).X[:n]
    return ((crops[:, None].astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def _runners(arch: str, runtimes: list[str], size: int, threads: int, exporter: str):
    torch.manual_seed(0)
    model = create_backbone(arch, image_size=size).eval()
    mean, std = input_normalisation(model)
    check = _images(16, size, 1, mean, std)
    runners, logits = {}, {}
    ref = torch_outputs(model, check)[0]
    with torch.no_grad():
        runners["eager"] = lambda x: model(torch.from_numpy(x))
    logits["eager"] = ref
    graph = None
    if "onnxruntime" in runtimes or "int8" in runtimes:
        graph = export_onnx(model, size, exporter=exporter)
    if "onnxruntime" in runtimes:
        session = OnnxModel(graph, threads)
        runners["onnxruntime"] = session.run
        logits["onnxruntime"] = session.run(check)[0]
    if "int8" in runtimes:
        q = OnnxModel(quantize_int8(graph, _images(16, size, 2, mean, std)), threads)
        runners["int8"] = q.run
        logits["int8"] = q.run(check)[0]
    if "compile" in runtimes:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # weights as constants: folds BatchNorm, prepacks
        compiled = torch.compile(model)
        with torch.no_grad():
            compiled(torch.from_numpy(check[:1]))  # compile now, outside the timing
            runners["compile"] = lambda x: compiled(torch.from_numpy(x))
            logits["compile"] = np.concatenate([compiled(torch.from_numpy(check[i:i + 1])).numpy()
                                                for i in range(len(check))])
    agree = {k: float((v.argmax(1) == ref.argmax(1)).mean()) for k, v in logits.items()}
    return runners, agree


def measure(arch: str, runtimes: list[str], rounds: int, size: int, threads: int,
            exporter: str, warmup: int = 3) -> list[tuple[str, str, float, float]]:
    """(model, runtime, median_ms, argmax_agree) rows; eager always included."""
    runtimes = ["eager"] + [r for r in runtimes if r != "eager"]
    runners, agree = _runners(arch, runtimes, size, threads, exporter)
    x = np.random.default_rng(3).random((1, 1, size, size), dtype=np.float32)
    times: dict[str, list[float]] = {r: [] for r in runners}
    with torch.no_grad():
        for name, run in runners.items():
            for _ in range(warmup):
                run(x)
        for _ in range(rounds):
            for name, run in runners.items():
                t = time.perf_counter()
                run(x)
                times[name].append((time.perf_counter() - t) * 1e3)
    return [(arch, name, statistics.median(times[name]), agree[name]) for name in runners]


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
          f"rounds, exporter {args.exporter}, torch {torch.__version__}, CPU: {_cpu()}", flush=True)
    eagers = {}
    for arch in models:
        rows = measure(arch, runtimes, args.rounds, args.image_size, args.threads, args.exporter)
        eager = eagers[arch] = rows[0][2]
        for model, name, ms, agree in rows:
            print(f"{model} {args.prefix}{name} median_ms={ms:.2f} speedup_vs_eager={eager / ms:.2f} "
                  f"argmax_agree={agree:.4f}", flush=True)
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


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs"


if __name__ == "__main__":
    main()
