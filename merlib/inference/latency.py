"""Per-image latency of a backbone under each runtime, against timm eager in the same run.

The measurement behind ``bench/inference.py`` and the timing chapter (Table 4):

- batch 1, input 1x1xSxS: S = 256 (the paper's) for the convolutional networks and
  MobileViT, the ViTs at the size they are built for (:func:`native_size`, 224);
- random initialisation (seed 0; no pretrained weights can be downloaded here): the time
  of a forward pass does not depend on the weights' values;
- rounds are *interleaved*: each round times one call of every runtime in turn, so a
  change of machine load hits all of them alike; the figure is the median over rounds,
  and ``speedup_vs_eager`` is the eager median of the same rounds divided by it;
- agreement with eager fp32 on 16 toy face-like crops
  (:func:`merlib.training.data.synthetic_crop_set`): the largest logit difference and
  the fraction of equal argmax decisions. On random weights the logits are close
  together, so an int8 graph's agreement here is a lower bound of a trained model's.

Runtimes: ``eager`` (timm, fp32, ``torch.no_grad``; always measured), ``onnxruntime``
(fp32 graph, :mod:`merlib.inference.runtime`), ``int8`` (static QDQ quantisation,
onnxruntime), ``compile`` (``torch.compile`` with inductor freezing; compiling takes
minutes).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from merlib.errors import ConfigError
from merlib.inference.export import export_onnx, quantize_int8, torch_outputs
from merlib.inference.runtime import OnnxModel

RUNTIMES: tuple[str, ...] = ("eager", "onnxruntime", "int8", "compile")


def native_size(arch: str, default: int = 256) -> int:
    """The input side a backbone is timed at: a ViT's own (224), else ``default``."""
    from merlib.models.backbone import BACKBONES

    if arch not in BACKBONES:
        raise ConfigError(f"arch: expected one of {sorted(BACKBONES)}, got {arch!r}")
    return 224 if BACKBONES[arch].sized else default


@dataclass(frozen=True)
class LatencyRow:
    """One model under one runtime.

    Attributes
    ----------
    model, runtime : str
    image_size : int
    median_ms : float
        Median over the interleaved rounds, milliseconds per image.
    speedup_vs_eager : float
        The same run's eager median / ``median_ms``.
    argmax_agree : float
        Fraction of the check crops whose argmax equals eager fp32's, in [0, 1].
    max_logit_diff : float
        Largest absolute logit difference from eager fp32 on the check crops.
    rounds, threads : int
    """

    model: str
    runtime: str
    image_size: int
    median_ms: float
    speedup_vs_eager: float
    argmax_agree: float
    max_logit_diff: float
    rounds: int
    threads: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """``MODEL RUNTIME median_ms=X speedup_vs_eager=Y argmax_agree=Z`` (the bench's)."""
        return (f"{self.model} {self.runtime} median_ms={self.median_ms:.2f} "
                f"speedup_vs_eager={self.speedup_vs_eager:.2f} argmax_agree={self.argmax_agree:.4f}")


def check_images(n: int, size: int, seed: int, mean: float, std: float) -> np.ndarray:
    """``n`` toy face-like crops (N, 1, size, size) float32, normalised with ``mean``/``std``."""
    from merlib.training.data import synthetic_crop_set

    crops = synthetic_crop_set(max(1, n // 3 + 1), 3, size, seed=seed).X[:n]
    return ((crops[:, None].astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def _runners(arch: str, runtimes: Sequence[str], size: int, threads: int,
             exporter: str) -> tuple[dict[str, Callable[[np.ndarray], Any]], dict[str, np.ndarray], np.ndarray]:
    from merlib.models.backbone import create_backbone, input_normalisation

    torch.manual_seed(0)
    model = create_backbone(arch, image_size=size).eval()
    mean, std = input_normalisation(model)
    check = check_images(16, size, 1, mean, std)
    ref = torch_outputs(model, check)[0]
    runners: dict[str, Callable[[np.ndarray], Any]] = {"eager": lambda x: model(torch.from_numpy(x))}
    logits = {"eager": ref}
    graph = export_onnx(model, size, exporter=exporter) if {"onnxruntime", "int8"} & set(runtimes) else None
    if "onnxruntime" in runtimes:
        session = OnnxModel(graph, threads)
        runners["onnxruntime"] = session.run
        logits["onnxruntime"] = session.run(check)[0]
    if "int8" in runtimes:
        q = OnnxModel(quantize_int8(graph, check_images(16, size, 2, mean, std)), threads)
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
    return runners, logits, ref


def measure_latency(arch: str, runtimes: Sequence[str] = ("eager", "onnxruntime"), *, rounds: int = 30,
                    threads: int = 2, image_size: int | None = None, exporter: str = "dynamo",
                    warmup: int = 3) -> list[LatencyRow]:
    """Time ``arch`` under each of ``runtimes`` (eager always, first), interleaved.

    Parameters
    ----------
    arch : str
        A :data:`~merlib.models.backbone.BACKBONES` key.
    runtimes : sequence of {"eager", "onnxruntime", "int8", "compile"}
    rounds : int, default=30
    threads : int, default=2
        torch's and onnxruntime's intra-op threads alike (torch's is set process-wide).
    image_size : int, optional
        Default :func:`native_size`.
    exporter : {"dynamo", "torchscript"}
        ONNX exporter (:func:`~merlib.inference.export.export_onnx`); the graphs run
        equally fast, torchscript exports about ten times quicker.
    warmup : int, default=3
        Untimed calls of each runtime first.

    Returns
    -------
    list of LatencyRow
        Eager first, then ``runtimes`` in the order given.
    """
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise ConfigError(f"runtimes: expected a subset of {RUNTIMES}, got {unknown}")
    if rounds < 1:
        raise ConfigError(f"rounds: expected >= 1, got {rounds}")
    size = native_size(arch) if image_size is None else int(image_size)
    torch.set_num_threads(threads)
    order = ["eager"] + [r for r in dict.fromkeys(runtimes) if r != "eager"]
    runners, logits, ref = _runners(arch, order, size, threads, exporter)
    x = np.random.default_rng(3).random((1, 1, size, size), dtype=np.float32)
    times: dict[str, list[float]] = {r: [] for r in order}
    with torch.no_grad():
        for name in order:
            for _ in range(warmup):
                runners[name](x)
        for _ in range(rounds):
            for name in order:
                t = time.perf_counter()
                runners[name](x)
                times[name].append((time.perf_counter() - t) * 1e3)
    eager = statistics.median(times["eager"])
    rows = []
    for name in order:
        ms = statistics.median(times[name])
        rows.append(LatencyRow(arch, name, size, ms, eager / ms,
                               float((logits[name].argmax(1) == ref.argmax(1)).mean()),
                               float(np.abs(logits[name] - ref).max()), rounds, threads))
    return rows
