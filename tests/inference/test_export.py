"""ONNX export and onnxruntime agree with eager torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from merlib.errors import ConfigError
from merlib.inference.export import check_agreement, export_onnx, torch_outputs
from merlib.inference.runtime import OnnxModel
from merlib.models.backbone import create_backbone


@pytest.fixture(scope="module")
def xxs() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone("mobilevit_xxs", image_size=64).eval()


def test_onnxruntime_matches_torch(xxs: torch.nn.Module) -> None:
    session = OnnxModel(export_onnx(xxs, 64, exporter="torchscript"), threads=1)
    images = np.random.default_rng(1).random((7, 1, 64, 64), dtype=np.float32)  # a batch size not traced
    agree = check_agreement(xxs, session, images)
    assert agree.n == 7
    assert agree.max_logit_diff < 1e-4
    assert agree.max_feature_diff < 1e-3
    assert agree.argmax_agree == 1.0
    logits, features = session.run(images[:1])
    assert logits.shape == (1, 3) and features.shape == (1, 320)  # XXS pre-logits: 320


def test_torch_outputs_are_the_model_logits(xxs: torch.nn.Module) -> None:
    images = np.random.default_rng(2).random((3, 1, 64, 64), dtype=np.float32)
    logits, _ = torch_outputs(xxs, images)
    with torch.no_grad():
        direct = xxs(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(logits, direct, atol=1e-6)


def test_bad_exporter_and_bad_graph(xxs: torch.nn.Module) -> None:
    with pytest.raises(ConfigError, match="exporter: expected one of"):
        export_onnx(xxs, 64, exporter="tflite")
    with pytest.raises(ConfigError, match="not an ONNX graph"):
        OnnxModel(b"not a graph")


def test_onnx_graph_carries_the_early_grid(xxs: torch.nn.Module) -> None:
    session = OnnxModel(export_onnx(xxs, 64, exporter="torchscript", early_grid=4), threads=1)
    images = np.random.default_rng(3).random((3, 1, 64, 64), dtype=np.float32)
    agree = check_agreement(xxs, session, images, early_grid=4)
    assert agree.max_feature_diff < 1e-3 and agree.argmax_agree == 1.0
    logits, features = session.run(images)
    assert logits.shape == (3, 3) and features.shape == (3, 24 * 16 + 320)
    _, plain = torch_outputs(xxs, images)
    np.testing.assert_allclose(features[:, 384:], plain, atol=1e-4)
