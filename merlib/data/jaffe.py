"""JAFFE reader (Lyons et al. 1998), in the owners' layout.

On disk: a flat folder ``<data_root>/JAFFE/`` of images named ``KA.AN1.39.tiff`` (poser
code, emotion code + take number, image id). Non-image files (a README) are skipped.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from merlib.data.frames import relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import AnnotationError, DataLayoutError

DATASET = "jaffe"
FOLDER = "JAFFE"
POSERS: tuple[str, ...] = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
#: Emotion code -> name.
CODES: dict[str, str] = {
    "AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness", "NE": "neutral",
    "SA": "sadness", "SU": "surprise",
}
IMAGE_SUFFIXES: tuple[str, ...] = (".tiff", ".tif")
_NAME = re.compile(r"(?P<poser>[A-Z]{2})\.(?P<emotion>[A-Z]{2})(?P<take>\d+)\.(?P<id>\d+)")


def parse_name(path: Path) -> tuple[str, str]:
    """``KA.AN1.39.tiff`` -> ``("KA", "anger")``.

    Raises
    ------
    AnnotationError
        The stem is not ``<poser>.<emotion><take>.<id>`` or the emotion code is unknown.
    """
    m = _NAME.fullmatch(path.stem)
    if m is None:
        raise AnnotationError(
            f"{path}: file name is not <poser>.<emotion code><take>.<id> (e.g. KA.AN1.39.tiff)"
        )
    code = m.group("emotion")
    if code not in CODES:
        raise AnnotationError(f"{path}: unknown emotion code {code!r}; expected one of {list(CODES)}")
    return m.group("poser"), CODES[code]


def read_jaffe(data_root: Path | str) -> pd.DataFrame:
    """Index JAFFE: one row per image (frame columns NA, ``n_frames`` 1).

    Parameters
    ----------
    data_root : path
        Folder that holds ``JAFFE/``.

    Returns
    -------
    DataFrame
        Canonical table; subject is the poser code, sample the file stem, emotion the
        code's name (``anger``; ``neutral`` has no label); apex_path is the image.
    """
    root = Path(data_root)
    folder = root / FOLDER
    if not folder.is_dir():
        raise DataLayoutError(f"JAFFE: expected folder {folder}")
    rows = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        poser, emotion = parse_name(path)
        rows.append({
            "dataset": DATASET, "part": "", "subject": poser, "sample": path.stem,
            "emotion": emotion, "label": emotion_to_label(emotion, DATASET),
            "n_frames": 1, "clip_dir": relative(folder, root),
            "apex_path": relative(path, root), "flags": "",
        })
    return to_table(rows)
