from __future__ import annotations

import pytest

from merlib.data.smic import canonical_sample, canonical_subject, disk_sample, read_smic
from merlib.data.schema import validate_table
from merlib.errors import DataLayoutError


def test_canonical_names_and_parts(smic_root):
    t = validate_table(read_smic(smic_root))
    hs = t[t["part"] == "HS"]
    assert sorted(hs["sample"]) == ["s01_ne_02", "s01_po_01", "s11_sur_01"]
    assert sorted(set(t["subject"])) == ["s01", "s11"]
    assert sorted(t["part"]) == ["HS", "HS", "HS", "NIR", "VIS"]
    po = t[(t["sample"] == "s01_po_01") & (t["part"] == "HS")].iloc[0]
    assert po.emotion == "positive" and po.label == "positive"
    assert (po.onset_frame, po.apex_frame, po.offset_frame, po.n_frames) == (98, 99, 101, 4)
    assert po.clip_dir == "SMIC/SMIC_all_raw/HS/s1/micro/positive/s1_po_01"
    assert po.apex_path == po.clip_dir + "/image000099.bmp"
    assert set(t["flags"]) == {"apex:middle_frame"}
    sur = t[t["sample"] == "s11_sur_01"].iloc[0]
    assert sur.apex_frame == 7 and sur.label == "surprise"
    vis = t[t["part"] == "VIS"].iloc[0]
    assert vis["sample"] == "s01_po_01" and vis.apex_frame == 51


def test_name_conversion():
    assert canonical_subject("s1") == "s01" and canonical_subject("s20") == "s20"
    assert canonical_sample("s1_sur_05") == "s01_sur_05"
    assert disk_sample("s01_ne_11") == "s1_ne_11"


def test_unknown_emotion_folder_is_named(smic_root):
    bad = smic_root / "SMIC" / "SMIC_all_raw" / "HS" / "s1" / "micro" / "happy"
    bad.mkdir()
    with pytest.raises(DataLayoutError, match=r"micro/happy: unknown emotion folder"):
        read_smic(smic_root)


def test_missing_hs_part_is_named(tmp_path):
    (tmp_path / "SMIC").mkdir()
    with pytest.raises(DataLayoutError, match=r"SMIC_all_raw/HS"):
        read_smic(tmp_path)
