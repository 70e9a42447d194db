"""The SVM as arrays reproduces scikit-learn; bundles round-trip and refuse other formats."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from sklearn.dummy import DummyClassifier

from merlib.inference.bundle import IncompatibleBundleError, load_bundle
from merlib.inference.svm import ArraySVM, svm_to_arrays
from merlib.training.svm import make_svm


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_array_svm_reproduces_sklearn(kernel: str, n_classes: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 12))
    y = rng.integers(0, n_classes, 90)
    X[:, 0] += 1.5 * y
    model = make_svm(1.0, kernel).fit(X, y)
    svm = ArraySVM(*svm_to_arrays(model))
    T = rng.normal(size=(60, 12))
    np.testing.assert_array_equal(svm.predict(T), model.predict(T))
    expected = model.decision_function(T)
    got = svm.decision_function(T)
    np.testing.assert_allclose(got[:, 1] if n_classes == 2 else got, expected, atol=1e-9)


def test_scores_by_label_leave_a_class_the_svm_never_saw_empty() -> None:
    # A training set without class 1 (e.g. no positive sample among its subjects): the
    # model's head still has three labels, the SVM two.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 5))
    y = np.where(rng.random(40) < 0.5, 0, 2)
    X[:, 0] += 2.0 * (y == 2)
    svm = ArraySVM(*svm_to_arrays(make_svm(1.0, "linear").fit(X, y)))
    got = svm.scores_by_label(X[:7], 3)
    assert got.shape == (7, 3) and np.isnan(got[:, 1]).all()
    np.testing.assert_array_equal(got[:, [0, 2]], svm.decision_function(X[:7]))
    with pytest.raises(Exception, match="outside the 2 labels"):
        svm.scores_by_label(X[:7], 2)


def test_constant_classifier() -> None:
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((4, 2)), np.array([2, 2, 2, 2]))
    svm = ArraySVM(*svm_to_arrays(dummy))
    np.testing.assert_array_equal(svm.predict(np.ones((3, 2))), [2, 2, 2])


def test_bundle_round_trip(model_dir: Path, bundle_dir: Path) -> None:
    from merlib.inference.predict import Predictor
    from merlib.training.crops import synthetic_crop_set

    meta = json.loads((bundle_dir / "bundle.json").read_text())
    assert meta["format"] == "merlib-bundle" and meta["arch"] == "mobilevit_xxs" and meta["image_size"] == 64
    assert meta["bundle_format"] == 1  # no early grid: older merlib versions still read it
    assert meta["onnx"]["agreement"]["fp32"]["argmax_agree"] == 1.0
    assert meta["onnx"]["agreement"]["fp32"]["max_logit_diff"] < 1e-4
    assert not list(bundle_dir.glob("*.pkl")) and not list(bundle_dir.glob("*.pickle"))
    # The bundle's SVM arrays are the model folder's, byte for byte.
    a, b = load_file(str(model_dir / "svm.safetensors")), load_file(str(bundle_dir / "svm.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    crops = synthetic_crop_set(2, 6, 64, seed=5)
    onnx = Predictor(bundle_dir).classify(crops.X)
    eager = Predictor(model_dir, runtime="torch").classify(crops.X)
    assert list(onnx["label"]) == list(eager["label"])
    np.testing.assert_allclose(onnx.filter(like="p_").to_numpy(), eager.filter(like="p_").to_numpy(), atol=1e-5)
    np.testing.assert_allclose(onnx.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)


def test_incompatible_bundle_is_one_clear_error(bundle_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(bundle_dir, copy)
    meta = json.loads((copy / "bundle.json").read_text())
    meta["bundle_format"] = 0
    meta["versions"]["merlib"] = "0.0.1"
    (copy / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleBundleError, match=r"bundle format 0 \(written by merlib 0.0.1\).*reads formats 1, 2"):
        load_bundle(copy)
    with pytest.raises(Exception, match="no bundle.json"):
        load_bundle(tmp_path)


def test_model_folder_needs_export_for_onnxruntime(model_dir: Path) -> None:
    from merlib.errors import ConfigError
    from merlib.inference.predict import Predictor

    with pytest.raises(ConfigError, match="run `merlib export`"):
        Predictor(model_dir, runtime="onnxruntime")


def test_early_grid_model_round_trip(tmp_path: Path) -> None:
    """A model whose SVM reads the early grid: fit, export and both runtimes agree."""
    from merlib.config import Profile
    from merlib.inference.bundle import export_bundle, load_bundle
    from merlib.inference.predict import Predictor, fit_model
    from merlib.training.crops import synthetic_crop_set

    cfg = Profile.smoke().micro.replace(epochs=1, svm_kernels=("linear",), svm_early_grid=2)
    fit_model(synthetic_crop_set(4, 6, 64), cfg, tmp_path / "model", seed=0)
    export_bundle(tmp_path / "model", tmp_path / "bundle", exporter="torchscript")
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.early_grid == 2 and bundle.meta["bundle_format"] == 2  # a format-1 reader would not compute the grid
    assert bundle.meta["onnx"]["agreement"]["fp32"]["max_feature_diff"] < 1e-3
    crops = synthetic_crop_set(2, 6, 64, seed=5)
    onnx = Predictor(bundle).classify(crops.X)
    eager = Predictor(tmp_path / "model", runtime="torch").classify(crops.X)
    assert list(onnx["label"]) == list(eager["label"])
    # The SVM scores need the grid: 24 * 2 * 2 + 320 features, as it was fitted on.
    np.testing.assert_allclose(onnx.filter(like="svm_").to_numpy(), eager.filter(like="svm_").to_numpy(), atol=1e-3)
    # Features of another width than the SVM's (a bundle.json edited to drop the grid): one named error.
    meta = json.loads((tmp_path / "model" / "bundle.json").read_text())
    meta["finetune"]["svm_early_grid"] = 0
    (tmp_path / "model" / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(IncompatibleBundleError, match=r"gives 320 features, its SVM was fitted on 416"):
        Predictor(tmp_path / "model", runtime="torch").classify(crops.X)
