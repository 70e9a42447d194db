"""The writers produce the owners' literal formats (checked without the readers)."""
from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest

from merlib.data.layouts import ClipRecord, frame_path, write_annotations

from .conftest import CASME2_2014, CASME2_2019, CKPLUS, SAMM

SAMM_HEADER = [
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
]
CASME2_HEADER = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
    "Action Units", "Estimated Emotion",
]
CKPLUS_TEXT = re.compile(r"^\s+\d\.\d{7}e\+\d\d\s*$")


def test_samm_sheet_has_preamble_header_on_row_14_and_formula_durations(tmp_path):
    (path,) = write_annotations("samm", tmp_path, SAMM)
    assert path == tmp_path / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx"
    wb = openpyxl.load_workbook(path)  # formulas, not computed values
    assert wb.sheetnames == ["MICRO_ONLY"]
    ws = wb["MICRO_ONLY"]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[13] == SAMM_HEADER
    preamble = rows[:13]
    assert preamble[0][0] and all(v is None for r in preamble for v in r[1:])
    assert all(r[0] not in SAMM_HEADER for r in preamble)
    body = rows[14:]
    assert [r[0] for r in body] == ["006", "006", "011"]  # Subject is text
    assert [r[1] for r in body] == ["006_1_2", "006_1_9", "011_2_7"]
    assert body[0][3:6] == [5560, 5562, 5563]
    assert body[0][6] == "=F15-D15+1"
    assert all(str(r[6]).startswith("=") for r in body)
    assert ws.cell(15, 1).data_type == "s"


@pytest.mark.parametrize("release, name, subjects", [
    ("2014", "CASME2-coding-20140508.xlsx", [1, 1, 2, 11]),
    ("2019", "CASME2-coding-20190701.xlsx", ["01", "01", "02", "11"]),
])
def test_casme2_sheet_header_subject_type_and_slash_apex(tmp_path, release, name, subjects):
    (path,) = write_annotations("casme2", tmp_path, CASME2_2014, casme2_release=release)
    assert path == tmp_path / "CASME2" / name
    wb = openpyxl.load_workbook(path)
    rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    extra = ["Objective Classes"] if release == "2019" else []
    assert rows[0] == CASME2_HEADER + extra
    assert [r[0] for r in rows[1:]] == subjects
    assert [r[4] for r in rows[1:]] == [100, "/", 11, 9]
    assert [r[8] for r in rows[1:]] == ["happiness", "disgust", "fear", "repression"]
    if release == "2019":
        assert len(wb.sheetnames) > 1
        assert all(ws.max_row == 1 and ws["A1"].value is None for ws in wb.worksheets[1:])
    else:
        assert len(wb.sheetnames) == 1


def test_ckplus_emotion_files_on_last_frame_in_float_format(tmp_path):
    written = write_annotations("ckplus", tmp_path, CKPLUS)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == [
        "CK+/Emotion/S005/001/S005_001_00000011_emotion.txt",
        "CK+/Emotion/S010/004/S010_004_00000101_emotion.txt",
        "CK+/Emotion/S011/001/S011_001_00000003_emotion.txt",
    ]  # S005_002 is unlabelled: no file
    texts = {p.name: p.read_text() for p in written}
    assert texts["S005_001_00000011_emotion.txt"] == "   3.0000000e+00\n"
    assert all(CKPLUS_TEXT.match(t) for t in texts.values())


@pytest.mark.parametrize("dataset", ["smic", "oulu", "jaffe", "mug"])
def test_path_labelled_datasets_write_no_annotation(tmp_path, dataset):
    assert write_annotations(dataset, tmp_path, []) == []


@pytest.mark.parametrize("dataset, rec, frame, expected", [
    ("casme2", ClipRecord("sub01", "EP02_01f", "happiness", (46,)), 46,
     "CASME2/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg"),
    ("casme2", ClipRecord("sub01", "EP02_01f", "happiness", (46,), part="cropped"), 46,
     "CASME2/Cropped/sub01/EP02_01f/reg_img46.jpg"),
    ("samm", ClipRecord("006", "006_1_2", "Anger", (5562,)), 5562,
     "SAMM/006/006_1_2/006_05562.jpg"),
    ("smic", ClipRecord("s01", "s01_po_01", "positive", (12,)), 12,
     "SMIC/SMIC_all_raw/HS/s1/micro/positive/s1_po_01/image000012.bmp"),
    ("smic", ClipRecord("s14", "s14_sur_02", "surprise", (3,), part="NIR"), 3,
     "SMIC/SMIC_all_raw/NIR/s14/micro/surprise/s14_sur_02/image000003.bmp"),
    ("ckplus", ClipRecord("S005", "S005_001", "disgust", (11,)), 11,
     "CK+/cohn-kanade-images/S005/001/S005_001_00000011.png"),
    ("oulu", ClipRecord("P001", "P001_Anger", "Anger", (0,), part="VL_Strong"), 0,
     "Oulu-CASIA/OriginalImg/VL/Strong/P001/Anger/000.jpeg"),
    ("jaffe", ClipRecord("KA", "KA.AN1.39", "AN", (1,)), 1, "JAFFE/KA.AN1.39.tiff"),
    ("mug", ClipRecord("001", "001_happiness_take000", "happiness", (0,)), 7,
     "MUG/subjects3/001/happiness/take000/img_0007.jpg"),
    ("mug", ClipRecord("001", "001_session1_happiness_take000", "happiness", (0,),
                       part="session1"), 7,
     "MUG/subjects3/001/session1/happiness/take000/img_0007.jpg"),
])
def test_frame_path_is_the_owners_layout(tmp_path, dataset, rec, frame, expected):
    assert frame_path(dataset, tmp_path, rec, frame) == tmp_path / Path(expected)


def test_writers_reject_unknown_values(tmp_path):
    with pytest.raises(ValueError, match="casme2_release"):
        write_annotations("casme2", tmp_path, CASME2_2019, casme2_release="2016")
    with pytest.raises(ValueError, match="dataset 'fer'"):
        write_annotations("fer", tmp_path, [])
    with pytest.raises(ValueError, match="'joy'"):
        write_annotations("ckplus", tmp_path, [ClipRecord("S1", "S1_001", "joy", (1,))])
    with pytest.raises(ValueError, match="SMIC emotion"):
        frame_path("smic", tmp_path, ClipRecord("s01", "s01_po_01", "happy", (1,)), 1)


def test_workbooks_are_byte_identical_across_writes(tmp_path, monkeypatch):
    """openpyxl stamps the current time; merlib's writers must not let it through."""
    import hashlib
    import time

    rec = ClipRecord("006", "006_1_2", "Happiness", (1, 2, 3), 1, 2, 3)
    digests = []
    for i, t in enumerate((1_000_000_000, 1_700_000_000)):
        monkeypatch.setattr(time, "time", lambda t=t: float(t))
        monkeypatch.setattr(time, "localtime", lambda secs=None, t=t: time.gmtime(t))
        paths = write_annotations("samm", tmp_path / str(i), [rec])
        paths += write_annotations("casme2", tmp_path / str(i), [ClipRecord(
            "sub01", "EP02_01f", "happiness", (1, 2, 3), 1, 2, 3)], casme2_release="2019")
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert digests[0] == digests[1]
