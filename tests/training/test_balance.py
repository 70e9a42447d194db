"""Class balancing: equal counts, training rows only, deterministic bytes."""
from __future__ import annotations

import numpy as np
import pytest

from merlib.training.balance import OPS, augment, balance_training_set, shift_image


@pytest.fixture
def data():
    """12 images, each filled with its own row number (so every output can be traced);
    classes 0:6, 1:2, 2:4; rows 9..11 are the test fold."""
    rng = np.random.default_rng(1)
    X = np.stack([np.full((16, 16), i + 1, np.uint8) for i in range(12)])
    X[:, 4:8, 2:5] = rng.integers(100, 200, (12, 4, 3))  # an asymmetric patch: flips show
    y = np.array(["neg"] * 6 + ["pos"] * 2 + ["sur"] * 4)
    return X, y, np.arange(9), np.arange(9, 12)


def test_classes_are_balanced_from_training_rows_only(data):
    X, y, train, test = data
    before = X.copy()
    out = balance_training_set(X, y, train, seed=0, test_idx=test)
    labels, counts = np.unique(out.y, return_counts=True)
    assert dict(zip(labels, counts)) == {"neg": 6, "pos": 6, "sur": 6}
    assert np.isin(out.origin, train).all() and not np.isin(out.origin, test).any()
    # No pixel value of a test image (their fills 10..12) appears anywhere.
    assert not np.isin(out.X[:, :4], [10, 11, 12]).any()
    assert np.array_equal(X, before)  # inputs untouched
    assert np.array_equal(out.X[:9], X[train]) and (out.op[:9] == "").all()
    assert (out.y == y[out.origin]).all()


def test_every_new_image_is_its_source_under_its_op(data):
    X, y, train, _ = data
    out = balance_training_set(X, y, train, seed=3, max_shift_px=4)
    for img, src, op in zip(out.X[9:], out.origin[9:], out.op[9:]):
        name, _, amount = op.partition(":")
        assert name in OPS
        if name != "flip":
            assert 1 <= abs(int(amount)) <= 4
        assert np.array_equal(img, augment(X[src], name, int(amount or 0)))
        assert not np.array_equal(img, X[src])


def test_sources_are_used_evenly(data):
    X, y, train, _ = data
    out = balance_training_set(X, y, train, seed=0)
    pos_sources = out.origin[9:][out.y[9:] == "pos"]
    assert sorted(np.bincount(pos_sources)[[6, 7]]) == [2, 2]


def test_same_seed_same_bytes_other_seed_differs(data):
    X, y, train, _ = data
    a = balance_training_set(X, y, train, seed=7)
    b = balance_training_set(X, y, train, seed=7)
    c = balance_training_set(X, y, train, seed=8)
    assert a.X.tobytes() == b.X.tobytes() and (a.op == b.op).all()
    assert a.X.tobytes() != c.X.tobytes()


def test_misuse_is_refused(data):
    X, y, train, test = data
    with pytest.raises(ValueError, match="share rows \\[8\\]"):
        balance_training_set(X, y, train, seed=0, test_idx=[8, 9])
    with pytest.raises(ValueError, match="boolean mask"):
        balance_training_set(X, y, np.arange(12) < 9, seed=0)
    with pytest.raises(ValueError, match="repeated"):
        balance_training_set(X, y, [0, 0, 1], seed=0)
    with pytest.raises(ValueError, match="\\[0, 12\\)"):
        balance_training_set(X, y, [0, 12], seed=0)
    with pytest.raises(TypeError):
        balance_training_set(X, y, train, 0)  # seed is keyword-only
    with pytest.raises(ValueError, match="ops"):
        balance_training_set(X, y, train, seed=0, ops=["rotate"])


def test_balanced_input_is_returned_as_is(data):
    X, y, _, _ = data
    out = balance_training_set(X, y, [0, 1, 6, 7], seed=0)
    assert len(out.y) == 4 and (out.op == "").all()


def test_shift_fills_with_zero():
    img = np.arange(1, 26, dtype=np.uint8).reshape(5, 5)
    s = shift_image(img, 2, -1)
    assert (s[:, :2] == 0).all() and (s[-1] == 0).all()
    assert s[0, 2] == img[1, 0]
    assert not shift_image(img, 5, 0).any()
