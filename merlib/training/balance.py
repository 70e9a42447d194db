"""Class balancing of a training split by small shifts and horizontal flips (the paper's).

"When pre-processing a small number of emotion samples from a particular emotion
category, a small random horizontal or vertical shift of its pixel positions is
performed, or the samples are subjected to a horizontal flip operation", until every
class has as many samples as the largest one.

Only ever for the training side of a split: :func:`balance_training_set` takes the full
arrays and the training indices explicitly and reads nothing else, so a test fold cannot
leak in by accident; passing ``test_idx`` as well makes it check the two are disjoint.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The augmentations, one drawn per new sample: shift along x, shift along y, mirror.
OPS: tuple[str, ...] = ("shift_x", "shift_y", "flip")


def shift_image(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``image`` (H, W[, C]) moved by ``dx`` columns right and ``dy`` rows down, zero-filled.

    Zero, like the crop's padding beyond the frame, so no new content is invented.
    """
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = image[ys, xs]
    return out


def augment(image: np.ndarray, op: str, amount: int = 0) -> np.ndarray:
    """Apply one of :data:`OPS` (``amount``: signed shift in pixels, unused by ``flip``)."""
    if op == "shift_x":
        return shift_image(image, amount, 0)
    if op == "shift_y":
        return shift_image(image, 0, amount)
    if op == "flip":
        return np.ascontiguousarray(image[:, ::-1])
    raise ValueError(f"op: expected one of {OPS}, got {op!r}")


@dataclass(frozen=True)
class Balanced:
    """A balanced training set.

    Attributes
    ----------
    X : ndarray of shape (M, H, W[, C])
        The training images in ``train_idx`` order, then the new ones.
    y : ndarray of shape (M,)
    origin : ndarray of shape (M,), int64
        Row of the full ``X`` each image was made from (groups such as the subject
        follow from it: ``groups[origin]``).
    op : ndarray of shape (M,), str
        ``''`` for an original, else ``shift_x:+3``, ``shift_y:-5`` or ``flip``.
    """

    X: np.ndarray
    y: np.ndarray
    origin: np.ndarray
    op: np.ndarray


def _as_index(name: str, idx: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.dtype == bool:
        raise ValueError(f"{name}: expected integer row indices, got a boolean mask "
                         "(use np.flatnonzero(mask))")
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected a 1-D array of integer indices, got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise ValueError(f"{name}: indices must lie in [0, {n}), got min {arr.min()} max {arr.max()}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{name}: holds repeated indices")
    return arr


def balance_training_set(
    X: np.ndarray,
    y: np.ndarray | Sequence,
    train_idx: Sequence[int] | np.ndarray,
    *,
    seed: int,
    max_shift_px: int = 10,
    ops: Sequence[str] = OPS,
    test_idx: Sequence[int] | np.ndarray | None = None,
) -> Balanced:
    """Top up every class of the training rows to the largest class's count.

    Parameters
    ----------
    X : ndarray of shape (N, H, W) or (N, H, W, C)
        All images of the data set (only the ``train_idx`` rows are read).
    y : array-like of shape (N,)
        Labels.
    train_idx : array-like of int, shape (n_train,)
        The training rows. Required: there is no "balance everything" call.
    seed : int
        The only source of randomness: same inputs and seed, same output bytes.
    max_shift_px : int, default=10
        Shifts are drawn from ``1..max_shift_px`` pixels, either sign (the paper: "small";
        10 px is 4 % of a 256-pixel crop).
    ops : sequence of str, default=OPS
        Augmentations to draw from, uniformly.
    test_idx : array-like of int, optional
        The held-out rows; raises if any is also in ``train_idx``.

    Returns
    -------
    Balanced
        Originals first, then for each class (in sorted label order) its new samples.
        Sources are drawn without replacement in shuffled rounds, so each training
        image of a class is augmented equally often (to within one).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim not in (3, 4) or len(y) != len(X):
        raise ValueError(f"X, y: expected X of shape (N, H, W[, C]) and y of shape (N,), got "
                         f"{X.shape} and {y.shape}")
    train = _as_index("train_idx", train_idx, len(X))
    if train.size == 0:
        raise ValueError("train_idx: empty")
    if test_idx is not None:
        overlap = np.intersect1d(train, _as_index("test_idx", test_idx, len(X)))
        if overlap.size:
            raise ValueError(f"train_idx and test_idx share rows {overlap[:10].tolist()}: "
                             "balancing is for the training side only")
    bad_ops = [o for o in ops if o not in OPS]
    if bad_ops or not ops:
        raise ValueError(f"ops: expected a non-empty subset of {OPS}, got {list(ops)}")
    if max_shift_px < 1:
        raise ValueError(f"max_shift_px: expected >= 1, got {max_shift_px}")

    rng = np.random.default_rng(seed)
    labels = y[train]
    classes, counts = np.unique(labels, return_counts=True)
    target = counts.max()
    new_x, new_y, new_origin, new_op = [], [], [], []
    for cls, count in zip(classes, counts):
        need = int(target - count)
        if need == 0:
            continue
        members = train[labels == cls]
        rounds = -(-need // len(members))
        sources = np.concatenate([rng.permutation(members) for _ in range(rounds)])[:need]
        for src in sources:
            op = str(ops[rng.integers(len(ops))])
            amount = 0
            if op != "flip":
                amount = int(rng.integers(1, max_shift_px + 1)) * int(rng.choice((-1, 1)))
            new_x.append(augment(X[src], op, amount))
            new_y.append(cls)
            new_origin.append(src)
            new_op.append(op if op == "flip" else f"{op}:{amount:+d}")
    if new_x:
        X_out = np.concatenate([X[train], np.stack(new_x)])
    else:
        X_out = X[train].copy()
    return Balanced(
        X=X_out,
        y=np.concatenate([labels, np.asarray(new_y, dtype=labels.dtype)]),
        origin=np.concatenate([train, np.asarray(new_origin, dtype=np.int64)]),
        op=np.array([""] * len(train) + new_op, dtype=str),
    )


def balancing_report(
    X: np.ndarray,
    labels: np.ndarray | Sequence,
    rows: pd.DataFrame,
    set_names: Sequence[str],
    *,
    seed: int,
) -> tuple[pd.DataFrame, tuple[Balanced, str]]:
    """Class counts of each set's training split before and after balancing.

    One split per set: the ``composite`` set (when it holds more than one subject) loses
    its smallest subject, as one leave-one-subject-out fold would, so the held-out
    subject's rows are shown untouched; any other set is balanced whole, as the training
    set of transfer learning. Each split goes through :func:`balance_training_set` with
    the same ``seed``.

    Parameters
    ----------
    X : ndarray of shape (N, H, W) or (N, H, W, C)
        The aligned crops (:func:`merlib.faces.run.load_crops`).
    labels : array-like of shape (N,)
        One label per crop (unlabelled crops named, not NaN: they are a class here).
    rows : DataFrame
        N rows in the order of ``X``, with columns ``set`` and ``subject``.
    set_names : sequence of str
        The sets to report, in row order of the table; a set without rows is skipped.
    seed : int
        Passed to :func:`balance_training_set` for every split.

    Returns
    -------
    counts : DataFrame of int
        Index ``split`` (sorted), columns (``before`` | ``after``, label); 0 where a
        split has no sample of a class.
    example : (Balanced, str)
        The split with the most new samples (the first such, in ``set_names`` order)
        and its name, for a figure of the augmentations (it may have none: check
        ``example[0].op``).

    Raises
    ------
    ValueError
        When ``X``, ``labels`` and ``rows`` differ in length, ``rows`` lacks a column,
        or no set of ``set_names`` has a row.
    """
    labels = np.asarray(labels)
    if not len(X) == len(labels) == len(rows):
        raise ValueError(f"X, labels, rows: expected one label and one row per crop, got {len(X)} crops, "
                         f"{len(labels)} labels and {len(rows)} rows")
    missing = [c for c in ("set", "subject") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows: missing columns {missing}")
    # Row positions index X: labels of the frame's index must not stand in for them.
    rows = rows.reset_index(drop=True)
    tables, example = [], None
    for name in set_names:
        idx = np.flatnonzero(rows["set"].to_numpy() == name)
        if name == "composite" and rows.loc[idx, "subject"].nunique() > 1:
            held_out = rows.loc[idx, "subject"].value_counts().index[-1]  # smallest subject
            test = idx[rows.loc[idx, "subject"].to_numpy() == held_out]
            train = np.setdiff1d(idx, test)
            split = f"composite, fold without subject {held_out}"
        else:
            train, test, split = idx, np.array([], dtype=int), name
        if len(train) == 0:
            continue
        bal = balance_training_set(X, labels, train, seed=seed, test_idx=test)
        before = pd.Series(labels[train]).value_counts()
        after = pd.Series(bal.y).value_counts()
        tables.append(pd.DataFrame({"before": before, "after": after}).fillna(0).astype(int)
                      .rename_axis("label").reset_index().assign(split=split))
        if example is None or (bal.op != "").sum() > (example[0].op != "").sum():
            example = (bal, split)
    if not tables:
        raise ValueError(f"set_names: none of {list(set_names)} has a row in rows['set']")
    counts = pd.concat(tables).pivot(index="split", columns="label", values=["before", "after"])
    return counts.fillna(0).astype(int), example
