from __future__ import annotations

import shutil

import openpyxl
import pytest

from merlib.data.samm import read_samm
from merlib.data.schema import validate_table
from merlib.errors import AnnotationError, DataLayoutError


def _sheet(root):
    path = root / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx"
    wb = openpyxl.load_workbook(path)
    return path, wb, wb["MICRO_ONLY"]


def test_reads_below_preamble_with_text_subjects_and_formulas(samm_root):
    t = validate_table(read_samm(samm_root))
    assert t["subject"].tolist() == ["006", "006", "011"]
    assert t["sample"].tolist() == ["006_1_2", "006_1_9", "011_2_7"]
    assert t["emotion"].tolist() == ["Anger", "Other", "Happiness"]
    assert t["label"].fillna("-").tolist() == ["negative", "-", "positive"]
    first = t.iloc[0]
    assert (first.onset_frame, first.apex_frame, first.offset_frame) == (5560, 5562, 5563)
    assert first.n_frames == 4
    assert first.clip_dir == "SAMM/006/006_1_2"
    assert first.apex_path == "SAMM/006/006_1_2/006_05562.jpg"
    assert t.iloc[2].apex_path == "SAMM/011/011_2_7/011_00099.jpg"
    assert set(t["part"]) == {""} and set(t["flags"]) == {""}


def test_header_found_when_preamble_length_differs(samm_root):
    path, wb, ws = _sheet(samm_root)
    ws.delete_rows(1, 2)  # header now on row 12
    wb.save(path)
    t = read_samm(samm_root)
    assert t["sample"].tolist() == ["006_1_2", "006_1_9", "011_2_7"]


def test_sheet_without_header_row_is_an_error_naming_the_file(samm_root):
    path, wb, ws = _sheet(samm_root)
    ws.delete_rows(14)
    wb.save(path)
    with pytest.raises(AnnotationError, match=r"SAMM_Micro_FACS_Codes_v2\.xlsx.*no header row"):
        read_samm(samm_root)


def test_missing_sheet_or_file(samm_root):
    path, wb, ws = _sheet(samm_root)
    ws.title = "Sheet1"
    wb.save(path)
    with pytest.raises(AnnotationError, match="MICRO_ONLY"):
        read_samm(samm_root)
    path.unlink()
    with pytest.raises(DataLayoutError, match="SAMM_Micro_FACS_Codes_v2.xlsx"):
        read_samm(samm_root)


def test_missing_clip_folder_names_row_and_folder(samm_root):
    shutil.rmtree(samm_root / "SAMM" / "011" / "011_2_7")
    with pytest.raises(AnnotationError, match=r"\.xlsx: row 17 \(011_2_7\).*SAMM/011/011_2_7"):
        read_samm(samm_root)


def test_coded_apex_without_file(samm_root):
    (samm_root / "SAMM" / "006" / "006_1_2" / "006_05562.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"row 15 .*apex frame 5562.*006_05562\.jpg"):
        read_samm(samm_root)


@pytest.mark.parametrize("cell", [-1, "/", None])
def test_uncoded_apex_falls_back_to_middle_frame(samm_root, cell):
    path, wb, ws = _sheet(samm_root)
    ws["E16"] = cell  # 006_1_9: onset 10, offset 12
    wb.save(path)
    t = read_samm(samm_root)
    assert t.loc[1, "apex_frame"] == 11
    assert t.loc[1, "flags"] == "apex_missing:middle_frame"
    assert t.loc[0, "flags"] == ""
