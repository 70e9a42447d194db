from __future__ import annotations

import numpy as np
import pytest

from merlib.data.index import index_datasets
from merlib.data.labels import MACRO_NEGATIVE, MEGC2019_NEGATIVE, emotion_to_label, macro_label
from merlib.data.layouts import ClipRecord as R
from merlib.data.selection import (
    MACRO_COLUMNS, clip_seed, macro_frames, micro_selection, mug_window,
)
from merlib.errors import ConfigError

from .conftest import lay_out


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


def _fear_and_contempt_root(root):
    lay_out("ckplus", root, [R("S020", "S020_001", "fear", (1, 2, 3, 4)),
                             R("S020", "S020_002", "contempt", (1, 2, 3, 4)),
                             R("S020", "S020_003", "sadness", (1, 2, 3, 4)),
                             R("S020", "S020_004", "anger", (1, 2, 3, 4))])
    lay_out("oulu", root, [R("P003", "P003_Fear", "Fear", (0, 1, 2, 3)),
                           R("P003", "P003_Disgust", "Disgust", (0, 1, 2, 3))])
    lay_out("jaffe", root, [R("KA", "KA.FE1.30", "FE", (1,)), R("KA", "KA.SA1.33", "SA", (1,))])
    lay_out("mug", root, [R("004", "004_fear_take000", "fear", tuple(range(7))),
                          R("004", "004_happiness_take000", "happiness", tuple(range(7)))])
    return root


def test_macro_set_uses_the_papers_negative_class(tmp_path):
    """The paper's macro mapping: negative = anger, disgust, sadness; fear and contempt out."""
    root = _fear_and_contempt_root(tmp_path)
    index = index_datasets(root)
    # The index keeps the MEGC2019 mapping (fear is negative there) ...
    assert index.set_index("sample").loc["S020_001", "label"] == "negative"
    # ... the transfer set applies the paper's.
    m = macro_frames(index, root)
    assert set(m["sample"]) == {"S020_003", "S020_004", "P003_Disgust", "KA.SA1.33",
                                "004_happiness_take000"}
    assert set(m.loc[m["label"] == "negative", "emotion"].str.lower()) == {
        "anger", "disgust", "sadness"}
    restored = macro_frames(index, root, macro_negative=MEGC2019_NEGATIVE)
    assert set(restored["sample"]) - set(m["sample"]) == {
        "S020_001", "S020_002", "P003_Fear", "KA.FE1.30", "004_fear_take000"}
    assert set(restored.loc[restored["sample"] == "S020_002", "label"]) == {"negative"}
    with pytest.raises(ConfigError, match=r"macro_negative: expected a non-empty subset of "):
        macro_frames(index, root, macro_negative=("anger", "joy"))
    with pytest.raises(ConfigError, match="got the string 'anger'"):
        macro_frames(index, root, macro_negative="anger")


def test_micro_mapping_is_unchanged():
    assert MACRO_NEGATIVE == ("anger", "disgust", "sadness")
    assert emotion_to_label("Fear", "samm") == "negative"
    assert emotion_to_label("Contempt", "samm") == "negative"
    assert emotion_to_label("fear", "casme2") is None
    assert macro_label("Fear") is None and macro_label("SAD") == "negative"
