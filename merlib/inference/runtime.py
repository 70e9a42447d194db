"""CPU runtimes for the exported graphs: onnxruntime, and OpenVINO where it is installed.

Both take the graph of :func:`~merlib.inference.export.export_onnx` (fp32) or of
:func:`~merlib.inference.export.quantize_int8` (int8, QDQ) and offer the same
``run(images) -> (logits, features)``; :func:`open_model` picks one by name.

=============  =================================  ============================================
runtime        fp32 / int8                        bf16
=============  =================================  ============================================
onnxruntime    the graph as given                 not offered (no x86 bf16 kernels)
openvino       fp32 (f32 inference precision);    the fp32 graph run with bf16 inference
               int8 not offered (below)           precision (AMX / AVX512_BF16), where the
                                                  CPU has it
=============  =================================  ============================================

OpenVINO int8 is not offered: reading the QDQ graph it ran MobileViT-S at twice its own
bf16 time (28 vs 14 ms) and no faster than its fp32, and it misread one QDQ graph (of
the torchscript export: argmax agreement 8% where onnxruntime's was 96% on the same
graph; the dynamo export's it ran right). NNCF's own int8 quantisation of the fp32 graph agreed
on every held-out crop but was also slower than bf16 (44 vs 33 ms in one loaded run).

Settings measured on a 2-core Xeon with AMX, MobileViT-S 1x1x256x256, two threads
(``bench/inference.py`` has the figures):

- onnxruntime: ``ORT_ENABLE_ALL``, sequential, one inter-op thread (the graph is a chain).
  Idle intra-op threads do *not* spin (``spin=False``): alone in a process at load 3.6 a
  spinning pool took 74-81 ms per image against 41 ms without, and after each call it
  kept burning the cores the next step needs (eager torch timed right after it went
  from 40 to 71 ms; in ``predict`` that next step is face detection). On a quiet
  machine spinning was about 20% quicker (23.5 vs 29.4 ms, load 1.9): ``spin=True``.
  Fixing the batch axis at 1 (static shapes, MatMul + bias fused into Gemm) was not
  reliably quicker, so the graph keeps its dynamic batch.
- OpenVINO: the latency hint, one stream, threads not pinned to cores (a shared machine),
  and the inference precision always set explicitly: on a CPU with AMX OpenVINO's own
  default is bf16, so "fp32" must be asked for.
- OpenVINO's ``compile_model`` crashes ("free(): invalid pointer") when tcmalloc is
  preloaded; :class:`OpenVinoModel` refuses to start under it instead.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from merlib.errors import ConfigError
from merlib.inference.export import INPUT_NAME, OUTPUT_NAMES

#: Default intra-op threads (the cores of the machines this was measured on).
DEFAULT_THREADS = 2
RUNTIMES: tuple[str, ...] = ("onnxruntime", "openvino")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")


def _check_threads(threads: Any) -> None:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"threads: expected an int >= 1, got {threads!r}")


def _source_name(model: bytes | str | os.PathLike) -> str:
    return "the given graph" if isinstance(model, bytes) else str(model)


def session_options(threads: int = DEFAULT_THREADS, *, spin: bool = False):
    """``onnxruntime.SessionOptions`` for low-latency CPU inference on ``threads`` cores.

    Parameters
    ----------
    threads : int, default=2
    spin : bool, default=False
        Let idle intra-op threads spin: quicker on a quiet machine, much slower on a
        busy one, and it takes the cores from whatever runs next.
    """
    import onnxruntime as ort

    _check_threads(threads)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: the optimiser's notes are not the user's problem
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return opts


class OnnxModel:
    """An exported graph (fp32 or int8) in an onnxruntime CPU session.

    Parameters
    ----------
    model : bytes or path
        A serialised graph from :func:`~merlib.inference.export.export_onnx` or
        :func:`~merlib.inference.export.quantize_int8`, or its file.
    threads : int, default=2
        Intra-op threads.
    spin : bool, default=False
        See :func:`session_options`.

    Examples
    --------
    >>> session = OnnxModel(export_onnx(model, 64))          # doctest: +SKIP
    >>> logits, features = session.run(images)               # doctest: +SKIP
    """

    runtime = "onnxruntime"

    def __init__(self, model: bytes | str | os.PathLike, threads: int = DEFAULT_THREADS, *,
                 spin: bool = False) -> None:
        import onnxruntime as ort

        source = model if isinstance(model, bytes) else str(Path(model))
        try:
            self.session = ort.InferenceSession(source, session_options(threads, spin=spin),
                                                providers=["CPUExecutionProvider"])
        except ConfigError:
            raise
        except Exception as err:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
            raise ConfigError(f"model: {_source_name(model)} is not an ONNX graph onnxruntime can load "
                             f"({str(err).splitlines()[0]})") from err
        names = [o.name for o in self.session.get_outputs()]
        if names != list(OUTPUT_NAMES) or self.session.get_inputs()[0].name != INPUT_NAME:
            raise ConfigError(f"model: expected input {INPUT_NAME!r} and outputs {list(OUTPUT_NAMES)}, "
                             f"got {self.session.get_inputs()[0].name!r} and {names}")
        self.threads = threads

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (B, n_classes) and features (B, n_features), float32.

        Parameters
        ----------
        images : ndarray of shape (B, 1, S, S)
            Normalised as the model expects; cast to float32.
        """
        x = np.ascontiguousarray(images, dtype=np.float32)
        logits, features = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        return logits, features


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports (a merlib dependency, optional at run time)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def bf16_supported() -> bool:
    """Whether OpenVINO can run bf16 on this CPU (AVX512_BF16 or AMX); False without OpenVINO."""
    if not openvino_available():
        return False
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoModel:
    """An exported graph compiled by OpenVINO for the CPU.

    Parameters
    ----------
    model : bytes or path
        The fp32 graph.
    threads : int, default=2
    precision : {"fp32", "bf16"}, default="fp32"
        OpenVINO's inference precision: ``fp32`` keeps every op in f32 (asked for
        explicitly: on a CPU with AMX OpenVINO defaults to bf16); ``bf16`` runs the graph
        in bf16 and needs a CPU that has it (:func:`bf16_supported`).

    Attributes
    ----------
    execution_precision : str
        The inference precision the compiled model reports (e.g. ``"f32"``, ``"bf16"``).
    """

    runtime = "openvino"
    HINTS = {"fp32": "f32", "bf16": "bf16"}

    def __init__(self, model: bytes | str | os.PathLike, threads: int = DEFAULT_THREADS,
                 precision: str = "fp32") -> None:
        _check_threads(threads)
        if precision not in self.HINTS:
            why = " (its int8 is not offered: see merlib.inference.runtime)" if precision == "int8" else ""
            raise ConfigError(f"precision: OpenVINO runs one of {tuple(self.HINTS)}, got {precision!r}{why}")
        if "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
            raise ConfigError("openvino: compile_model crashes under tcmalloc (LD_PRELOAD="
                              f"{os.environ['LD_PRELOAD']}); run OpenVINO without it")
        if not openvino_available():
            raise ConfigError("runtime: openvino is not installed (pip install openvino==2026.4.1, "
                              "as pyproject.toml pins it)")
        import openvino as ov

        core = ov.Core()
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise ConfigError("precision: bf16 needs a CPU with AVX512_BF16 or AMX; this one has neither "
                              "(use fp32)")
        name = _source_name(model)
        try:
            graph = core.read_model(model if isinstance(model, bytes) else str(Path(model)))
        except Exception as err:  # OpenVINO raises a bare RuntimeError for any unreadable model
            raise ConfigError(f"model: {name} is not an ONNX graph OpenVINO can read "
                              f"({str(err).strip().splitlines()[0]})") from err
        outputs = [o.get_any_name() for o in graph.outputs]
        if outputs != list(OUTPUT_NAMES) or graph.inputs[0].get_any_name() != INPUT_NAME:
            raise ConfigError(f"model: expected input {INPUT_NAME!r} and outputs {list(OUTPUT_NAMES)}, "
                              f"got {graph.inputs[0].get_any_name()!r} and {outputs}")
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads,
                  "ENABLE_CPU_PINNING": False, "INFERENCE_PRECISION_HINT": self.HINTS[precision]}
        self.compiled = core.compile_model(graph, "CPU", config)
        self._request = self.compiled.create_infer_request()
        self._outputs = [self.compiled.output(n) for n in OUTPUT_NAMES]
        self.threads, self.precision = threads, precision
        self.execution_precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (B, n_classes) and features (B, n_features), float32 (see :meth:`OnnxModel.run`)."""
        x = np.ascontiguousarray(images, dtype=np.float32)
        result = self._request.infer({INPUT_NAME: x})
        # copies: the request's output buffers are overwritten by its next call
        logits, features = (np.array(result[o], dtype=np.float32) for o in self._outputs)
        return logits, features


def open_model(model: bytes | str | os.PathLike, runtime: str = "onnxruntime", precision: str = "fp32",
               threads: int = DEFAULT_THREADS) -> OnnxModel | OpenVinoModel:
    """A graph in the named runtime.

    Parameters
    ----------
    model : bytes or path
        The fp32 graph, or for ``precision="int8"`` the quantised one.
    runtime : {"onnxruntime", "openvino"}
    precision : {"fp32", "bf16", "int8"}
        ``bf16`` only with OpenVINO, ``int8`` only with onnxruntime. For onnxruntime the
        graph decides the precision; this names it.
    threads : int, default=2
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime: expected one of {RUNTIMES}, got {runtime!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if runtime == "onnxruntime":
        if precision == "bf16":
            raise ConfigError("precision: onnxruntime has no bf16 CPU path here; use runtime 'openvino'")
        return OnnxModel(model, threads)
    return OpenVinoModel(model, threads, precision)
