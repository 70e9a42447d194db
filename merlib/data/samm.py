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

from merlib.data.frames import list_frames, nearest_frame, parse_frame_cell, relative
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
#: Apex cells that mean "not coded" (public loaders report a few SAMM rows without a
#: usable apex); they get the CASME II fallback: the middle of onset..offset, flagged.
NO_APEX: frozenset[str] = frozenset({"", "/", "-", "-1", "0"})
_REQUIRED = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
             "Estimated Emotion"]


def subject_folder(subject: int | str) -> str:
    """``6``, ``"6"`` or ``"006"`` -> ``"006"``."""
    return f"{int(str(subject).strip()):03d}"


def _header_row(cells: pd.DataFrame, path: Path) -> int:
    """0-based index of the header row: HEADER_ROW if it is there, else searched."""

    def is_header(i: int) -> bool:
        values = {str(v).strip() for v in cells.iloc[i].tolist()}
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
        cells = pd.read_excel(path, sheet_name=SHEET, header=None, dtype=object,
                              keep_default_na=False)
    except ValueError as err:  # pandas raises ValueError for a missing sheet
        raise AnnotationError(f"{path.name}: {err}") from None
    h = _header_row(cells, path)
    names = [str(v).strip() if str(v).strip() else f"Unnamed: {j}"
             for j, v in enumerate(cells.iloc[h].tolist())]
    body = cells.iloc[h + 1:].copy()
    body.columns = names
    body["excel_row"] = body.index + 1
    return body[_filled(body["Filename"])].reset_index(drop=True)


def _filled(column: pd.Series) -> pd.Series:
    """True where a cell holds something (empty cells read as '' without NA parsing)."""
    return column.map(lambda v: str(v).strip() != "")



def read_samm(data_root: Path | str) -> pd.DataFrame:
    """Index SAMM: one row per coded micro-movement, in the canonical schema.

    Parameters
    ----------
    data_root : path
        Folder that holds ``SAMM/``.

    Returns
    -------
    DataFrame
        Canonical table; onset, apex and offset as coded; ``part`` is empty. An
        uncoded apex (empty, ``/``, ``-1``) becomes the middle frame between onset and
        offset, flagged ``apex_missing:middle_frame``.

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
        onset = parse_frame_cell(rec["Onset Frame"], f"{path.name}: row {r}, Onset Frame")
        offset = parse_frame_cell(rec["Offset Frame"], f"{path.name}: row {r}, Offset Frame")
        flags = []
        if str(rec["Apex Frame"]).strip() in NO_APEX:
            apex = nearest_frame(sorted(frames), (onset + offset) // 2)
            flags.append("apex_missing:middle_frame")
        else:
            apex = parse_frame_cell(rec["Apex Frame"], f"{path.name}: row {r}, Apex Frame")
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
            "apex_path": relative(frames[apex], root), "flags": ";".join(flags),
        })
    return to_table(rows)
