"""A trained backbone -> an ONNX graph with two outputs, and checks that it still agrees.

The graph maps ``image`` (B, 1, S, S) float32, already normalised as the model expects
(:func:`~merlib.models.backbone.input_normalisation`), to

- ``logits`` (B, n_classes): the network's own classifier (the softmax alternative);
- ``features`` (B, n_features): the SVM's input, the pre-logits vector (MobileViT-S: 640),
  with the early grid in front when the model was trained with ``svm_early_grid`` > 0
  (:class:`~merlib.models.features.LogitsAndFeatures`).

The batch axis is dynamic. Two exporters of torch are offered:

- ``"dynamo"`` (default): ``torch.export`` then ONNX opset 18, the exporter torch
  maintains; needs the ``onnxscript`` package. About 10-20 s for MobileViT.
- ``"torchscript"``: the older tracing exporter, about ten times quicker to run (tests
  use it); torch marks it deprecated.

Both gave logits within 1e-5 of eager torch on MobileViT (see ``tests/inference``).

Reduced precision: :func:`quantize_int8` writes a statically quantised (QDQ) copy
calibrated on training crops; bf16 needs no graph of its own (OpenVINO runs the fp32 graph
in bf16, :mod:`merlib.inference.runtime`). Whether a reduced precision is *used* is decided
by its argmax agreement with fp32 (:data:`MIN_AGREEMENT`), never assumed.
"""
from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from merlib.errors import ConfigError
from merlib.models.features import LogitsAndFeatures

EXPORTERS: tuple[str, ...] = ("dynamo", "torchscript")
OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAMES: tuple[str, str] = ("logits", "features")
#: A reduced precision (bf16, int8) is used by default only when its argmax agrees with
#: fp32 on at least this fraction of held-out crops (issue 10).
MIN_AGREEMENT = 0.99


def export_onnx(model: nn.Module, image_size: int, path: str | os.PathLike | None = None, *,
                exporter: str = "dynamo", opset: int = OPSET, early_grid: int = 0) -> bytes:
    """Export ``model`` to ONNX with a dynamic batch axis; returns the serialised graph.

    Parameters
    ----------
    model : torch.nn.Module
        On the CPU, fp32.
    image_size : int
        Input side S (the ViTs are built for one size; the others accept any multiple of
        32, but the exported graph is checked at this one).
    path : path, optional
        Also write the graph there (one self-contained file, no external data).
    exporter : {"dynamo", "torchscript"}
    opset : int, default=18
    early_grid : int, default=0
        The model's ``svm_early_grid`` (what its SVM was fitted on).

    Returns
    -------
    bytes
        The ONNX ModelProto, serialised.
    """
    if exporter not in EXPORTERS:
        raise ConfigError(f"exporter: expected one of {EXPORTERS}, got {exporter!r}")
    wrapper = LogitsAndFeatures(model, early_grid).cpu().float()
    # Batch 2 while tracing: a batch of 1 lets an exporter specialise the batch axis away.
    example = (torch.zeros(2, 1, image_size, image_size),)
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warnings (Python-side shape arithmetic in timm, the deprecation notice
        # of the torchscript exporter) say nothing about this graph: its outputs are
        # checked against eager torch by check_agreement.
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=4096)
            program = torch.onnx.export(wrapper, example, None, dynamo=True, opset_version=opset,
                                        external_data=False, input_names=[INPUT_NAME],
                                        output_names=list(OUTPUT_NAMES),
                                        dynamic_shapes={"image": {0: batch}}, verbose=False)
            data = program.model_proto.SerializeToString()
        else:
            buf = io.BytesIO()
            torch.onnx.export(wrapper, example, buf, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamic_axes={n: {0: "batch"} for n in (INPUT_NAME, *OUTPUT_NAMES)})
            data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


@dataclass(frozen=True)
class Agreement:
    """How far a runtime's outputs are from the fp32 torch model on the same images.

    Attributes
    ----------
    n : int
        Images compared.
    max_logit_diff : float
        Largest absolute difference of any logit.
    max_feature_diff : float
        Largest absolute difference of any pre-logits feature.
    argmax_agree : float
        Fraction of images whose softmax class is the same, in [0, 1].
    """

    n: int
    max_logit_diff: float
    max_feature_diff: float
    argmax_agree: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def torch_outputs(model: nn.Module, images: np.ndarray, batch_size: int = 32,
                  early_grid: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), features (N, F)) of eager torch, float32, in image order.

    ``images`` is (N, 1, S, S) float32, normalised; ``early_grid`` as in :func:`export_onnx`.
    """
    wrapper = LogitsAndFeatures(model, early_grid)
    logits, feats = [], []
    for i in range(0, len(images), batch_size):
        out = wrapper(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])))
        logits.append(out[0].numpy())
        feats.append(out[1].numpy())
    return np.concatenate(logits), np.concatenate(feats)


def compare(reference: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]) -> Agreement:
    """:class:`Agreement` of two (logits, features) pairs of the same images."""
    (ref_l, ref_f), (l, f) = reference, other
    if ref_l.shape != l.shape or ref_f.shape != f.shape:
        raise ValueError(f"other: expected logits {ref_l.shape} and features {ref_f.shape}, "
                         f"got {l.shape} and {f.shape}")
    return Agreement(n=len(ref_l), max_logit_diff=float(np.abs(ref_l - l).max()),
                     max_feature_diff=float(np.abs(ref_f - f).max()),
                     argmax_agree=float((ref_l.argmax(1) == l.argmax(1)).mean()))


def check_agreement(model: nn.Module, session: Any, images: np.ndarray, *, one_by_one: bool = False,
                    early_grid: int = 0) -> Agreement:
    """Compare a runtime (:mod:`merlib.inference.runtime`) with eager torch.

    Parameters
    ----------
    model : torch.nn.Module
        The fp32 reference.
    session : OnnxModel or OpenVinoModel
        Anything with ``run(images) -> (logits, features)``.
    images : ndarray of shape (N, 1, S, S), float32
        Held-out crops, normalised.
    one_by_one : bool, default=False
        Run the images through ``session`` one at a time (the batch-1 path that latency
        is timed on) instead of as one batch.
    early_grid : int, default=0
        As the graph was exported with (:func:`export_onnx`).
    """
    if one_by_one:
        outs = [session.run(images[i:i + 1]) for i in range(len(images))]
        other = (np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs]))
    else:
        other = session.run(images)
    return compare(torch_outputs(model, images, early_grid=early_grid), other)


def quantize_int8(onnx_model: bytes, calibration: np.ndarray, *, per_channel: bool = True,
                  activations: str = "uint8") -> bytes:
    """Static int8 quantisation (QDQ) of an exported graph, calibrated on ``calibration``.

    Weights are int8, activations uint8 by default: that is the pair onnxruntime's x86
    kernels (VNNI / AMX) fuse. With int8 activations it fused only 6 of MobileViT-S's 35
    convolutions into ``QLinearConv``; the rest ran as dequantise -> fp32 Conv ->
    quantise, with about 700 (de)quantisation nodes left in the optimised graph, and the
    whole ran at twice the uint8 graph's time (and slower than fp32). Even fused, int8 was
    barely quicker than fp32 on a CPU with VNNI and AMX (23.5 vs 25.1 ms, 2 threads): at
    batch 1 MobileViT-S spends much of its time in small element-wise ops (SiLU,
    LayerNorm, softmax, each a QLinear op or a dequantise/quantise pair), not in the
    products int8 speeds up; OpenVINO's bf16 took 13.5 ms.

    Parameters
    ----------
    onnx_model : bytes
        An fp32 graph from :func:`export_onnx`.
    calibration : ndarray of shape (N, 1, S, S), float32
        Training crops, normalised (never the test subject's): the activation ranges
        are their min/max.
    per_channel : bool, default=True
        Per-output-channel weight scales (convolutions with few channels lose much less).
    activations : {"uint8", "int8"}, default="uint8"

    Returns
    -------
    bytes
        The quantised graph. Check it with :func:`check_agreement` before using it.
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    kinds = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    if activations not in kinds:
        raise ConfigError(f"activations: expected one of {tuple(kinds)}, got {activations!r}")
    if calibration.ndim != 4 or len(calibration) == 0:
        raise ConfigError(f"calibration: expected images of shape (N, 1, S, S) with N >= 1, "
                         f"got {calibration.shape}")

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{INPUT_NAME: calibration[i:i + 1].astype(np.float32)}
                                for i in range(len(calibration))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    root_logger = logging.getLogger()
    level = root_logger.level
    with tempfile.TemporaryDirectory() as tmp:
        fp32, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        # The quantiser logs a warning per LayerNorm / Conv bias it leaves in float
        # ("Expected bias ... to be an initializer") on the root logger: expected here
        # (biases that are computed by folded graphs stay fp32), and hundreds of lines.
        root_logger.setLevel(logging.ERROR)
        fp32.write_bytes(onnx_model)
        # Shape inference and graph clean-up first, as onnxruntime recommends for
        # quantisation, with its basic (portable) optimisations: the torchscript export
        # reaches weights through Identity nodes, and a weight that is not an
        # initializer is not quantised (8 of MobileViT-XXS's 35 Conv fused without this, 33 with).
        quant_pre_process(str(fp32), str(pre), skip_optimization=False)
        quantize_static(str(pre), str(out), _Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=kinds[activations], weight_type=QuantType.QInt8,
                        per_channel=per_channel)
        root_logger.setLevel(level)
        return out.read_bytes()
