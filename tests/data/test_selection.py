from __future__ import annotations

import numpy as np
import pytest

from merlib.data.index import index_datasets
from merlib.data.selection import (
    MACRO_COLUMNS, clip_seed, macro_frames, micro_selection, mug_window,
)


def test_macro_frames(all_root):
    index = index_datasets(all_root)
    m = macro_frames(index, all_root)
    assert list(m.columns) == list(MACRO_COLUMNS)
    assert m["label"].notna().all()
    assert set(m["dataset"]) == {"ckplus", "oulu", "jaffe", "mug"}
    ck = m[m["dataset"] == "ckplus"]
    assert ck[ck["sample"] == "S005_001"]["frame"].tolist() == [9, 10, 11]
    assert ck[ck["sample"] == "S010_004"]["frame"].tolist() == [99, 100, 101]
    assert set(ck["sample"]) == {"S005_001", "S010_004"}  # unlabelled and neutral left out
    oulu = m[m["dataset"] == "oulu"]
    assert set(oulu["part"]) == {"VL_Strong", "VL_Dark"}  # NI left out
    assert oulu[oulu["sample"] == "P001_Anger"]["frame"].tolist() == [2, 3, 4]
    assert oulu["frame_path"].iloc[0] == "Oulu-CASIA/OriginalImg/VL/Strong/P001/Anger/002.jpeg"
    jaffe = m[m["dataset"] == "jaffe"]
    assert jaffe["sample"].tolist() == ["KA.AN1.39", "KL.HA2.31", "YM.SU3.60"]
    assert jaffe["frame"].isna().all()
    mug = m[m["dataset"] == "mug"]
    happy = mug[mug["sample"] == "001_happiness_take000"]["frame"].tolist()
    k = int(np.random.default_rng(clip_seed(0, "001_happiness_take000")).integers(6, 11))
    assert happy == mug_window(list(range(21)), k) and 6 <= len(happy) <= 10
    assert 10 in happy  # the middle frame
    short = mug[mug["sample"] == "002_surprise_take001"]["frame"].tolist()
    assert 98 in short and short == list(range(short[0], short[0] + len(short)))
    assert (all_root / m["frame_path"].iloc[-1]).is_file()
    assert m.equals(macro_frames(index, all_root))


def test_mug_frame_count_follows_seed(all_root):
    index = index_datasets(all_root, ["mug"])
    sizes = {len(macro_frames(index, all_root, seed=s, mug_frames=(1, 21))
                 .query("sample == '001_happiness_take000'")) for s in range(8)}
    assert len(sizes) > 1
    fixed = macro_frames(index, all_root, mug_frames=(4, 4))
    assert fixed.query("sample == '001_happiness_take000'")["frame"].tolist() == [9, 10, 11, 12]
    with pytest.raises(ValueError, match="mug_frames"):
        macro_frames(index, all_root, mug_frames=(5, 2))


def test_mug_window():
    assert mug_window(list(range(21)), 6) == [8, 9, 10, 11, 12, 13]
    assert mug_window(list(range(21)), 7) == [7, 8, 9, 10, 11, 12, 13]
    assert mug_window([1, 2, 3], 6) == [1, 2, 3]


def test_micro_selection_all(all_root):
    index = index_datasets(all_root)
    sel = micro_selection(index, "all")
    assert sel["label"].notna().all()
    assert sorted(sel["sample"]) == sorted([
        "EP02_01f", "EP03_02", "EP01_11f", "006_1_2", "011_2_7",
        "s01_po_01", "s01_ne_02", "s11_sur_01"])
    assert set(sel.loc[sel["dataset"] == "smic", "part"]) == {"HS"}
    only = micro_selection(index, "all", datasets=["samm"])
    assert only["sample"].tolist() == ["006_1_2", "011_2_7"]
    with pytest.raises(ValueError, match="name"):
        micro_selection(index, "megc2020")


def test_micro_selection_megc2019(megc_root):
    sel = micro_selection(index_datasets(megc_root), "megc2019")
    assert len(sel) == 442
