from __future__ import annotations

import shutil
from dataclasses import replace

import openpyxl
import pytest

from merlib.data.casme2 import find_annotation, read_casme2
from merlib.data.schema import COLUMNS, validate_table
from merlib.errors import AnnotationError, DataLayoutError

from .conftest import CASME2_2014, CROSSING, lay_out


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
    slash = t.iloc[1]  # apex '/': middle of onset 1 .. offset 5
    assert slash.apex_frame == 3
    assert slash.apex_path.endswith("EP03_02/img3.jpg")
    assert t.loc[1, "flags"] == "apex_missing:middle_frame"


def test_2019_release_text_subjects_extra_sheets_and_cropped(casme2_2019_root):
    t = read_casme2(casme2_2019_root)
    assert t["subject"].tolist() == ["sub01", "sub03", "sub04"]
    assert t["part"].tolist() == ["cropped", "cropped", "raw"]
    assert t.iloc[0].apex_path == "CASME2/Cropped/sub01/EP02_01f/reg_img99.jpg"
    assert t.iloc[1].apex_frame == 5 and t.loc[1, "flags"] == "apex_missing:middle_frame"
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
