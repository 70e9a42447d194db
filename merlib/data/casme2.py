"""CASME II reader (Yan et al. 2014), in the owners' layout.

On disk, under ``<data_root>/CASME2/``::

    CASME2-coding-20140508.xlsx                    (or another CASME2-coding-*.xlsx)
    CASME2_RAW_selected/sub01/EP02_01f/img46.jpg   raw release
    Cropped/sub01/EP02_01f/reg_img46.jpg           the owners' cropped release

The coding sheet has its header on row 1 with two empty header cells; ``Subject`` is an
integer in some releases and text (``"01"``) in others; ``ApexFrame`` is ``/`` where no
apex was coded.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from merlib.data.frames import list_frames, middle_frame, nearest_frame, relative
from merlib.data.labels import emotion_to_label
from merlib.data.schema import to_table
from merlib.errors import AnnotationError, DataLayoutError

DATASET = "casme2"
FOLDER = "CASME2"
ANNOTATION_GLOB = "CASME2-coding-*.xlsx"
#: part -> (frame folder under CASME2/, frame-name pattern); raw is preferred.
RELEASES: dict[str, tuple[str, str]] = {
    "raw": ("CASME2_RAW_selected", r"img(\d+)\.jpg"),
    "cropped": ("Cropped", r"reg_img(\d+)\.jpg"),
}
#: Header of the coding sheet; None marks the two empty header cells.
HEADER: list[str | None] = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
    "Action Units", "Estimated Emotion",
]
HEADER_2019_EXTRA: list[str] = ["Objective Classes"]
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
    """
    df = pd.read_excel(path, sheet_name=0, dtype=object)
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise AnnotationError(
            f"{path}: header row 1 lacks columns {missing}; found {list(df.columns)}"
        )
    df["excel_row"] = df.index + 2
    return df[df["Filename"].notna()].reset_index(drop=True)


def _int_cell(value: object, path: Path, row: int, column: str) -> int:
    try:
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if number != number or number != int(number):
        raise AnnotationError(f"{path}: row {row}, {column}: {value!r} is not a frame number")
    return int(number)


def _clip_folder(root: Path, subject: str, sample: str) -> tuple[str, Path] | None:
    for part, (top, _) in RELEASES.items():
        folder = root / FOLDER / top / subject / sample
        if folder.is_dir():
            return part, folder
    return None


def read_casme2(data_root: Path | str) -> pd.DataFrame:
    """Index CASME II: one row per coded clip, in the canonical schema.

    Parameters
    ----------
    data_root : path
        Folder that holds ``CASME2/``.

    Returns
    -------
    DataFrame
        Canonical table (:data:`merlib.data.schema.COLUMNS`); ``part`` is ``raw`` or
        ``cropped`` (raw when both are present); an uncoded apex (``/``) becomes the
        middle frame between onset and offset, flagged ``apex_missing:middle_frame``.

    Raises
    ------
    DataLayoutError
        No coding sheet.
    AnnotationError
        A row's clip folder is missing, a frame cell is not a number, or a coded apex
        frame has no file (the message names the sheet, the Excel row and the path).
    """
    root = Path(data_root)
    path = find_annotation(root)
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
        found = _clip_folder(root, subject, sample)
        if found is None:
            expected = " or ".join(
                (Path(FOLDER) / top / subject / sample).as_posix() for top, _ in RELEASES.values()
            )
            raise AnnotationError(
                f"{path.name}: row {r} ({subject} {sample}): clip folder {expected} "
                f"not found under {root}"
            )
        part, folder = found
        frames = dict(list_frames(folder, RELEASES[part][1]))
        onset = _int_cell(rec["OnsetFrame"], path, r, "OnsetFrame")
        offset = _int_cell(rec["OffsetFrame"], path, r, "OffsetFrame")
        flags = []
        if str(rec["ApexFrame"]).strip() == NO_APEX:
            # Documented fallback: the middle of the coded interval, snapped to a frame
            # that exists.
            apex = nearest_frame(sorted(frames), (onset + offset) // 2)
            flags.append("apex_missing:middle_frame")
        else:
            apex = _int_cell(rec["ApexFrame"], path, r, "ApexFrame")
            if apex not in frames:
                name = RELEASES[part][1].replace(r"(\d+)", str(apex)).replace("\\", "")
                raise AnnotationError(
                    f"{path.name}: row {r} ({subject} {sample}): apex frame {apex} has no "
                    f"file; expected {relative(folder, root)}/{name}"
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
