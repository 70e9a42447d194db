"""CK+ reader (Lucey et al. 2010), in the owners' layout.

On disk, under ``<data_root>/CK+/``::

    cohn-kanade-images/S005/001/S005_001_00000011.png
    Emotion/S005/001/S005_001_00000011_emotion.txt     one float, e.g. '   3.0000000e+00'

The emotion file exists for the peak (last) frame of labelled sequences only; the other
sequences are indexed without emotion or label.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from merlib.data.frames import list_frames, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import AnnotationError, DataLayoutError

DATASET = "ckplus"
FOLDER = "CK+"
IMAGES_DIR = "cohn-kanade-images"
EMOTION_DIR = "Emotion"
#: The owners' emotion codes.
CODES: dict[int, str] = {
    0: "neutral", 1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy",
    6: "sadness", 7: "surprise",
}
FRAME_PATTERN = r"S\d+_\d+_(\d+)\.png"
_SUBJECT = re.compile(r"S\d+")
_SEQUENCE = re.compile(r"\d+")


def format_code(code: int) -> str:
    """An emotion file's text as the owners write it: ``'   3.0000000e+00\\n'``."""
    return f"   {float(code):.7e}\n"


def read_emotion_file(path: Path) -> str:
    """The emotion name in a CK+ ``*_emotion.txt`` file.

    Raises
    ------
    AnnotationError
        The file does not hold a single whole number among the known codes.
    """
    text = path.read_text(errors="replace")
    try:
        value = float(text.strip())
    except ValueError:
        raise AnnotationError(f"{path}: expected one emotion code (0-7), found {text!r}") from None
    if value != int(value) or int(value) not in CODES:
        raise AnnotationError(f"{path}: emotion code {text.strip()!r} is not one of 0-7")
    return CODES[int(value)]


def read_ckplus(data_root: Path | str) -> pd.DataFrame:
    """Index CK+: one row per sequence, labelled where an emotion file exists.

    Parameters
    ----------
    data_root : path
        Folder that holds ``CK+/``.

    Returns
    -------
    DataFrame
        Canonical table; ``emotion`` is the code's name (``disgust``), NA for unlabelled
        sequences; onset/apex/offset are the first/last/last frame (the last is the peak).

    Raises
    ------
    DataLayoutError
        ``cohn-kanade-images`` is missing.
    AnnotationError
        An emotion file is malformed or there are several for one sequence.
    """
    root = Path(data_root)
    images = root / FOLDER / IMAGES_DIR
    if not images.is_dir():
        raise DataLayoutError(f"CK+: expected folder {images}")
    rows = []
    for subject_dir in sorted(p for p in images.iterdir() if p.is_dir()):
        if not _SUBJECT.fullmatch(subject_dir.name):
            continue  # stray folders (e.g. __MACOSX) are not subjects
        for seq_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
            if not _SEQUENCE.fullmatch(seq_dir.name):
                continue
            subject, sample = subject_dir.name, f"{subject_dir.name}_{seq_dir.name}"
            frames = list_frames(seq_dir, FRAME_PATTERN)
            numbers = [n for n, _ in frames]
            emotion_files = sorted(
                (root / FOLDER / EMOTION_DIR / subject / seq_dir.name).glob("*_emotion.txt")
            )
            if len(emotion_files) > 1:
                raise AnnotationError(
                    f"{sample}: several emotion files {[p.name for p in emotion_files]}"
                )
            emotion = read_emotion_file(emotion_files[0]) if emotion_files else None
            rows.append({
                "dataset": DATASET, "part": "", "subject": subject, "sample": sample,
                "emotion": emotion, "label": emotion_to_label(emotion, DATASET),
                "onset_frame": numbers[0], "apex_frame": numbers[-1],
                "offset_frame": numbers[-1], "n_frames": len(frames),
                "clip_dir": relative(seq_dir, root),
                "apex_path": relative(frames[-1][1], root), "flags": "",
            })
    return to_table(rows)
