"""SMIC reader (Li et al. 2013), in the owners' layout.

On disk, under ``<data_root>/SMIC/``::

    SMIC_all_raw/HS/s1/micro/positive/s1_po_01/image0XXXXX.bmp
    SMIC_all_raw/VIS/...  SMIC_all_raw/NIR/...     (same shape, when present)

Labels come from the folder names; there is no apex annotation, so the apex is the
middle frame (the paper's rule), flagged ``apex:middle_frame``. On disk the subject is
``s1`` and the clip ``s1_po_01``; the canonical names are the MEGC2019 ones, ``s01`` and
``s01_po_01``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from merlib.data.frames import list_frames, middle_frame, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import DataLayoutError

DATASET = "smic"
FOLDER = "SMIC"
RAW_DIR = "SMIC_all_raw"
PARTS: tuple[str, ...] = ("HS", "VIS", "NIR")
MICRO_DIR = "micro"
EMOTIONS: tuple[str, ...] = ("negative", "positive", "surprise")
FRAME_PATTERN = r"image(\d+)\.bmp"
_SUBJECT = re.compile(r"s(\d+)")
_CLIP = re.compile(r"s(\d+)_(.+)")


def canonical_subject(name: str) -> str:
    """``s1`` -> ``s01`` (the MEGC2019 spelling)."""
    m = _SUBJECT.fullmatch(name)
    if m is None:
        raise ValueError(f"{name!r} is not a SMIC subject folder (s<number>)")
    return f"s{int(m.group(1)):02d}"


def canonical_sample(name: str) -> str:
    """``s1_po_01`` -> ``s01_po_01``."""
    m = _CLIP.fullmatch(name)
    if m is None:
        raise ValueError(f"{name!r} is not a SMIC clip folder (s<number>_<code>_<nn>)")
    return f"s{int(m.group(1)):02d}_{m.group(2)}"


def disk_subject(canonical: str) -> str:
    """``s01`` -> ``s1`` (the owners' folder name)."""
    return f"s{int(canonical_subject(canonical)[1:])}"


def disk_sample(canonical: str) -> str:
    """``s01_po_01`` -> ``s1_po_01``."""
    m = _CLIP.fullmatch(canonical)
    if m is None:
        raise ValueError(f"{canonical!r} is not a SMIC sample name")
    return f"s{int(m.group(1))}_{m.group(2)}"


def read_smic(data_root: Path | str) -> pd.DataFrame:
    """Index SMIC: one row per micro clip and camera part (HS, and VIS/NIR if present).

    Parameters
    ----------
    data_root : path
        Folder that holds ``SMIC/``.

    Returns
    -------
    DataFrame
        Canonical table; ``part`` is ``HS``, ``VIS`` or ``NIR``; onset, apex and offset
        are the first, middle and last frame numbers.

    Raises
    ------
    DataLayoutError
        ``SMIC_all_raw/HS`` is missing, or a folder under ``micro/`` is not an emotion,
        or a subject/clip folder name is not in the owners' form.
    """
    root = Path(data_root)
    base = root / FOLDER / RAW_DIR
    if not (base / "HS").is_dir():
        raise DataLayoutError(f"SMIC: expected folder {base / 'HS'}")
    rows = []
    for part in PARTS:
        part_dir = base / part
        if not part_dir.is_dir():
            continue
        for subject_dir in sorted(p for p in part_dir.iterdir() if p.is_dir()):
            try:
                subject = canonical_subject(subject_dir.name)
            except ValueError as err:
                raise DataLayoutError(f"{subject_dir}: {err}") from None
            micro = subject_dir / MICRO_DIR
            if not micro.is_dir():
                continue  # a subject with no micro-expression clips
            for emotion_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
                if emotion_dir.name not in EMOTIONS:
                    raise DataLayoutError(
                        f"{emotion_dir}: unknown emotion folder; expected one of {EMOTIONS}"
                    )
                for clip in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                    try:
                        sample = canonical_sample(clip.name)
                    except ValueError as err:
                        raise DataLayoutError(f"{clip}: {err}") from None
                    if not sample.startswith(subject + "_"):
                        raise DataLayoutError(
                            f"{clip}: clip of subject {sample.split('_')[0]} filed under "
                            f"{subject_dir.name}"
                        )
                    frames = list_frames(clip, FRAME_PATTERN)
                    numbers = [n for n, _ in frames]
                    apex = middle_frame(numbers)
                    emotion = emotion_dir.name
                    rows.append({
                        "dataset": DATASET, "part": part, "subject": subject,
                        "sample": sample, "emotion": emotion,
                        "label": emotion_to_label(emotion, DATASET),
                        "onset_frame": numbers[0], "apex_frame": apex,
                        "offset_frame": numbers[-1], "n_frames": len(frames),
                        "clip_dir": relative(clip, root),
                        "apex_path": relative(dict(frames)[apex], root),
                        "flags": "apex:middle_frame",
                    })
    return to_table(rows)
