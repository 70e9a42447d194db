"""SAMM reader (Davison et al. 2018), in the owners' layout.

On disk, under ``<data_root>/SAMM/``::

    SAMM_Micro_FACS_Codes_v2.xlsx      sheet MICRO_ONLY, header on spreadsheet row 14
    006/006_1_2/006_05562.jpg          <subject>/<clip>/<subject>_<frame:05d>.jpg

The 13 rows above the header are a title, citation notes and a symbol key. ``Duration``
holds formulas and is ignored. ``Subject`` is text (``"006"``) that pandas may turn into
the integer 6.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from merlib.data.frames import list_frames, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import AnnotationError, DataLayoutError

DATASET = "samm"
FOLDER = "SAMM"
ANNOTATION = "SAMM_Micro_FACS_Codes_v2.xlsx"
SHEET = "MICRO_ONLY"
#: 1-based spreadsheet row of the header, as shipped.
HEADER_ROW = 14
#: How far down to look for the header if it is not on HEADER_ROW.
HEADER_SEARCH_ROWS = 30
HEADER: list[str] = [
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
]
FRAME_PATTERN = r"\d+_(\d+)\.jpg"
_REQUIRED = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
             "Estimated Emotion"]


def subject_folder(subject: int | str) -> str:
    """``6``, ``"6"`` or ``"006"`` -> ``"006"``."""
    return f"{int(str(subject).strip()):03d}"


def _header_row(cells: pd.DataFrame, path: Path) -> int:
    """0-based index of the header row: HEADER_ROW if it is there, else searched."""

    def is_header(i: int) -> bool:
        values = {str(v).strip() for v in cells.iloc[i].tolist() if pd.notna(v)}
        return all(c in values for c in _REQUIRED)

    expected = HEADER_ROW - 1
    if expected < len(cells) and is_header(expected):
        return expected
    for i in range(min(HEADER_SEARCH_ROWS, len(cells))):
        if is_header(i):
            return i
    raise AnnotationError(
        f"{path.name}, sheet {SHEET}: no header row with {_REQUIRED} in the first "
        f"{HEADER_SEARCH_ROWS} rows (expected on row {HEADER_ROW})"
    )


def read_annotation(path: Path) -> pd.DataFrame:
    """The MICRO_ONLY sheet below its header, raw cells (``dtype=object``).

    Adds ``excel_row``: the row number as Excel shows it.
    """
    try:
        cells = pd.read_excel(path, sheet_name=SHEET, header=None, dtype=object)
    except ValueError as err:  # pandas raises ValueError for a missing sheet
        raise AnnotationError(f"{path.name}: {err}") from None
    h = _header_row(cells, path)
    names = [str(v).strip() if pd.notna(v) else f"Unnamed: {j}"
             for j, v in enumerate(cells.iloc[h].tolist())]
    body = cells.iloc[h + 1:].copy()
    body.columns = names
    body["excel_row"] = body.index + 1
    return body[body["Filename"].notna()].reset_index(drop=True)


def _int_cell(value: object, path: Path, row: int, column: str) -> int:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if number != number or number != int(number):
        raise AnnotationError(f"{path.name}: row {row}, {column}: {value!r} is not a frame number")
    return int(number)


def read_samm(data_root: Path | str) -> pd.DataFrame:
    """Index SAMM: one row per coded micro-movement, in the canonical schema.

    Parameters
    ----------
    data_root : path
        Folder that holds ``SAMM/``.

    Returns
    -------
    DataFrame
        Canonical table; onset, apex and offset as coded; ``part`` is empty.

    Raises
    ------
    DataLayoutError
        The coding file is missing.
    AnnotationError
        No header row, a row whose clip folder is missing, or a coded apex frame with no
        file (the message names the file, the spreadsheet row and the expected path).
    """
    root = Path(data_root)
    path = root / FOLDER / ANNOTATION
    if not path.is_file():
        raise DataLayoutError(f"SAMM coding file {ANNOTATION} not found in {root / FOLDER}")
    rows = []
    for rec in read_annotation(path).to_dict("records"):
        r = rec["excel_row"]
        try:
            subject = subject_folder(rec["Subject"])
        except ValueError:
            raise AnnotationError(
                f"{path.name}: row {r}, Subject: {rec['Subject']!r} is not a subject number"
            ) from None
        sample = str(rec["Filename"]).strip()
        folder = root / FOLDER / subject / sample
        if not folder.is_dir():
            raise AnnotationError(
                f"{path.name}: row {r} ({sample}): clip folder {relative(folder, root)} "
                f"not found under {root}"
            )
        frames = dict(list_frames(folder, FRAME_PATTERN))
        onset = _int_cell(rec["Onset Frame"], path, r, "Onset Frame")
        apex = _int_cell(rec["Apex Frame"], path, r, "Apex Frame")
        offset = _int_cell(rec["Offset Frame"], path, r, "Offset Frame")
        if apex not in frames:
            raise AnnotationError(
                f"{path.name}: row {r} ({sample}): apex frame {apex} has no file; expected "
                f"{relative(folder, root)}/{subject}_{apex:05d}.jpg"
            )
        emotion = str(rec["Estimated Emotion"]).strip()
        rows.append({
            "dataset": DATASET, "part": "", "subject": subject, "sample": sample,
            "emotion": emotion, "label": emotion_to_label(emotion, DATASET),
            "onset_frame": onset, "apex_frame": apex, "offset_frame": offset,
            "n_frames": len(frames), "clip_dir": relative(folder, root),
            "apex_path": relative(frames[apex], root), "flags": "",
        })
    return to_table(rows)
