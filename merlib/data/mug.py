"""MUG facial expression database reader (Aifanti et al. 2010), in the owners' layout.

On disk, under ``<data_root>/MUG/subjects3/``::

    <subject>/<emotion>/<take>/img_0000.jpg
    <subject>/session0/<emotion>/<take>/img_0000.jpg     subjects recorded twice
                                                          (session0/, session1/)

Frame numbers need not start at 0, and a take folder may hold a video file or other
files beside its frames (only ``img_<number>.jpg`` files are frames). Clips start and end
neutral with the apex in between; there is no apex annotation, so the apex is the middle
frame (flag ``apex:middle_frame``).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from merlib.data.frames import list_frames, middle_frame, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import DataLayoutError

DATASET = "mug"
FOLDER = "MUG"
SUBJECTS_DIR = "subjects3"
EMOTIONS: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
)
FRAME_PATTERN = r"img_(\d+)\.jpg"
#: The extra folder level of subjects recorded in several sessions.
SESSION = re.compile(r"session\d+")


def sample_name(subject: str, emotion: str, take: str, session: str = "") -> str:
    """Canonical sample: ``001_happiness_take000``, or ``001_session1_happiness_take000``
    for a take of a session (unique across a subject's sessions)."""
    return "_".join(p for p in (subject, session, emotion, take) if p)


def _emotion_dirs(subject_dir: Path) -> list[tuple[str, Path]]:
    """``(session, emotion folder)`` of a subject, session '' for the plain level."""
    found = []
    for child in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
        if SESSION.fullmatch(child.name):
            for emotion_dir in sorted(p for p in child.iterdir() if p.is_dir()):
                found.append((child.name, emotion_dir))
        else:
            found.append(("", child))
    return found


def read_mug(data_root: Path | str) -> pd.DataFrame:
    """Index MUG: one row per take.

    Parameters
    ----------
    data_root : path
        Folder that holds ``MUG/``.

    Returns
    -------
    DataFrame
        Canonical table; onset/apex/offset are the first/middle/last frame numbers;
        ``part`` is the session folder (``session0``) or empty.

    Raises
    ------
    DataLayoutError
        ``subjects3`` is missing, a folder where an emotion or a session belongs has
        another name, or a take folder holds no frame.
    """
    root = Path(data_root)
    base = root / FOLDER / SUBJECTS_DIR
    if not base.is_dir():
        raise DataLayoutError(f"MUG: expected folder {base}")
    rows = []
    for subject_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        subject = subject_dir.name
        for session, emotion_dir in _emotion_dirs(subject_dir):
            emotion = emotion_dir.name
            if emotion not in EMOTIONS:
                where = "an emotion" if session else "an emotion or a session<N> folder"
                raise DataLayoutError(
                    f"{emotion_dir}: unknown folder; expected {where}: one of {EMOTIONS}"
                )
            for take_dir in sorted(p for p in emotion_dir.iterdir() if p.is_dir()):
                frames = list_frames(take_dir, FRAME_PATTERN)
                numbers = [n for n, _ in frames]
                apex = middle_frame(numbers)
                rows.append({
                    "dataset": DATASET, "part": session, "subject": subject,
                    "sample": sample_name(subject, emotion, take_dir.name, session),
                    "emotion": emotion, "label": emotion_to_label(emotion, DATASET),
                    "onset_frame": numbers[0], "apex_frame": apex,
                    "offset_frame": numbers[-1], "n_frames": len(frames),
                    "clip_dir": relative(take_dir, root),
                    "apex_path": relative(dict(frames)[apex], root),
                    "flags": "apex:middle_frame",
                })
    return to_table(rows)
