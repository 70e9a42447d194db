"""Writers of the owners' on-disk layouts: where each frame goes, and the annotation files.

The inverse of the readers: the synthetic-data generator and the test fixtures use these
to lay out data exactly as the owners ship it (see ``/work/shared/datasets.md``). The
folder and file-name conventions come from the reader modules, so readers and writers
cannot drift apart.

Only the files' *format* is the owners'; the preamble text written here is generic
placeholder text, never the owners' own.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import openpyxl

from merlib.data._xlsx import freeze_xlsx

from merlib.data import casme2, ckplus, jaffe, mug, oulu, samm, smic

#: Image file extension per dataset.
IMAGE_EXT: dict[str, str] = {
    "casme2": ".jpg", "samm": ".jpg", "smic": ".bmp", "ckplus": ".png",
    "oulu": ".jpeg", "jaffe": ".tiff", "mug": ".jpg",
}

#: CASME II releases: release key -> annotation file name.
CASME2_RELEASES: dict[str, str] = {
    "2014": "CASME2-coding-20140508.xlsx",
    "2019": "CASME2-coding-20190701.xlsx",
}

#: Placeholder preamble for SAMM's 13 rows above the header (the real file has a title,
#: citation notes and a symbol key there; readers must skip whatever is in them).
SAMM_PREAMBLE: tuple[str, ...] = (
    "Micro-movement coding sheet (placeholder title)",
    "",
    "Placeholder: citation notes line 1",
    "Placeholder: citation notes line 2",
    "",
    "Key:",
    "Placeholder symbol key line 1",
    "Placeholder symbol key line 2",
    "Placeholder symbol key line 3",
    "Placeholder symbol key line 4",
    "",
    "Placeholder note",
    "",
)


@dataclass(frozen=True)
class ClipRecord:
    """One clip (or image) to lay out, named canonically.

    Attributes
    ----------
    subject : str
        Canonical subject (``sub01``, ``006``, ``s01``, ``S005``, ``P001``, ``KA``, ``001``).
    sample : str
        Canonical sample (``EP02_01f``, ``006_1_2``, ``s01_po_01``, ``S005_001``,
        ``P001_Anger``, ``KA.AN1.39``, ``001_happiness_take000``,
        ``001_session0_happiness_take000``).
    emotion : str or None
        The owners' spelling for the dataset: CASME II ``happiness``, SAMM ``Happiness``,
        SMIC ``positive``, CK+ ``happy`` (None: unlabelled sequence), Oulu ``Happiness``,
        JAFFE code ``HA``, MUG ``happiness``.
    frames : tuple of int
        Frame numbers as they appear in file names, in temporal order.
    onset, apex, offset : int or None
        Coded frames (CASME II, SAMM); a None apex is written ``/`` for CASME II.
    action_units : str
        The ``Action Units`` cell (CASME II, SAMM).
    part : str
        SMIC ``HS``/``VIS``/``NIR`` (default HS); Oulu ``VL_Strong`` etc. (default
        VL_Strong); CASME II ``raw``/``cropped`` (default raw); MUG the session folder
        (``session0``; default none: the subject's plain emotion folders).
    """

    subject: str
    sample: str
    emotion: str | None
    frames: tuple[int, ...]
    onset: int | None = None
    apex: int | None = None
    offset: int | None = None
    action_units: str = ""
    part: str = ""


def frame_path(dataset: str, data_root: Path, rec: ClipRecord, frame: int) -> Path:
    """Where the owners put frame ``frame`` of ``rec`` (absolute, under ``data_root``).

    For JAFFE the frame number is ignored: the image is the sample.
    """
    root = Path(data_root)
    if dataset == "casme2":
        release = casme2.RELEASES[rec.part or "raw"]
        return (root / casme2.FOLDER / release.folder / rec.subject / rec.sample
                / release.name.format(frame))
    if dataset == "samm":
        return root / samm.FOLDER / rec.subject / rec.sample / f"{rec.subject}_{frame:05d}.jpg"
    if dataset == "smic":
        if rec.emotion not in smic.EMOTIONS:
            raise ValueError(f"SMIC emotion {rec.emotion!r} is not one of {smic.EMOTIONS}")
        return (root / smic.FOLDER / smic.RAW_DIR / (rec.part or "HS")
                / smic.disk_subject(rec.subject) / smic.MICRO_DIR / rec.emotion
                / smic.disk_sample(rec.sample) / f"image{frame:06d}.bmp")
    if dataset == "ckplus":
        seq = _suffix(rec.sample, rec.subject + "_")
        return (root / ckplus.FOLDER / ckplus.IMAGES_DIR / rec.subject / seq
                / f"{rec.sample}_{frame:08d}.png")
    if dataset == "oulu":
        system, lighting = (rec.part or "VL_Strong").split("_")
        emotion = _suffix(rec.sample, rec.subject + "_")
        return (root / oulu.FOLDER / oulu.IMAGES_DIR / system / lighting / rec.subject
                / emotion / f"{frame:03d}.jpeg")
    if dataset == "jaffe":
        return root / jaffe.FOLDER / f"{rec.sample}.tiff"
    if dataset == "mug":
        # A session (part "session0") is one more folder level between subject and emotion.
        session = [rec.part] if rec.part else []
        take = _suffix(rec.sample, "_".join([rec.subject, *session, str(rec.emotion)]) + "_")
        return (root.joinpath(mug.FOLDER, mug.SUBJECTS_DIR, rec.subject, *session)
                / str(rec.emotion) / take / f"img_{frame:04d}.jpg")
    raise ValueError(f"dataset {dataset!r}: expected one of {list(IMAGE_EXT)}")


def _suffix(sample: str, prefix: str) -> str:
    if not sample.startswith(prefix) or len(sample) == len(prefix):
        raise ValueError(f"sample {sample!r} does not start with {prefix!r}")
    return sample[len(prefix):]


def write_annotations(
    dataset: str,
    data_root: Path,
    records: Sequence[ClipRecord],
    *,
    casme2_release: str = "2014",
) -> list[Path]:
    """Write the dataset's annotation files in the owners' format.

    Parameters
    ----------
    dataset : str
        Dataset key.
    data_root : path
        Root that holds (or will hold) the dataset folder.
    records : sequence of ClipRecord
        The clips, in the order their rows are written.
    casme2_release : {"2014", "2019"}
        CASME II coding release: 2014 writes ``Subject`` as an integer; 2019 writes it as
        text (``"01"``), adds ``Objective Classes`` and an extra empty sheet.

    Returns
    -------
    list of Path
        The files written; empty for SMIC, Oulu, JAFFE and MUG (labels are in paths).
    """
    root = Path(data_root)
    if dataset == "casme2":
        return [_write_casme2(root, records, casme2_release)]
    if dataset == "samm":
        return [_write_samm(root, records)]
    if dataset == "ckplus":
        return _write_ckplus(root, records)
    if dataset in ("smic", "oulu", "jaffe", "mug"):
        return []
    raise ValueError(f"dataset {dataset!r}: expected one of {list(IMAGE_EXT)}")


def _save_reproducibly(wb: "openpyxl.Workbook", path: Path) -> None:
    # openpyxl stamps "now" into the file: freeze it so a seed gives identical bytes.
    wb.save(path)
    freeze_xlsx(path)


def _write_casme2(root: Path, records: Sequence[ClipRecord], release: str) -> Path:
    if release not in CASME2_RELEASES:
        raise ValueError(f"casme2_release {release!r}: expected one of {list(CASME2_RELEASES)}")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    header = list(casme2.HEADER) + (casme2.HEADER_2019_EXTRA if release == "2019" else [])
    ws.append(header)
    for rec in records:
        number = int(rec.subject.removeprefix("sub"))
        subject: int | str = number if release == "2014" else f"{number:02d}"
        row = [subject, rec.sample, None, rec.onset,
               casme2.NO_APEX if rec.apex is None else rec.apex, rec.offset, None,
               rec.action_units, rec.emotion]
        ws.append(row + ([None] if release == "2019" else []))
    if release == "2019":
        wb.create_sheet("Sheet2")
        wb.create_sheet("Sheet3")
    path = root / casme2.FOLDER / CASME2_RELEASES[release]
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_reproducibly(wb, path)
    return path


def _write_samm(root: Path, records: Sequence[ClipRecord]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = samm.SHEET
    for line in SAMM_PREAMBLE:
        ws.append([line or None])
    ws.append(list(samm.HEADER))
    for i, rec in enumerate(records):
        r = samm.HEADER_ROW + 1 + i
        inducement = rec.sample.split("_")[1] if rec.sample.count("_") >= 2 else None
        ws.append([
            rec.subject,  # text, as the owners store it
            rec.sample, int(inducement) if inducement and inducement.isdigit() else inducement,
            rec.onset, rec.apex, rec.offset,
            f"=F{r}-D{r}+1",  # Duration: a formula in the owners' file
            "Micro", rec.action_units, rec.emotion, None, None,
        ])
    path = root / samm.FOLDER / samm.ANNOTATION
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_reproducibly(wb, path)
    return path


def _write_ckplus(root: Path, records: Sequence[ClipRecord]) -> list[Path]:
    codes = {name: code for code, name in ckplus.CODES.items()}
    written = []
    for rec in records:
        if rec.emotion is None:
            continue  # unlabelled sequence: the owners ship no file
        if rec.emotion not in codes:
            raise ValueError(f"CK+ emotion {rec.emotion!r}: expected one of {list(codes)}")
        last = rec.frames[-1]
        seq = _suffix(rec.sample, rec.subject + "_")
        path = (root / ckplus.FOLDER / ckplus.EMOTION_DIR / rec.subject / seq
                / f"{rec.sample}_{last:08d}_emotion.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ckplus.format_code(codes[rec.emotion]))
        written.append(path)
    return written
