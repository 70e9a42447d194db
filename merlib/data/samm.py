"""SAMM reader (Davison et al. 2018), in the owners' layout.

On disk, under ``<data_root>/SAMM/``::

    SAMM_Micro_FACS_Codes_v2.xlsx      sheet MICRO_ONLY, header on spreadsheet row 14
    006/006_1_2/006_05562.jpg          <subject>/<clip>/<subject>_<frame:05d>.jpg

The 13 rows above the header are a title, citation notes and a symbol key. ``Duration``
holds formulas and is ignored. ``Subject`` is text (``"006"``) that pandas may turn into
the integer 6. The shipped sheet has apex frames outside their clip's onset..offset
(typing errors); those, and uncoded apex cells, are estimated from the clip
(:mod:`merlib.data.apex`) and the row flagged.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from merlib.data._xlsx import read_sheet
from merlib.data.apex import apex_from_cell, check_method
from merlib.data.frames import list_frames, parse_frame_cell, relative
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

    Raises
    ------
    AnnotationError
        Not a readable spreadsheet, no sheet MICRO_ONLY, or no header row.
    """
    cells = read_sheet(path, SHEET, header=None, dtype=object, keep_default_na=False)
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



def read_samm(data_root: Path | str, *, apex_fallback: str = "motion") -> pd.DataFrame:
    """Index SAMM: one row per coded micro-movement, in the canonical schema.

    Parameters
    ----------
    data_root : path
        Folder that holds ``SAMM/``.
    apex_fallback : {"motion", "middle"}, default="motion"
        How an apex cell that is empty, not a number, or outside the row's onset..offset
        is replaced (:func:`merlib.data.apex.apex_from_cell`): the frame of peak facial
        motion, or the middle frame between onset and offset.

    Returns
    -------
    DataFrame
        Canonical table; onset, apex and offset as coded; ``part`` is empty. A replaced
        apex is flagged with why (``apex_outside_clip:<frame>``, ``apex_uncoded:<cell>``)
        and how (``apex_estimated:motion`` or ``apex_estimated:middle``).

    Raises
    ------
    DataLayoutError
        The coding file is missing.
    AnnotationError
        The file is not a readable spreadsheet, has no MICRO_ONLY sheet or no header
        row; a row's clip folder is missing, onset comes after offset, two rows code the
        same clip, or a coded apex inside onset..offset has no file (the message names
        the file, the spreadsheet row and the expected path).
    """
    check_method(apex_fallback)
    root = Path(data_root)
    path = root / FOLDER / ANNOTATION
    if not path.is_file():
        raise DataLayoutError(f"SAMM coding file {ANNOTATION} not found in {root / FOLDER}")
    rows = []
    seen: dict[str, int] = {}
    for rec in read_annotation(path).to_dict("records"):
        r = rec["excel_row"]
        try:
            subject = subject_folder(rec["Subject"])
        except ValueError:
            raise AnnotationError(
                f"{path.name}: row {r}, Subject: {rec['Subject']!r} is not a subject number"
            ) from None
        sample = str(rec["Filename"]).strip()
        if sample in seen:
            raise AnnotationError(
                f"{path.name}: row {r} ({sample}) repeats row {seen[sample]}: each clip "
                f"must be coded once"
            )
        seen[sample] = r
        folder = root / FOLDER / subject / sample
        if not folder.is_dir():
            raise AnnotationError(
                f"{path.name}: row {r} ({sample}): clip folder {relative(folder, root)} "
                f"not found under {root}"
            )
        listed = list_frames(folder, FRAME_PATTERN)
        frames = dict(listed)
        onset = parse_frame_cell(rec["Onset Frame"], f"{path.name}: row {r}, Onset Frame")
        offset = parse_frame_cell(rec["Offset Frame"], f"{path.name}: row {r}, Offset Frame")
        if onset > offset:
            raise AnnotationError(
                f"{path.name}: row {r} ({sample}): Onset Frame {onset} comes after "
                f"Offset Frame {offset}"
            )
        apex, flags = apex_from_cell(rec["Apex Frame"], onset, offset, listed, apex_fallback)
        if apex not in frames:
            # A usable coded apex whose file is gone: the copy is damaged, not the sheet.
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
