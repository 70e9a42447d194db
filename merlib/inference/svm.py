"""The fitted SVM as plain arrays, and its prediction in NumPy: no pickle in a bundle.

:func:`merlib.training.svm.fit_svm` returns a scikit-learn Pipeline (StandardScaler then
SVC) or, when training held one class, a DummyClassifier. Pickling either would make a
bundle executable code; instead :func:`svm_to_arrays` keeps what prediction needs:

- the scaler's ``mean_`` and ``scale_``;
- the SVC's support vectors grouped by class, their dual coefficients, the intercepts
  of the one-vs-one problems, the kernel and its resolved parameters (``gamma="scale"``
  is fixed at fit time);

and :class:`ArraySVM` predicts from them as libsvm does: each one-vs-one problem votes,
the most votes win (ties: the lower class code), and ``decision_function`` is
scikit-learn's one-vs-rest transform of the votes and confidences.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from merlib.errors import ConfigError

KERNELS: tuple[str, ...] = ("linear", "rbf", "poly", "sigmoid")


def svm_to_arrays(model: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and settings of a fitted ``fit_svm`` model.

    Parameters
    ----------
    model : Pipeline (StandardScaler, SVC) or DummyClassifier

    Returns
    -------
    arrays : dict of str to ndarray
        float64 / int64 arrays (safetensors-ready).
    info : dict
        JSON-ready: ``kind`` ("svc" or "constant"), ``kernel``, ``gamma``, ``coef0``,
        ``degree``, ``classes``.
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if isinstance(model, DummyClassifier):
        # A most-frequent dummy: always the one class seen in training.
        constant = int(model.classes_[int(np.argmax(model.class_prior_))])
        return ({"classes": np.asarray(model.classes_, np.int64)},
                {"kind": "constant", "constant": constant, "classes": [int(c) for c in model.classes_]})
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise ConfigError(f"model: expected fit_svm's Pipeline(StandardScaler, SVC) or a DummyClassifier, "
                         f"got {type(model).__name__}")
    scaler, svc = model.steps[0][1], model.steps[1][1]
    if not isinstance(scaler, StandardScaler) or not isinstance(svc, SVC):
        raise ConfigError(f"model: expected steps StandardScaler, SVC, got "
                         f"{type(scaler).__name__}, {type(svc).__name__}")
    if svc.kernel not in KERNELS:
        raise ConfigError(f"model: kernel {svc.kernel!r} cannot be stored; expected one of {KERNELS}")
    # libsvm's own (unflipped) coefficients: scikit-learn negates the public dual_coef_
    # and intercept_ for two classes, the private ones keep libsvm's convention in all
    # cases, which is what the voting below follows.
    arrays = {
        "scaler_mean": np.asarray(scaler.mean_, np.float64),
        "scaler_scale": np.asarray(scaler.scale_, np.float64),
        "support_vectors": np.asarray(svc.support_vectors_, np.float64),
        "dual_coef": np.asarray(svc._dual_coef_, np.float64),
        "intercept": np.asarray(svc._intercept_, np.float64),
        "n_support": np.asarray(svc._n_support, np.int64),
        "classes": np.asarray(svc.classes_, np.int64),
    }
    info = {"kind": "svc", "kernel": svc.kernel, "gamma": float(svc._gamma), "coef0": float(svc.coef0),
            "degree": int(svc.degree), "classes": [int(c) for c in svc.classes_]}
    return arrays, info


class ArraySVM:
    """Prediction from :func:`svm_to_arrays`'s output, reproducing scikit-learn's.

    Parameters
    ----------
    arrays : dict of str to ndarray
    info : dict
    """

    def __init__(self, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        self.info = dict(info)
        self.classes = np.asarray(arrays["classes"], np.int64)
        if info["kind"] == "constant":
            self.constant = int(info["constant"])
            return
        if info["kind"] != "svc" or info["kernel"] not in KERNELS:
            raise ConfigError(f"svm: expected kind 'svc' with a kernel of {KERNELS} or kind 'constant', "
                             f"got {info.get('kind')!r} / {info.get('kernel')!r}")
        self.mean, self.scale = arrays["scaler_mean"], arrays["scaler_scale"]
        self.sv, self.dual = arrays["support_vectors"], arrays["dual_coef"]
        self.intercept, self.n_support = arrays["intercept"], arrays["n_support"]
        k = len(self.classes)
        if self.dual.shape != (k - 1, len(self.sv)) or len(self.intercept) != k * (k - 1) // 2:
            raise ConfigError(f"svm: inconsistent arrays: {k} classes, dual_coef {self.dual.shape}, "
                             f"{len(self.sv)} support vectors, {len(self.intercept)} intercepts")

    @property
    def n_features(self) -> int | None:
        """Width of the features it was fitted on (None for a constant classifier)."""
        return None if self.info["kind"] == "constant" else int(len(self.mean))

    def _kernel(self, X: np.ndarray) -> np.ndarray:
        """K(x, sv) of shape (n_samples, n_support_vectors), float64."""
        kind, gamma = self.info["kernel"], self.info["gamma"]
        if kind == "rbf":
            # Squared distances by explicit differences (not |x|^2 + |s|^2 - 2 x.s): the
            # expansion loses digits and could flip a vote that libsvm does not.
            # Blocks of rows keep the (rows, n_sv, n_features) difference array small.
            rows = max(1, 4_000_000 // max(1, self.sv.size))
            d2 = np.concatenate([((X[i:i + rows, None, :] - self.sv[None, :, :]) ** 2).sum(-1)
                                 for i in range(0, len(X), rows)]) if len(X) else np.zeros((0, len(self.sv)))
            return np.exp(-gamma * d2)
        dot = X @ self.sv.T
        if kind == "linear":
            return dot
        if kind == "poly":
            return (gamma * dot + self.info["coef0"]) ** self.info["degree"]
        return np.tanh(gamma * dot + self.info["coef0"])

    def _ovo(self, features: np.ndarray) -> np.ndarray:
        """One-vs-one decision values (n_samples, n_pairs), pairs (0,1), (0,2), ..., (1,2)..."""
        X = (np.asarray(features, np.float64) - self.mean) / self.scale
        K = self._kernel(X)
        starts = np.concatenate([[0], np.cumsum(self.n_support)])
        k = len(self.classes)
        out, p = np.empty((len(X), k * (k - 1) // 2)), 0
        for i in range(k):
            for j in range(i + 1, k):
                si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                # libsvm: class i's vectors carry coefficient row j-1, class j's row i.
                out[:, p] = K[:, si] @ self.dual[j - 1, si] + K[:, sj] @ self.dual[i, sj] + self.intercept[p]
                p += 1
        return out

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class codes, int64 of shape (n_samples,), for features (n_samples, n_features)."""
        features = np.atleast_2d(features)
        if self.info["kind"] == "constant":
            return np.full(len(features), self.constant, np.int64)
        dec, k = self._ovo(features), len(self.classes)
        votes, p = np.zeros((len(features), k), np.int64), 0
        for i in range(k):
            for j in range(i + 1, k):
                win_i = dec[:, p] > 0
                votes[:, i] += win_i
                votes[:, j] += ~win_i
                p += 1
        return self.classes[np.argmax(votes, axis=1)]  # argmax: the first of tied classes, as libsvm

    def scores_by_label(self, features: np.ndarray, n_labels: int) -> np.ndarray:
        """:meth:`decision_function` with one column per label code ``0..n_labels-1``,
        shape (n_samples, n_labels): NaN for a label the SVM never saw in training (a
        training set with fewer classes than the model's head)."""
        features = np.atleast_2d(features)
        out = np.full((len(features), n_labels), np.nan)
        if len(self.classes) and (self.classes.min() < 0 or self.classes.max() >= n_labels):
            raise ConfigError(f"svm: classes {self.classes.tolist()} outside the {n_labels} labels")
        out[:, self.classes] = self.decision_function(features)
        return out

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """One-vs-rest scores (n_samples, n_classes) as scikit-learn's SVC gives them
        (votes plus a confidence term below 1/3); NaN for a constant classifier.

        For two classes scikit-learn returns a single column; here both columns are
        given (minus and plus that value) so every bundle has one score per class.
        """
        features = np.atleast_2d(features)
        k = len(self.classes)
        if self.info["kind"] == "constant":
            return np.full((len(features), k), np.nan)
        dec = self._ovo(features)
        if k == 2:
            return np.stack([dec[:, 0], -dec[:, 0]], axis=1)
        votes, conf, p = np.zeros((len(features), k)), np.zeros((len(features), k)), 0
        for i in range(k):
            for j in range(i + 1, k):
                # >= here but > in predict: scikit-learn's transform and libsvm's vote
                # differ on an exact zero, and each is reproduced.
                votes[:, i] += dec[:, p] >= 0
                votes[:, j] += dec[:, p] < 0
                conf[:, i] += dec[:, p]
                conf[:, j] -= dec[:, p]
                p += 1
        return votes + conf / (3 * (np.abs(conf) + 1))
