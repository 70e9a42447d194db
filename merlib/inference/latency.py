"""Per-image latency of a backbone under each runtime, against timm eager in the same run.

The measurement behind ``bench/inference.py`` and the timing chapter (Table 4):

- batch 1, input 1x1xSxS: S = 256 (the paper's) for the convolutional networks and
  MobileViT, the ViTs at the size they are built for (:func:`native_size`, 224);
- the network as given (trained weights) or, by default, random initialisation (seed 0;
  no pretrained weights can be downloaded here): the time of a forward pass does not
  depend on the weights' values, agreement does;
- rounds are *interleaved*: each round times one call of every runtime in turn, so a
  change of machine load hits all of them alike; the figure is the median over rounds,
  and ``speedup_vs_eager`` is the eager median of the same rounds divided by it;
- on a machine that another job keeps busy, eager torch (one OpenMP barrier per small
  op) was seen to flip for tens of seconds at a time between about 45 ms and 1-2.4 s
  per image, with any weights, while onnxruntime and OpenVINO slowed two to three
  times at most: a ``speedup_vs_eager`` in the tens means eager was in that state, not
  that the engine is that fast; compare ``median_ms`` and the load average too;
- agreement with eager fp32 on check crops, run one at a time through the same path that
  is timed: the largest logit difference and the fraction of equal argmax decisions.
  Held-out crops of a trained model give the figure that matters; the default, 16 toy
  face-like crops (:func:`merlib.training.crops.synthetic_crop_set`) on random weights,
  whose logits lie close together, only shows that a graph is not broken.

Runtimes (:data:`RUNTIMES`): ``eager`` (timm, fp32, ``torch.no_grad``; always measured),
``onnxruntime`` (fp32 graph), ``onnxruntime-int8`` (static QDQ graph, uint8 activations,
calibrated on the calibration crops), ``openvino`` (fp32), ``openvino-bf16`` (the fp32
graph in bf16; CPUs with AVX512_BF16 / AMX), and ``compile`` (``torch.compile`` with
inductor freezing; compiling takes minutes). See :mod:`merlib.inference.runtime` for the
settings and :func:`available_runtimes` for what this machine offers.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from merlib.errors import ConfigError
from merlib.inference.export import check_agreement, export_onnx, quantize_int8
from merlib.inference.runtime import bf16_supported, open_model, openvino_available

RUNTIMES: tuple[str, ...] = ("eager", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-bf16", "compile")
#: runtime name -> (engine, precision) of :func:`~merlib.inference.runtime.open_model`
ENGINES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "fp32"), "onnxruntime-int8": ("onnxruntime", "int8"),
    "openvino": ("openvino", "fp32"), "openvino-bf16": ("openvino", "bf16")}


def available_runtimes(runtimes: Sequence[str] = RUNTIMES) -> tuple[list[str], dict[str, str]]:
    """``runtimes`` split into those this machine can run and the others, with the reason.

    Returns
    -------
    (list of str, dict of str to str)
        The runnable runtimes in the order given; the others, each with why not.
    """
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise ConfigError(f"runtimes: expected a subset of {RUNTIMES}, got {unknown}")
    ok, skipped = [], {}
    has_ov = openvino_available()
    for name in runtimes:
        if name.startswith("openvino") and not has_ov:
            skipped[name] = "openvino is not installed (pip install openvino==2026.4.1, as pyproject.toml pins it)"
        elif name == "openvino-bf16" and not bf16_supported():
            skipped[name] = "this CPU has no bf16 (AVX512_BF16 / AMX)"
        else:
            ok.append(name)
    return ok, skipped


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
    n_check : int
        Check crops the agreement is measured on.
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
    n_check: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """``MODEL RUNTIME median_ms=X speedup_vs_eager=Y argmax_agree=Z`` (the bench's)."""
        return (f"{self.model} {self.runtime} median_ms={self.median_ms:.2f} "
                f"speedup_vs_eager={self.speedup_vs_eager:.2f} argmax_agree={self.argmax_agree:.4f}")


def check_images(n: int, size: int, seed: int, mean: float, std: float) -> np.ndarray:
    """``n`` toy face-like crops (N, 1, size, size) float32, normalised with ``mean``/``std``."""
    from merlib.training.crops import synthetic_crop_set

    crops = synthetic_crop_set(max(1, n // 3 + 1), 3, size, seed=seed).X[:n]
    return ((crops[:, None].astype(np.float32) / 255.0 - mean) / std).astype(np.float32)


def _runners(model: nn.Module, runtimes: Sequence[str], size: int, threads: int, exporter: str,
             check: np.ndarray, calibration: np.ndarray) -> tuple[dict[str, Callable[[np.ndarray], Any]],
                                                                  dict[str, tuple[float, float]]]:
    """The callables to time, and each one's (argmax agreement, max logit diff) on ``check``."""
    runners: dict[str, Callable[[np.ndarray], Any]] = {"eager": lambda x: model(torch.from_numpy(x))}
    agreement = {"eager": (1.0, 0.0)}
    engines = [r for r in runtimes if r in ENGINES]
    graph = export_onnx(model, size, exporter=exporter) if engines else None
    int8 = quantize_int8(graph, calibration) if any(ENGINES[r][1] == "int8" for r in engines) else None
    for name in engines:
        engine, precision = ENGINES[name]
        session = open_model(int8 if precision == "int8" else graph, engine, precision, threads)
        runners[name] = session.run
        a = check_agreement(model, session, check, one_by_one=True)
        agreement[name] = (a.argmax_agree, a.max_logit_diff)
    if "compile" in runtimes:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # weights as constants: folds BatchNorm, prepacks
        compiled = torch.compile(model)
        with torch.no_grad():
            compiled(torch.from_numpy(check[:1]))  # compile now, outside the timing
            runners["compile"] = lambda x: compiled(torch.from_numpy(x))
            logits = np.concatenate([compiled(torch.from_numpy(check[i:i + 1])).numpy() for i in range(len(check))])
            ref = model(torch.from_numpy(check)).numpy()
        agreement["compile"] = (float((logits.argmax(1) == ref.argmax(1)).mean()), float(np.abs(logits - ref).max()))
    return runners, agreement


def _time(runners: dict[str, Callable[[np.ndarray], Any]], order: Sequence[str], x: np.ndarray, warmup: int,
          rounds: int, times: dict[str, list[float]]) -> None:
    """``warmup`` untimed calls of each runner, then ``rounds`` interleaved timed ones (ms)."""
    with torch.no_grad():
        for name in order:
            for _ in range(warmup):
                runners[name](x)
        for _ in range(rounds):
            for name in order:
                t = time.perf_counter()
                runners[name](x)
                times[name].append((time.perf_counter() - t) * 1e3)


def measure_latency(arch: str, runtimes: Sequence[str] = ("eager", "onnxruntime"), *, rounds: int = 30,
                    threads: int = 2, image_size: int | None = None, exporter: str = "dynamo",
                    warmup: int = 3, model: nn.Module | None = None, check: np.ndarray | None = None,
                    calibration: np.ndarray | None = None) -> list[LatencyRow]:
    """Time ``arch`` under each of ``runtimes`` (eager always, first), interleaved.

    Parameters
    ----------
    arch : str
        A :data:`~merlib.models.backbone.BACKBONES` key.
    runtimes : sequence of :data:`RUNTIMES`
        Those this machine lacks raise (see :func:`available_runtimes`).
    rounds : int, default=30
    threads : int, default=2
        torch's, onnxruntime's and OpenVINO's intra-op threads alike (torch's is set
        process-wide).
    image_size : int, optional
        Default :func:`native_size`.
    exporter : {"dynamo", "torchscript"}
        ONNX exporter (:func:`~merlib.inference.export.export_onnx`).
    warmup : int, default=3
        Untimed calls of each runtime first.
    model : torch.nn.Module, optional
        The ``arch`` network to time, e.g. with trained weights; default: random
        initialisation, seed 0.
    check : ndarray of shape (N, 1, S, S), float32, optional
        Crops, normalised as ``model`` expects, for the agreement with eager fp32
        (held-out crops for a trained model); default: 16 toy crops.
    calibration : ndarray of shape (M, 1, S, S), float32, optional
        Crops the int8 graphs are calibrated on (training crops, never ``check``);
        default: 16 other toy crops.

    Returns
    -------
    list of LatencyRow
        Eager first, then ``runtimes`` in the order given.
    """
    from merlib.models.backbone import create_backbone, input_normalisation

    usable, skipped = available_runtimes(runtimes)
    if skipped:
        raise ConfigError(f"runtimes: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}")
    if rounds < 1:
        raise ConfigError(f"rounds: expected >= 1, got {rounds}")
    size = native_size(arch) if image_size is None else int(image_size)
    torch.set_num_threads(threads)
    if model is None:
        torch.manual_seed(0)
        model = create_backbone(arch, image_size=size)
    model = model.eval()
    mean, std = input_normalisation(model)
    check = check_images(16, size, 1, mean, std) if check is None else np.asarray(check, np.float32)
    calibration = check_images(16, size, 2, mean, std) if calibration is None else np.asarray(calibration, np.float32)
    for name, arr in (("check", check), ("calibration", calibration)):
        if arr.ndim != 4 or arr.shape[1:] != (1, size, size) or len(arr) == 0:
            raise ConfigError(f"{name}: expected images of shape (N, 1, {size}, {size}), got {arr.shape}")
    order = ["eager"] + [r for r in dict.fromkeys(usable) if r != "eager"]
    with torch.no_grad():
        runners, agreement = _runners(model, order, size, threads, exporter, check, calibration)
    x = np.ascontiguousarray(check[:1])  # the timed input: one crop
    times: dict[str, list[float]] = {r: [] for r in order}
    _time(runners, order, x, warmup, rounds, times)
    eager = statistics.median(times["eager"])
    rows = []
    for name in order:
        ms = statistics.median(times[name])
        agree, diff = agreement[name]
        rows.append(LatencyRow(arch, name, size, ms, eager / ms, agree, diff, rounds, threads, len(check)))
    return rows
