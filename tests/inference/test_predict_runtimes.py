"""merlib predict in each runtime the bundle's graph can run in."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from merlib.errors import ConfigError
from merlib.inference.predict import Predictor


def _crops(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 256, 256), dtype=np.uint8)


def test_openvino_gives_the_onnxruntime_outputs(bundle_dir: Path) -> None:
    pytest.importorskip("openvino")
    images = Predictor(bundle_dir, runtime="onnxruntime").prepare(_crops())
    ort_logits, ort_feat = Predictor(bundle_dir, runtime="onnxruntime").forward(images)
    ov_logits, ov_feat = Predictor(bundle_dir, runtime="openvino", precision="fp32").forward(images)
    assert ov_logits.shape == ort_logits.shape == (4, 3)
    np.testing.assert_allclose(ov_logits, ort_logits, atol=1e-3)
    np.testing.assert_allclose(ov_feat, ort_feat, atol=1e-3)
    # auto on an fp32 bundle is onnxruntime, the same numbers.
    auto_logits, _ = Predictor(bundle_dir).forward(images)
    np.testing.assert_array_equal(auto_logits, ort_logits)


def test_unknown_runtime_is_named(bundle_dir: Path) -> None:
    with pytest.raises(ConfigError, match="runtime: expected one of .*'openvino'.*got 'tensorrt'"):
        Predictor(bundle_dir, runtime="tensorrt")
