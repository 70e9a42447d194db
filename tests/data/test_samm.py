from __future__ import annotations

import shutil

import openpyxl
import pytest

from merlib.data.samm import read_samm
from merlib.data.schema import validate_table
from merlib.errors import AnnotationError, ConfigError, DataLayoutError

from .conftest import SAMM, animate


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


@pytest.mark.parametrize("cell, reason", [
    (-1, "apex_outside_clip:-1"), ("/", "apex_uncoded:/"), (None, "apex_uncoded:empty")])
def test_uncoded_apex_of_a_still_clip_is_the_middle_frame(samm_root, cell, reason):
    path, wb, ws = _sheet(samm_root)
    ws["E16"] = cell  # 006_1_9: onset 10, offset 12; its frames do not move
    wb.save(path)
    t = read_samm(samm_root)
    assert t.loc[1, "apex_frame"] == 11
    assert t.loc[1, "flags"] == f"{reason};apex_estimated:middle"
    assert t.loc[0, "flags"] == ""


@pytest.mark.parametrize("cell", [5600, 5500])
def test_apex_outside_onset_offset_is_estimated_not_fatal(samm_root, cell):
    # The shipped sheet's typing errors: an apex after the offset, or before the onset.
    animate("samm", samm_root, SAMM[0], peak_frame=5561)  # 006_1_2, row 15: 5560..5563
    path, wb, ws = _sheet(samm_root)
    ws["E15"] = cell
    wb.save(path)
    t = read_samm(samm_root)
    assert t.loc[0, "apex_frame"] == 5561
    assert t.loc[0, "apex_path"] == "SAMM/006/006_1_2/006_05561.jpg"
    assert t.loc[0, "flags"] == f"apex_outside_clip:{cell};apex_estimated:motion"
    middle = read_samm(samm_root, apex_fallback="middle")
    assert middle.loc[0, "flags"] == f"apex_outside_clip:{cell};apex_estimated:middle"
    with pytest.raises(ConfigError, match="apex_fallback"):
        read_samm(samm_root, apex_fallback="nearest")


def test_duplicated_row_names_the_file_and_both_excel_rows(samm_root):
    path, wb, ws = _sheet(samm_root)
    ws.append([c.value for c in ws[16]])  # 006_1_9 again, on row 18
    wb.save(path)
    with pytest.raises(AnnotationError, match=r"^SAMM_Micro_FACS_Codes_v2\.xlsx: row 18 "
                                              r"\(006_1_9\) repeats row 16"):
        read_samm(samm_root)


def test_cut_short_file_is_one_line_naming_it(samm_root):
    path = samm_root / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(AnnotationError, match=r"SAMM_Micro_FACS_Codes_v2\.xlsx: not a readable "
                                              r"\.xlsx spreadsheet \(BadZipFile"):
        read_samm(samm_root)
