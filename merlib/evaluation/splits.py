"""Subject-wise splits: outer leave-one-subject-out, inner group folds, macro validation.

All splitters are scikit-learn's (:class:`~sklearn.model_selection.LeaveOneGroupOut`,
:class:`~sklearn.model_selection.GroupKFold`, :class:`~sklearn.model_selection.GroupShuffleSplit`)
over subject keys ``dataset/subject`` (:attr:`merlib.training.crops.CropSet.groups`). Inner
folds are built from an outer fold's *training* indices only, so no inner model ever
sees the outer test subject.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from merlib.training.crops import holdout_subjects

__all__ = ["Fold", "loso_folds", "inner_folds", "holdout_subjects", "check_disjoint"]


@dataclass(frozen=True)
class Fold:
    """One outer LOSO fold.

    Attributes
    ----------
    index : int
        Position in :func:`loso_folds` order (test subjects sorted by key).
    test_subject : str
    train_idx, test_idx : ndarray of int64
        Row positions into the crop set.
    """

    index: int
    test_subject: str
    train_idx: np.ndarray
    test_idx: np.ndarray


def loso_folds(groups: np.ndarray) -> list[Fold]:
    """Leave-one-subject-out folds, one per distinct subject key (sorted).

    Parameters
    ----------
    groups : ndarray of shape (n_samples,)
        Subject key of each sample.

    Raises
    ------
    ValueError
        With fewer than two subjects (as ``LeaveOneGroupOut``).
    """
    groups = np.asarray(groups)
    n = len(np.unique(groups))
    if n < 2:
        raise ValueError(f"groups: leave-one-subject-out needs at least 2 subjects, got {n}")
    folds = []
    for i, (tr, te) in enumerate(LeaveOneGroupOut().split(np.zeros(len(groups)), groups=groups)):
        folds.append(Fold(i, str(groups[te[0]]), tr.astype(np.int64), te.astype(np.int64)))
    return folds


def inner_folds(train_idx: np.ndarray, groups: np.ndarray, n_splits: int,
                seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Subject-wise validation folds inside one outer training set.

    Parameters
    ----------
    train_idx : ndarray of int
        The outer fold's training rows; nothing else is split.
    groups : ndarray of shape (n_samples,)
        Subject key of every row of the full set.
    n_splits : int
        GroupKFold splits, capped at the number of training subjects.
    seed : int
        Shuffles which subjects share a fold.

    Returns
    -------
    list of (inner_train, inner_val)
        Row positions into the *full* set (subsets of ``train_idx``).
    """
    train_idx = np.asarray(train_idx, dtype=np.int64)
    g = np.asarray(groups)[train_idx]
    n_subjects = len(np.unique(g))
    if n_subjects < 2:
        raise ValueError(f"train_idx: inner validation needs at least 2 training subjects, got {n_subjects}")
    splitter = GroupKFold(n_splits=min(n_splits, n_subjects), shuffle=True, random_state=seed)
    return [(train_idx[a], train_idx[b]) for a, b in splitter.split(train_idx, groups=g)]


def check_disjoint(groups: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray) -> None:
    """Raise when a subject has rows on both sides of a split."""
    shared = set(np.asarray(groups)[train_idx].tolist()) & set(np.asarray(groups)[test_idx].tolist())
    if shared:
        raise ValueError(f"split: subjects {sorted(shared)} are in both train and test")
