"""LOSO never shares a subject between train and test; inner folds never see the test subject."""
from __future__ import annotations

import numpy as np
import pytest

from merlib.evaluation.splits import check_disjoint, holdout_subjects, inner_folds, loso_folds
from tests.toy import tiny_crops


def test_loso_one_subject_out_per_fold():
    crops = tiny_crops(n_subjects=6, per_subject=4)
    groups = crops.groups
    folds = loso_folds(groups)
    assert len(folds) == 6
    for f in folds:
        assert set(groups[f.test_idx]) == {f.test_subject}
        assert f.test_subject not in set(groups[f.train_idx])
        assert sorted(np.concatenate([f.train_idx, f.test_idx])) == list(range(len(crops)))
        for tr, va in inner_folds(f.train_idx, groups, 3, seed=f.index):
            assert f.test_subject not in set(groups[tr]) | set(groups[va])
            assert not set(groups[tr]) & set(groups[va])
            assert set(tr) | set(va) == set(f.train_idx)
    assert sorted(f.test_subject for f in folds) == sorted(set(groups))


def test_same_subject_name_in_two_datasets_are_two_subjects():
    groups = np.array(["casme2/s01", "casme2/s01", "samm/s01"])
    assert [f.test_subject for f in loso_folds(groups)] == ["casme2/s01", "samm/s01"]


def test_errors():
    with pytest.raises(ValueError, match="at least 2 subjects, got 1"):
        loso_folds(np.array(["a", "a"]))
    with pytest.raises(ValueError, match=r"subjects \['a'\] are in both"):
        check_disjoint(np.array(["a", "a", "b"]), np.array([0, 2]), np.array([1]))


def test_holdout_is_subject_wise():
    groups = tiny_crops(n_subjects=5, per_subject=3).groups
    tr, va = holdout_subjects(groups, 0.2, seed=0)
    assert len(set(groups[va])) == 1 and not set(groups[tr]) & set(groups[va])
