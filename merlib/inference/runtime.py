"""onnxruntime sessions for the exported graphs, with the thread settings measured here.

On a 2-core CPU one session with ``intra_op_num_threads=2``, sequential execution and
every graph optimisation (``ORT_ENABLE_ALL``: constant folding, node fusions, layout
changes) ran MobileViT-S in about 0.4x the time of timm eager (bench/inference.py).
Inter-op parallelism is left at 1: the graph is a chain, and a second pool would only
compete for the same two cores.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from merlib.errors import ConfigError
from merlib.inference.export import INPUT_NAME, OUTPUT_NAMES

#: Default intra-op threads (the cores of the machines this was measured on).
DEFAULT_THREADS = 2


def session_options(threads: int = DEFAULT_THREADS):
    """``onnxruntime.SessionOptions`` for low-latency CPU inference on ``threads`` cores."""
    import onnxruntime as ort

    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads: expected an int >= 1, got {threads!r}")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: the optimiser's notes are not the user's problem
    return opts


class OnnxModel:
    """An exported graph in an onnxruntime CPU session.

    Parameters
    ----------
    model : bytes or path
        A serialised graph from :func:`~merlib.inference.export.export_onnx`, or its file.
    threads : int, default=2
        Intra-op threads.

    Examples
    --------
    >>> session = OnnxModel(export_onnx(model, 64))          # doctest: +SKIP
    >>> logits, features = session.run(images)               # doctest: +SKIP
    """

    def __init__(self, model: bytes | str | os.PathLike, threads: int = DEFAULT_THREADS) -> None:
        import onnxruntime as ort

        source = model if isinstance(model, bytes) else str(Path(model))
        try:
            self.session = ort.InferenceSession(source, session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
            where = "the given graph" if isinstance(model, bytes) else str(model)
            raise ConfigError(f"model: {where} is not an ONNX graph onnxruntime can load "
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
