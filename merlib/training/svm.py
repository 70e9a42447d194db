"""The SVM classifier on pre-logits features, its hyper-parameters chosen on training
subjects only.

A :class:`~sklearn.pipeline.Pipeline` of :class:`~sklearn.preprocessing.StandardScaler`
and :class:`~sklearn.svm.SVC`; C and the kernel are picked by
:class:`~sklearn.model_selection.GridSearchCV` over subject-wise folds
(:class:`~sklearn.model_selection.GroupKFold`) of the training features, scored by UF1.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.metrics import f1_score, make_scorer
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from merlib.data.schema import LABELS

if TYPE_CHECKING:
    from merlib.config import FinetuneConfig

#: UF1 over the three class codes, as a scikit-learn scorer. ``pos_label=None``: an inner
#: training split may hold two classes only, and the scorer would then check f1's default
#: binary ``pos_label=1`` against them and fail, although macro averaging never uses it.
UF1_SCORER = make_scorer(f1_score, average="macro", labels=list(range(len(LABELS))),
                         zero_division=0, pos_label=None)


def make_svm(C: float = 1.0, kernel: str = "rbf", *, class_weight: str | None = "balanced",
             seed: int = 0) -> Pipeline:
    """Standardise the features, then an SVC (``svc__C``, ``svc__kernel``)."""
    return make_pipeline(StandardScaler(), SVC(C=C, kernel=kernel, gamma="scale",
                                               class_weight=class_weight, random_state=seed))


def search_settings(cfg: FinetuneConfig) -> dict[str, Any]:
    """:func:`fit_svm`'s search keywords from a :class:`~merlib.config.FinetuneConfig`
    (``svm_C``, ``svm_kernels``, ``svm_inner_splits``, ``svm_class_weight``); the seed
    is the caller's."""
    return {"Cs": cfg.svm_C, "kernels": cfg.svm_kernels, "inner_splits": cfg.svm_inner_splits,
            "class_weight": cfg.svm_class_weight}


def fit_svm(features: np.ndarray, y: np.ndarray, groups: np.ndarray, *,
            Cs: Sequence[float] = (0.1, 1.0, 10.0, 100.0), kernels: Sequence[str] = ("linear", "rbf"),
            inner_splits: int = 3, class_weight: str | None = "balanced",
            seed: int = 0) -> tuple[Pipeline | DummyClassifier, dict[str, Any]]:
    """Fit the SVM on training features, choosing C and kernel on training subjects.

    Parameters
    ----------
    features : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), int
    groups : ndarray of shape (n_samples,)
        Subject keys; the inner folds split them (never the test subject: it is not here).
    Cs, kernels : sequences
    inner_splits : int
        Capped at the number of subjects; with one subject (or one value each), or when
        no inner training split holds two classes, the first values are used without a
        search. Inner splits whose training part holds a single class are skipped.

    Returns
    -------
    model : Pipeline, fitted on all of ``features`` (a most-frequent DummyClassifier
        when ``y`` holds a single class)
    info : dict
        ``C``, ``kernel`` and ``inner_uf1`` (NaN when nothing was searched).
    """
    if len(features) != len(y) or len(y) != len(groups):
        raise ValueError(f"features, y, groups: expected equal lengths, got "
                         f"{len(features)}, {len(y)}, {len(groups)}")
    if len(np.unique(y)) < 2:
        # Nothing to separate (tiny data sets): the only honest answer is that class.
        model = DummyClassifier(strategy="most_frequent").fit(features, y)
        return model, {"C": float("nan"), "kernel": "constant (one class in training)",
                       "inner_uf1": float("nan")}
    n_subjects = len(np.unique(groups))
    grid = {"svc__C": list(Cs), "svc__kernel": list(kernels)}
    if n_subjects < 2 or len(Cs) * len(kernels) == 1:
        model = make_svm(Cs[0], kernels[0], class_weight=class_weight, seed=seed).fit(features, y)
        return model, {"C": float(Cs[0]), "kernel": kernels[0], "inner_uf1": float("nan")}
    cv = GroupKFold(n_splits=min(inner_splits, n_subjects), shuffle=True, random_state=seed)
    # A split whose training subjects show a single class cannot fit an SVC at all (tiny
    # data sets): it is left out rather than scored as a failure.
    splits = [(tr, te) for tr, te in cv.split(features, y, groups) if len(np.unique(y[tr])) >= 2]
    if not splits:
        model = make_svm(Cs[0], kernels[0], class_weight=class_weight, seed=seed).fit(features, y)
        return model, {"C": float(Cs[0]), "kernel": kernels[0], "inner_uf1": float("nan")}
    search = GridSearchCV(make_svm(class_weight=class_weight, seed=seed), grid, scoring=UF1_SCORER,
                          cv=splits, refit=True, n_jobs=1, error_score="raise")
    search.fit(features, y, groups=groups)
    best = search.best_params_
    return search.best_estimator_, {"C": float(best["svc__C"]), "kernel": best["svc__kernel"],
                                    "inner_uf1": float(search.best_score_)}
