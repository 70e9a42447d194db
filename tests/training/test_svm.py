import numpy as np
import pytest
from sklearn.svm import SVC

from merlib.training.svm import UF1_SCORER, fit_svm


def _clusters(y, seed=0):
    centres = np.array([[0, 0], [4, 0], [0, 4]], float)
    return centres[y] + np.random.default_rng(seed).normal(scale=0.3, size=(len(y), 2))


def test_uf1_scorer_accepts_a_classifier_trained_on_two_classes():
    y = np.array([0, 2] * 10)
    X = _clusters(y)
    # Both classes perfectly recalled; the absent class 1 counts as F1 0: UF1 = 2/3.
    assert UF1_SCORER(SVC(kernel="linear").fit(X, y), X, y) == pytest.approx(2 / 3)


def test_inner_split_missing_a_class_is_scored_by_hand():
    """Subject 0 holds all of class 1, so one inner training split lacks it.

    Inner folds (one subject each): subjects 1-3 hold classes 0 and 2, recalled
    perfectly -> UF1 2/3 each; subject 0's class-1 samples can only be missed -> 0.
    Mean 0.5, for every C. (Before the fix the two-class fold raised inside the scorer.)
    """
    y = np.array([1] * 6 + [0, 2] * 9)
    groups = np.array([0] * 6 + [1, 1, 2, 2, 3, 3] * 3)
    X = _clusters(y)
    model, info = fit_svm(X, y, groups, Cs=(0.1, 1.0), kernels=("linear",), inner_splits=4)
    assert info["inner_uf1"] == pytest.approx(0.5)
    assert (model.predict(X) == y).mean() == 1.0


def test_single_class_inner_training_splits_are_skipped_or_fall_back():
    # Two subjects, one class each: every inner training split holds one class.
    y = np.array([0] * 5 + [2] * 5)
    groups = np.array([0] * 5 + [1] * 5)
    X = _clusters(y)
    model, info = fit_svm(X, y, groups, Cs=(0.1, 1.0), kernels=("linear",), inner_splits=2)
    assert np.isnan(info["inner_uf1"]) and info["C"] == 0.1
    assert set(model.predict(X)) == {0, 2}


def test_one_class_training_set_predicts_that_class():
    y = np.array([2] * 6)
    model, info = fit_svm(_clusters(y), y, np.array([0, 0, 1, 1, 2, 2]))
    assert info["kernel"].startswith("constant")
    assert (model.predict(_clusters(np.array([0, 1]))) == 2).all()


def test_search_settings_come_from_the_config():
    from merlib.config import FinetuneConfig
    from merlib.training.svm import search_settings

    cfg = FinetuneConfig(svm_C=(1.0, 10.0), svm_kernels=("linear",), svm_inner_splits=4, svm_class_weight=None)
    assert search_settings(cfg) == {"Cs": (1.0, 10.0), "kernels": ("linear",), "inner_splits": 4,
                                    "class_weight": None}
