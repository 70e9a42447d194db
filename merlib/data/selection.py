"""The paper's training selections: macro transfer images and micro samples.

``macro_frames`` expands the macro-expression sequences (CK+, Oulu-CASIA, JAFFE, MUG)
into the labelled images used for transfer learning; ``micro_selection`` picks the
micro-expression samples (the MEGC2019 composite, or every 3-class sample).
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from merlib.data import ckplus, mug, oulu
from merlib.data.composite import megc2019_composite
from merlib.data.composite import ExpectedList
from merlib.data.frames import list_frames
from merlib.data.labels import MACRO_NEGATIVE, check_negative, macro_label
from merlib.data.schema import MICRO_DATASETS
from merlib.data.smic import PARTS as SMIC_PARTS

MACRO_COLUMNS: dict[str, str] = {
    "dataset": "string", "part": "string", "subject": "string", "sample": "string",
    "emotion": "string", "label": "string", "frame": "Int64", "frame_path": "string",
}
#: Frames taken from the end (the peak) of each CK+ and Oulu sequence.
LAST_FRAMES = 3
#: Oulu-CASIA imaging system used by the paper (visible light).
OULU_SYSTEM = "VL"
_FRAME_PATTERNS: dict[str, str] = {
    "ckplus": ckplus.FRAME_PATTERN, "oulu": oulu.FRAME_PATTERN, "mug": mug.FRAME_PATTERN,
}


def clip_seed(seed: int, sample: str) -> list[int]:
    """Seed material for one clip's generator: ``[seed, crc32(sample)]``.

    crc32 rather than ``hash``: Python salts string hashes per process.
    """
    return [int(seed), zlib.crc32(sample.encode("utf-8"))]


def mug_window(numbers: Sequence[int], k: int) -> list[int]:
    """``k`` consecutive frames centred on the middle frame, kept inside the clip.

    The middle is index ``(n - 1) // 2`` (as :func:`merlib.data.frames.middle_frame`);
    the window starts ``(k - 1) // 2`` frames before it. Shorter clips give all frames.
    """
    n = len(numbers)
    if k >= n:
        return list(numbers)
    start = (n - 1) // 2 - (k - 1) // 2
    start = max(0, min(start, n - k))
    return list(numbers[start:start + k])


def macro_frames(
    index: pd.DataFrame,
    data_root: Path | str,
    *,
    mug_frames: tuple[int, int] = (6, 10),
    seed: int = 0,
    macro_negative: Sequence[str] = MACRO_NEGATIVE,
) -> pd.DataFrame:
    """The macro transfer set: one row per labelled image.

    Parameters
    ----------
    index : DataFrame
        Canonical table (other datasets than CK+, Oulu, JAFFE and MUG are ignored).
    data_root : path
        The root the index paths are relative to (frames are re-listed from disk).
    mug_frames : (int, int), default=(6, 10)
        Inclusive range of the number of MUG frames per clip. For each clip, ``k`` is
        drawn from ``numpy.random.default_rng(clip_seed(seed, sample))``, so it depends
        only on ``seed`` and the clip's name, not on the order or subset of clips.
    seed : int, default=0
    macro_negative : sequence of str, default=("anger", "disgust", "sadness")
        Emotions of the negative class. The default is the paper's macro mapping, which
        leaves fear and contempt out of the transfer set;
        :data:`merlib.data.labels.MEGC2019_NEGATIVE` restores them.

    Returns
    -------
    DataFrame
        Columns dataset, part, subject, sample, emotion, label, frame, frame_path
        (relative to ``data_root``); ``label`` from :func:`merlib.data.labels.macro_label`,
        not from the index. CK+ and Oulu (``VL`` only): the last three frames of each
        labelled sequence; JAFFE: each labelled image (frame NA); MUG: ``k`` frames
        centred on the middle frame. Samples without a macro label are left out.
    """
    lo, hi = mug_frames
    if not 1 <= lo <= hi:
        raise ValueError(f"mug_frames: expected 1 <= low <= high, got {mug_frames}")
    negative = check_negative(macro_negative)
    root = Path(data_root)
    # The index labels by the MEGC2019 mapping; the transfer set uses the paper's.
    labels = index["emotion"].map(lambda e: macro_label(e if pd.notna(e) else None, negative))
    labelled = index.assign(label=labels.astype("string"))
    labelled = labelled[labelled["label"].notna()]
    rows = []
    for rec in labelled.to_dict("records"):
        dataset = rec["dataset"]
        if dataset == "oulu" and not str(rec["part"]).startswith(OULU_SYSTEM + "_"):
            continue
        keep = {c: rec[c] for c in ("dataset", "part", "subject", "sample", "emotion", "label")}
        if dataset == "jaffe":
            rows.append({**keep, "frame": pd.NA, "frame_path": rec["apex_path"]})
            continue
        if dataset not in _FRAME_PATTERNS:
            continue
        frames = list_frames(root / rec["clip_dir"], _FRAME_PATTERNS[dataset])
        numbers = [n for n, _ in frames]
        if dataset == "mug":
            k = int(np.random.default_rng(clip_seed(seed, rec["sample"])).integers(lo, hi + 1))
            chosen = set(mug_window(numbers, k))
        else:
            chosen = set(numbers[-LAST_FRAMES:])
        for n, path in frames:
            if n in chosen:
                rows.append({**keep, "frame": n, "frame_path": path.relative_to(root).as_posix()})
    table = pd.DataFrame(rows, columns=list(MACRO_COLUMNS))
    return table.astype(MACRO_COLUMNS).reset_index(drop=True)


def micro_selection(
    index: pd.DataFrame,
    name: str = "megc2019",
    *,
    datasets: Sequence[str] = MICRO_DATASETS,
    smic_parts: Sequence[str] = ("HS",),
    allow_missing: bool = False,
    expected: ExpectedList | None = None,
) -> pd.DataFrame:
    """Micro-expression samples for training and evaluation.

    Parameters
    ----------
    index : DataFrame
        Canonical table holding the micro datasets.
    name : {"megc2019", "all"}
        ``megc2019``: the 442-sample composite, in list order, labels from the list.
        ``all``: every sample of ``datasets`` with a 3-class label (the paper's own,
        larger selection), in index order.
    datasets : sequence of str, default=("casme2", "samm", "smic")
        Datasets for ``all`` (ignored by ``megc2019``).
    smic_parts : sequence of str, default=("HS",)
        SMIC camera parts for ``all`` (the same clip is filmed by each camera).
    allow_missing : bool, default=False
        For ``megc2019``: drop listed samples not on disk instead of raising.
    expected : ExpectedList, optional
        For ``megc2019``: the samples that must be there (default all 442; a SynthME
        root's subset is :func:`merlib.data.composite.expected_composite`).

    Returns
    -------
    DataFrame
        Canonical table of the selected samples.
    """
    if name == "megc2019":
        return megc2019_composite(index, allow_missing=allow_missing, expected=expected).table
    if name != "all":
        raise ValueError(f"name: expected 'megc2019' or 'all', got {name!r}")
    unknown = [d for d in datasets if d not in MICRO_DATASETS]
    bad_parts = [p for p in smic_parts if p not in SMIC_PARTS]
    if unknown or bad_parts:
        raise ValueError(
            f"datasets {unknown} / smic_parts {bad_parts}: expected datasets from "
            f"{MICRO_DATASETS} and parts from {SMIC_PARTS}"
        )
    keep = index["dataset"].isin(list(datasets)) & index["label"].notna()
    keep &= (index["dataset"] != "smic") | index["part"].isin(list(smic_parts))
    return index[keep].reset_index(drop=True)
