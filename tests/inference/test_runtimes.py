"""Each runtime and precision agrees with fp32 torch on a few crops (no timing here).

The OpenVINO tests skip where the ``openvino`` package is not installed, the bf16 ones
where the CPU has no bf16 (AVX512_BF16 / AMX).
"""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from merlib.errors import ConfigError
from merlib.inference.export import check_agreement, export_onnx, quantize_int8
from merlib.inference.runtime import OnnxModel, bf16_supported, open_model, openvino_available, session_options
from merlib.models.backbone import create_backbone, input_normalisation

needs_openvino = pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")
needs_bf16 = pytest.mark.skipif(not bf16_supported(), reason="no OpenVINO, or no bf16 in this CPU")


@pytest.fixture(scope="module")
def xxs() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone("mobilevit_xxs", image_size=64).eval()


@pytest.fixture(scope="module")
def graph(xxs: torch.nn.Module) -> bytes:
    return export_onnx(xxs, 64, exporter="torchscript")


@pytest.fixture(scope="module")
def crops(xxs: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """(check, calibration): toy face-like crops of different seeds, normalised."""
    from merlib.inference.latency import check_images

    mean, std = input_normalisation(xxs)
    return check_images(12, 64, 1, mean, std), check_images(12, 64, 2, mean, std)


def _feature_error(model: torch.nn.Module, session, images: np.ndarray) -> float:
    """||features - fp32 torch's|| / ||fp32 torch's|| over the batch. On these random
    weights (logits of about 0.01, too small to compare) int8 gave 0.10, bf16 0.02, and a
    graph fed the wrong images (a broken export's kind of error) 0.56."""
    from merlib.inference.export import torch_outputs

    ref = torch_outputs(model, images)[1]
    return float(np.linalg.norm(session.run(images)[1] - ref) / np.linalg.norm(ref))


def test_int8_graph_is_fused_and_agrees(xxs: torch.nn.Module, graph: bytes, crops, tmp_path: Path) -> None:
    """uint8 activations: onnxruntime turns the Conv into QLinearConv (int8 activations, or
    weights behind Identity nodes, left most of them as dequantise -> fp32 Conv -> quantise)."""
    import onnxruntime as ort

    check, calibration = crops
    q = quantize_int8(graph, calibration)
    opts = session_options(1)
    opts.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(q, opts, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    n_conv = sum(n.op_type == "Conv" for n in onnx.load_from_string(graph).graph.node)
    # (the torchscript graph leaves 2 of XXS's 35 in fp32; the dynamo graph none)
    assert ops["QLinearConv"] >= 0.9 * n_conv and ops["QLinearConv"] + ops["Conv"] == n_conv, ops
    assert _feature_error(xxs, OnnxModel(q, threads=1), check) < 0.25
    with pytest.raises(ConfigError, match="activations: expected one of"):
        quantize_int8(graph, calibration, activations="fp8")


def test_open_model_refuses_what_a_runtime_lacks(graph: bytes) -> None:
    with pytest.raises(ConfigError, match="onnxruntime has no bf16"):
        open_model(graph, "onnxruntime", "bf16")
    with pytest.raises(ConfigError, match="runtime: expected one of"):
        open_model(graph, "tensorrt")
    with pytest.raises(ConfigError, match="precision: expected one of"):
        open_model(graph, "onnxruntime", "fp16")
    with pytest.raises(ConfigError, match="threads: expected an int"):
        OnnxModel(graph, threads=0)


@needs_openvino
def test_openvino_fp32_matches_torch(xxs: torch.nn.Module, graph: bytes, crops) -> None:
    session = open_model(graph, "openvino", "fp32", threads=1)
    assert session.execution_precision == "f32"  # asked for: OpenVINO's default is bf16 on AMX CPUs
    check, _ = crops
    for one_by_one in (False, True):
        agree = check_agreement(xxs, session, check, one_by_one=one_by_one)
        assert agree.n == 12 and agree.argmax_agree == 1.0
        assert agree.max_logit_diff < 1e-4 and agree.max_feature_diff < 1e-3
    logits, features = session.run(check[:1])
    assert logits.shape == (1, 3) and features.shape == (1, 320) and logits.dtype == np.float32


@needs_bf16
def test_openvino_bf16_agrees_with_fp32(xxs: torch.nn.Module, graph: bytes, crops) -> None:
    session = open_model(graph, "openvino", "bf16", threads=1)
    assert session.execution_precision == "bf16"
    check, _ = crops
    # bf16 keeps 8 bits of mantissa: features move by a few percent, not more (nor 0: fp32)
    assert 0 < _feature_error(xxs, session, check) < 0.08


@needs_openvino
def test_openvino_refusals(graph: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from merlib.inference.runtime import OpenVinoModel

    with pytest.raises(ConfigError, match="int8 is not offered"):
        open_model(graph, "openvino", "int8")
    with pytest.raises(ConfigError, match="not an ONNX graph OpenVINO can read"):
        OpenVinoModel(b"not a graph")
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
    with pytest.raises(ConfigError, match="crashes under tcmalloc"):
        OpenVinoModel(graph)


@needs_bf16
def test_latency_rows_of_openvino(crops) -> None:
    from merlib.inference.latency import measure_latency

    check, calibration = crops
    rows = measure_latency("mobilevit_xxs", ["openvino", "openvino-bf16", "onnxruntime-int8"], rounds=1,
                           warmup=0, image_size=64, exporter="torchscript", check=check, calibration=calibration)
    assert [r.runtime for r in rows] == ["eager", "openvino", "openvino-bf16", "onnxruntime-int8"]
    assert all(r.n_check == 12 and r.median_ms > 0 for r in rows)
    assert rows[1].argmax_agree == 1.0 and rows[1].max_logit_diff < 1e-4
    assert rows[2].max_logit_diff > 0  # really bf16 (its closeness: test_openvino_bf16_agrees_with_fp32)


def test_latency_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import merlib.inference.latency as latency

    monkeypatch.setattr(latency, "openvino_available", lambda: False)
    ok, skipped = latency.available_runtimes(["eager", "onnxruntime", "openvino-bf16"])
    assert ok == ["eager", "onnxruntime"] and "not installed" in skipped["openvino-bf16"]
    with pytest.raises(ConfigError, match="openvino-bf16: openvino is not installed"):
        latency.measure_latency("mobilevit_xxs", ["openvino-bf16"], rounds=1, image_size=64)


@needs_bf16
def test_bundle_bf16_opens_in_openvino(model_dir: Path, tmp_path: Path) -> None:
    from merlib.inference.bundle import export_bundle, load_bundle
    from merlib.inference.runtime import OpenVinoModel

    images = np.random.default_rng(5).random((6, 1, 64, 64), dtype=np.float32)
    record = export_bundle(model_dir, tmp_path / "b", check_images=images, precision="bf16", exporter="torchscript")
    assert record["default"] == "bf16" and record["graphs"]["bf16"] == record["graphs"]["fp32"] == "model.onnx"
    assert record["runtimes"] == {"fp32": "onnxruntime", "bf16": "openvino"}
    assert record["agreement"]["bf16"]["n"] == 6 and record["agreement"]["bf16"]["max_logit_diff"] > 0
    assert json.loads((tmp_path / "b" / "bundle.json").read_text())["versions"]["openvino"]
    bundle = load_bundle(tmp_path / "b")
    session = bundle.open(threads=1)
    assert isinstance(session, OpenVinoModel) and session.execution_precision == "bf16"
    assert isinstance(bundle.open(precision="fp32", threads=1), OnnxModel)
    agree = check_agreement(bundle.torch_model(), session, images)
    assert agree.max_logit_diff == pytest.approx(record["agreement"]["bf16"]["max_logit_diff"], abs=1e-5)
