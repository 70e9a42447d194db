"""Oulu-CASIA NIR&VIS reader (Zhao et al. 2011), in the owners' layout.

On disk, under ``<data_root>/Oulu-CASIA/``::

    OriginalImg/VL/Strong/P001/Anger/000.jpeg      systems VL, NI; lighting Strong, Weak, Dark

Sequences go from neutral to the peak: onset/apex/offset are the first/last/last frames.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from merlib.data.frames import list_frames, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import DataLayoutError

DATASET = "oulu"
FOLDER = "Oulu-CASIA"
IMAGES_DIR = "OriginalImg"
SYSTEMS: tuple[str, ...] = ("VL", "NI")
LIGHTINGS: tuple[str, ...] = ("Strong", "Weak", "Dark")
EMOTIONS: tuple[str, ...] = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
FRAME_PATTERN = r"(\d+)\.jpeg"


def read_oulu(data_root: Path | str) -> pd.DataFrame:
    """Index Oulu-CASIA: one row per sequence, for every system and lighting present.

    Parameters
    ----------
    data_root : path
        Folder that holds ``Oulu-CASIA/``.

    Returns
    -------
    DataFrame
        Canonical table; ``part`` is ``<system>_<lighting>`` (``VL_Strong``); sample is
        ``<subject>_<Emotion>`` (``P001_Anger``).

    Raises
    ------
    DataLayoutError
        ``OriginalImg`` is missing or an emotion folder has an unknown name.
    """
    root = Path(data_root)
    images = root / FOLDER / IMAGES_DIR
    if not images.is_dir():
        raise DataLayoutError(f"Oulu-CASIA: expected folder {images}")
    rows = []
    for system in SYSTEMS:
        for lighting in LIGHTINGS:
            part_dir = images / system / lighting
            if not part_dir.is_dir():
                continue
            for subject_dir in sorted(p for p in part_dir.iterdir() if p.is_dir()):
                subject = subject_dir.name
                for emotion_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
                    emotion = emotion_dir.name
                    if emotion not in EMOTIONS:
                        raise DataLayoutError(
                            f"{emotion_dir}: unknown emotion folder; expected one of {EMOTIONS}"
                        )
                    frames = list_frames(emotion_dir, FRAME_PATTERN)
                    numbers = [n for n, _ in frames]
                    rows.append({
                        "dataset": DATASET, "part": f"{system}_{lighting}",
                        "subject": subject, "sample": f"{subject}_{emotion}",
                        "emotion": emotion, "label": emotion_to_label(emotion, DATASET),
                        "onset_frame": numbers[0], "apex_frame": numbers[-1],
                        "offset_frame": numbers[-1], "n_frames": len(frames),
                        "clip_dir": relative(emotion_dir, root),
                        "apex_path": relative(frames[-1][1], root), "flags": "",
                    })
    return to_table(rows)
