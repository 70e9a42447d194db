"""CASME II reader (Yan et al. 2014), in the owners' layout.

On disk, under ``<data_root>/CASME2/``::

    CASME2-coding-20140508.xlsx                    (or another CASME2-coding-*.xlsx)
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg   raw release
    Cropped/sub01/EP02_01f/reg_img46.jpg           the owners' cropped release

The coding sheet has its header on row 1 with two empty header cells; ``Subject`` is an
integer in some releases and text (``"01"``) in others; ``ApexFrame`` is ``/`` where no
apex was coded. Such an apex, and one outside its row's onset..offset, is estimated from
the clip (:mod:`merlib.data.apex`) and the row flagged.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from merlib.data._xlsx import read_sheet
from merlib.data.apex import apex_from_cell, check_method
from merlib.data.frames import list_frames, parse_frame_cell, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import AnnotationError, DataLayoutError

DATASET = "casme2"
FOLDER = "CASME2"
ANNOTATION_GLOB = "CASME2-coding-*.xlsx"


@dataclass(frozen=True)
class Release:
    """Where one image release keeps its frames."""

    folder: str  # under CASME2/
    pattern: str  # frame-name regex, group 1 = frame number
    name: str  # frame-name format, ``name.format(frame)``


#: part -> release, in order of preference (raw first).
RELEASES: dict[str, Release] = {
    "raw": Release("CASME2_RAW_selected", r"img(\d+)\.jpg", "img{}.jpg"),
    "cropped": Release("Cropped", r"reg_img(\d+)\.jpg", "reg_img{}.jpg"),
}
#: Header of the coding sheet; None marks the two empty header cells.
HEADER: list[str | None] = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
    "Action Units", "Estimated Emotion",
]
HEADER_2019_EXTRA: list[str] = ["Objective Classes"]
#: What the owners write where no apex was coded (an empty cell is read the same way).
NO_APEX = "/"
_REQUIRED = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]


def subject_folder(subject: int | str) -> str:
    """``1``, ``"1"`` or ``"01"`` -> ``"sub01"``."""
    return f"sub{int(str(subject).strip()):02d}"


def find_annotation(data_root: Path | str) -> Path:
    """The coding sheet; the newest-named one when several releases are present."""
    folder = Path(data_root) / FOLDER
    found = sorted(folder.glob(ANNOTATION_GLOB))
    found = [p for p in found if not p.name.startswith("~$")]  # Excel lock files
    if not found:
        listing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise DataLayoutError(
            f"no annotation file matching {ANNOTATION_GLOB} in {folder}; found {listing}"
        )
    # Release dates are in the names (20140508, 20190701): the last name is the newest.
    return found[-1]


def read_annotation(path: Path) -> pd.DataFrame:
    """The first sheet of the coding file, raw cells (``dtype=object``).

    Adds ``excel_row``: the row number as Excel shows it (header is row 1).

    Raises
    ------
    AnnotationError
        The file is not a readable spreadsheet, or the header lacks a column.
    """
    # keep_default_na=False: a cell reading "n/a" is reported as written, not as NaN.
    df = read_sheet(path, 0, dtype=object, keep_default_na=False)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise AnnotationError(
            f"{path.name}: header row 1 lacks columns {missing}; found {list(df.columns)}"
        )
    df["excel_row"] = df.index + 2
    return df[_filled(df["Filename"])].reset_index(drop=True)


def _filled(column: pd.Series) -> pd.Series:
    """True where a cell holds something (empty cells read as '' without NA parsing)."""
    return column.map(lambda v: str(v).strip() != "")


def _clip_folder(root: Path, subject: str, sample: str) -> tuple[str, Path] | None:
    for part, release in RELEASES.items():
        folder = root / FOLDER / release.folder / subject / sample
        if folder.is_dir():
            return part, folder
    return None


def read_casme2(data_root: Path | str, *, apex_fallback: str = "motion") -> pd.DataFrame:
    """Index CASME II: one row per coded clip, in the canonical schema.

    Parameters
    ----------
    data_root : path
        Folder that holds ``CASME2/``.
    apex_fallback : {"motion", "middle"}, default="motion"
        How an apex cell that is ``/``, empty, not a number, or outside the row's
        onset..offset is replaced (:func:`merlib.data.apex.apex_from_cell`): the frame of
        peak facial motion, or the middle frame between onset and offset.

    Returns
    -------
    DataFrame
        Canonical table (:data:`merlib.data.schema.COLUMNS`); ``part`` is ``raw`` or
        ``cropped`` (raw when both are present). A replaced apex is flagged with why
        (``apex_uncoded:/``, ``apex_outside_clip:<frame>``) and how
        (``apex_estimated:motion`` or ``apex_estimated:middle``).

    Raises
    ------
    DataLayoutError
        No coding sheet.
    AnnotationError
        The sheet is not a readable spreadsheet; a row's clip folder is missing, an
        onset or offset cell is not a number, onset comes after offset, two rows code the
        same clip, or a coded apex inside onset..offset has no file (the message names
        the sheet, the Excel row and the path).
    """
    check_method(apex_fallback)
    root = Path(data_root)
    path = find_annotation(root)
    rows = []
    seen: dict[tuple[str, str], int] = {}
    for rec in read_annotation(path).to_dict("records"):
        r = rec["excel_row"]
        try:
            subject = subject_folder(rec["Subject"])
        except ValueError:
            raise AnnotationError(
                f"{path.name}: row {r}, Subject: {rec['Subject']!r} is not a subject number"
            ) from None
        sample = str(rec["Filename"]).strip()
        if (subject, sample) in seen:
            raise AnnotationError(
                f"{path.name}: row {r} ({subject} {sample}) repeats row "
                f"{seen[subject, sample]}: each clip must be coded once"
            )
        seen[subject, sample] = r
        found = _clip_folder(root, subject, sample)
        if found is None:
            expected = " or ".join(
                (Path(FOLDER) / rel.folder / subject / sample).as_posix()
                for rel in RELEASES.values()
            )
            raise AnnotationError(
                f"{path.name}: row {r} ({subject} {sample}): clip folder {expected} "
                f"not found under {root}"
            )
        part, folder = found
        release = RELEASES[part]
        listed = list_frames(folder, release.pattern)
        frames = dict(listed)
        onset = parse_frame_cell(rec["OnsetFrame"], f"{path.name}: row {r}, OnsetFrame")
        offset = parse_frame_cell(rec["OffsetFrame"], f"{path.name}: row {r}, OffsetFrame")
        if onset > offset:
            raise AnnotationError(
                f"{path.name}: row {r} ({subject} {sample}): OnsetFrame {onset} comes after "
                f"OffsetFrame {offset}"
            )
        apex, flags = apex_from_cell(rec["ApexFrame"], onset, offset, listed, apex_fallback)
        if apex not in frames:
            # A usable coded apex whose file is gone: the copy is damaged, not the sheet.
            raise AnnotationError(
                f"{path.name}: row {r} ({subject} {sample}): apex frame {apex} has no "
                f"file; expected {relative(folder, root)}/{release.name.format(apex)}"
            )
        emotion = str(rec["Estimated Emotion"]).strip().lower()
        rows.append({
            "dataset": DATASET, "part": part, "subject": subject, "sample": sample,
            "emotion": emotion, "label": emotion_to_label(emotion, DATASET),
            "onset_frame": onset, "apex_frame": apex, "offset_frame": offset,
            "n_frames": len(frames), "clip_dir": relative(folder, root),
            "apex_path": relative(frames[apex], root), "flags": ";".join(flags),
        })
    return to_table(rows)
