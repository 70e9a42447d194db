from __future__ import annotations

import shutil
from dataclasses import replace

import openpyxl
import pytest

from merlib.data.casme2 import find_annotation, read_casme2
from merlib.data.schema import COLUMNS, validate_table
from merlib.errors import AnnotationError, DataLayoutError

from .conftest import CASME2_2014, CROSSING, animate, lay_out

SHEET = "CASME2-coding-20140508.xlsx"


def _sheet(root):
    path = root / "CASME2" / SHEET
    wb = openpyxl.load_workbook(path)
    return path, wb, wb.worksheets[0]


def test_2014_release_int_subjects_and_slash_apex(casme2_2014_root):
    t = validate_table(read_casme2(casme2_2014_root))
    assert list(t.columns) == list(COLUMNS)
    assert t["subject"].tolist() == ["sub01", "sub01", "sub02", "sub11"]
    assert t["sample"].tolist() == ["EP02_01f", "EP03_02", "EP19_06f", "EP01_11f"]
    assert t["emotion"].tolist() == ["happiness", "disgust", "fear", "repression"]
    assert t["label"].fillna("-").tolist() == ["positive", "negative", "-", "negative"]
    assert set(t["part"]) == {"raw"}
    first = t.iloc[0]
    assert (first.onset_frame, first.apex_frame, first.offset_frame) == (98, 100, 101)
    assert first.n_frames == 4
    assert first.clip_dir == "CASME2/CASME2_RAW_selected/sub01/EP02_01f"
    assert first.apex_path == "CASME2/CASME2_RAW_selected/sub01/EP02_01f/img100.jpg"
    assert t.loc[0, "flags"] == ""
    slash = t.iloc[1]  # apex '/' on a still clip: no motion peak, so the middle frame
    assert slash.apex_frame == 3
    assert slash.apex_path.endswith("EP03_02/img3.jpg")
    assert t.loc[1, "flags"] == "apex_uncoded:/;apex_estimated:middle"


def test_2019_release_text_subjects_extra_sheets_and_cropped(casme2_2019_root):
    t = read_casme2(casme2_2019_root)
    assert t["subject"].tolist() == ["sub01", "sub03", "sub04"]
    assert t["part"].tolist() == ["cropped", "cropped", "raw"]
    assert t.iloc[0].apex_path == "CASME2/Cropped/sub01/EP02_01f/reg_img99.jpg"
    assert t.iloc[1].apex_frame == 5
    assert t.loc[1, "flags"] == "apex_uncoded:/;apex_estimated:middle"
    assert t["label"].tolist()[:2] == ["positive", "surprise"]
    assert t["label"].isna().tolist() == [False, False, True]  # 'others'


def test_raw_is_preferred_when_both_releases_are_present(casme2_2014_root):
    cropped = [replace(r, part="cropped") for r in CASME2_2014]
    lay_out("casme2", casme2_2014_root, cropped)
    assert (casme2_2014_root / "CASME2" / "Cropped" / "sub01" / "EP02_01f").is_dir()
    t = read_casme2(casme2_2014_root)
    assert set(t["part"]) == {"raw"}


def test_newest_annotation_is_chosen(casme2_2014_root):
    lay_out("casme2", casme2_2014_root, CASME2_2014[:2], casme2_release="2019")
    assert find_annotation(casme2_2014_root).name == "CASME2-coding-20190701.xlsx"
    assert len(read_casme2(casme2_2014_root)) == 2


def test_missing_annotation_lists_what_was_found(casme2_2014_root):
    (casme2_2014_root / "CASME2" / "CASME2-coding-20140508.xlsx").unlink()
    with pytest.raises(DataLayoutError, match=r"CASME2-coding-\*\.xlsx.*CASME2_RAW_selected"):
        read_casme2(casme2_2014_root)


def test_missing_clip_folder_names_excel_row_and_expected_folder(casme2_2014_root):
    shutil.rmtree(casme2_2014_root / "CASME2" / "CASME2_RAW_selected" / "sub02" / "EP19_06f")
    with pytest.raises(AnnotationError) as err:
        read_casme2(casme2_2014_root)
    msg = str(err.value)
    assert "CASME2-coding-20140508.xlsx" in msg and "row 4" in msg
    assert "CASME2/CASME2_RAW_selected/sub02/EP19_06f" in msg


def test_coded_apex_without_file_names_row_and_path(casme2_2014_root):
    clip = casme2_2014_root / "CASME2" / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    (clip / "img100.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"row 2 .*apex frame 100.*EP02_01f/img100\.jpg"):
        read_casme2(casme2_2014_root)


def test_non_numeric_frame_cell_names_row_and_column(casme2_2014_root):
    path = casme2_2014_root / "CASME2" / "CASME2-coding-20140508.xlsx"
    wb = openpyxl.load_workbook(path)
    wb.worksheets[0]["D3"] = "n/a"
    wb.save(path)
    with pytest.raises(AnnotationError, match="row 3, OnsetFrame: 'n/a'"):
        read_casme2(casme2_2014_root)


def test_frames_cross_digit_boundary(casme2_2014_root):
    t = read_casme2(casme2_2014_root)
    assert t.iloc[0].n_frames == len(CROSSING)


def test_slash_apex_is_estimated_from_motion(casme2_2014_root):
    # EP03_02 (row 3, apex '/'): its face peaks at frame 4, not the middle frame 3.
    animate("casme2", casme2_2014_root, CASME2_2014[1], peak_frame=4)
    t = read_casme2(casme2_2014_root)
    assert t.loc[1, "apex_frame"] == 4
    assert t.loc[1, "apex_path"].endswith("EP03_02/img4.jpg")
    assert t.loc[1, "flags"] == "apex_uncoded:/;apex_estimated:motion"
    middle = read_casme2(casme2_2014_root, apex_fallback="middle")
    assert middle.loc[1, "apex_frame"] == 3
    assert middle.loc[1, "flags"] == "apex_uncoded:/;apex_estimated:middle"
    assert set(t.loc[[0, 2, 3], "flags"]) == {""}


@pytest.mark.parametrize("cell", [150, 50, "?"])
def test_apex_outside_the_clip_or_not_a_number_is_estimated(casme2_2014_root, cell):
    animate("casme2", casme2_2014_root, CASME2_2014[0], peak_frame=99)  # EP02_01f, row 2
    path, wb, ws = _sheet(casme2_2014_root)
    ws["E2"] = cell  # onset 98, offset 101
    wb.save(path)
    t = read_casme2(casme2_2014_root)
    assert t.loc[0, "apex_frame"] == 99
    reason = "apex_uncoded:?" if cell == "?" else f"apex_outside_clip:{cell}"
    assert t.loc[0, "flags"] == f"{reason};apex_estimated:motion"


def test_duplicated_row_names_the_file_and_both_excel_rows(casme2_2014_root):
    path, wb, ws = _sheet(casme2_2014_root)
    ws.append([cell.value for cell in ws[2]])  # EP02_01f again, on row 6
    wb.save(path)
    with pytest.raises(AnnotationError,
                       match=rf"^{SHEET}: row 6 \(sub01 EP02_01f\) repeats row 2"):
        read_casme2(casme2_2014_root)


@pytest.mark.parametrize("content", [b"not a spreadsheet", b"PK\x03\x04cut short", b""])
def test_file_that_is_not_a_spreadsheet_is_one_line_naming_it(casme2_2014_root, content):
    path = casme2_2014_root / "CASME2" / SHEET
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match=r"CASME2-coding-20140508\.xlsx: not a readable "
                                              r"\.xlsx spreadsheet") as err:
        read_casme2(casme2_2014_root)
    assert "\n" not in str(err.value)


def test_onset_after_offset_is_named(casme2_2014_root):
    path, wb, ws = _sheet(casme2_2014_root)
    ws["D4"] = 20  # EP19_06f: offset 12
    wb.save(path)
    with pytest.raises(AnnotationError, match=r"row 4 \(sub02 EP19_06f\): OnsetFrame 20 comes "
                                              r"after OffsetFrame 12"):
        read_casme2(casme2_2014_root)
