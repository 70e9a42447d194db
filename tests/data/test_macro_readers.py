"""CK+, Oulu-CASIA, JAFFE and MUG readers."""
from __future__ import annotations

import pytest

from merlib.data.ckplus import read_ckplus
from merlib.data.jaffe import read_jaffe
from merlib.data.mug import read_mug
from merlib.data.oulu import read_oulu
from merlib.data.schema import validate_table
from merlib.errors import AnnotationError, DataLayoutError


def _by_sample(t):
    return t.set_index(["part", "sample"]) if t["part"].ne("").any() else t.set_index("sample")


def test_ckplus_labels_from_float_codes_and_unlabelled_sequence(ckplus_root):
    t = validate_table(read_ckplus(ckplus_root))
    assert t["sample"].tolist() == ["S005_001", "S005_002", "S010_004", "S011_001"]
    assert t["subject"].tolist() == ["S005", "S005", "S010", "S011"]
    assert t["emotion"].fillna("-").tolist() == ["disgust", "-", "happy", "neutral"]
    assert t["label"].fillna("-").tolist() == ["negative", "-", "positive", "-"]
    s = _by_sample(t)
    assert (s.loc["S005_001", "onset_frame"], s.loc["S005_001", "apex_frame"],
            s.loc["S005_001", "offset_frame"], s.loc["S005_001", "n_frames"]) == (1, 11, 11, 11)
    assert s.loc["S005_001", "apex_path"] == "CK+/cohn-kanade-images/S005/001/S005_001_00000011.png"
    assert s.loc["S010_004", "apex_frame"] == 101  # numeric sort across 99 -> 100


@pytest.mark.parametrize("text", ["", "three\n", "   9.0000000e+00\n", "   2.5000000e+00\n"])
def test_ckplus_malformed_emotion_file_is_named(ckplus_root, text):
    path = ckplus_root / "CK+" / "Emotion" / "S010" / "004" / "S010_004_00000101_emotion.txt"
    path.write_text(text)
    with pytest.raises(AnnotationError, match="S010_004_00000101_emotion.txt"):
        read_ckplus(ckplus_root)


def test_oulu_parts_samples_and_last_frame_apex(oulu_root):
    t = validate_table(read_oulu(oulu_root))
    assert sorted(t["part"]) == ["NI_Weak", "VL_Dark", "VL_Strong", "VL_Strong"]
    s = _by_sample(t)
    anger = s.loc[("VL_Strong", "P001_Anger")]
    assert anger.emotion == "Anger" and anger.label == "negative" and anger.subject == "P001"
    assert (anger.onset_frame, anger.apex_frame, anger.offset_frame) == (0, 4, 4)
    assert anger.apex_path == "Oulu-CASIA/OriginalImg/VL/Strong/P001/Anger/004.jpeg"
    assert s.loc[("VL_Strong", "P001_Happiness")].apex_frame == 101
    assert s.loc[("VL_Dark", "P002_Surprise")].label == "surprise"


def test_oulu_unknown_emotion_folder(oulu_root):
    bad = oulu_root / "Oulu-CASIA" / "OriginalImg" / "VL" / "Strong" / "P001" / "Joy"
    bad.mkdir()
    with pytest.raises(DataLayoutError, match="P001/Joy: unknown emotion folder"):
        read_oulu(oulu_root)


def test_jaffe_images_skip_readme(jaffe_root):
    t = validate_table(read_jaffe(jaffe_root))
    assert t["sample"].tolist() == ["KA.AN1.39", "KA.NE1.26", "KL.HA2.31", "YM.SU3.60"]
    assert t["subject"].tolist() == ["KA", "KA", "KL", "YM"]
    assert t["emotion"].tolist() == ["anger", "neutral", "happiness", "surprise"]
    assert t["label"].fillna("-").tolist() == ["negative", "-", "positive", "surprise"]
    assert t["apex_path"].tolist()[0] == "JAFFE/KA.AN1.39.tiff"
    assert t["n_frames"].tolist() == [1, 1, 1, 1]
    assert t["apex_frame"].isna().all() and t["onset_frame"].isna().all()


@pytest.mark.parametrize("name, message", [
    ("KA.XX1.40.tiff", "unknown emotion code 'XX'"),
    ("portrait.tiff", "file name is not"),
])
def test_jaffe_bad_file_name_is_named(jaffe_root, name, message):
    (jaffe_root / "JAFFE" / name).write_bytes(b"x")
    with pytest.raises(AnnotationError, match=message) as err:
        read_jaffe(jaffe_root)
    assert name in str(err.value)


def test_mug_takes_and_middle_apex(mug_root):
    t = validate_table(read_mug(mug_root))
    assert t["sample"].tolist() == [
        "001_happiness_take000", "001_neutral_take000", "002_surprise_take001",
        "003_session0_anger_take000", "003_session1_anger_take000"]
    assert t["label"].fillna("-").tolist() == ["positive", "-", "surprise", "negative", "negative"]
    s = t.set_index("sample")  # unique across sessions: the sample alone is the key
    happy = s.loc["001_happiness_take000"]
    assert (happy.onset_frame, happy.apex_frame, happy.offset_frame, happy.n_frames) == (0, 10, 20, 21)
    assert happy.apex_path == "MUG/subjects3/001/happiness/take000/img_0010.jpg"
    assert s.loc["002_surprise_take001"].apex_frame == 98
    assert set(t["flags"]) == {"apex:middle_frame"}


def test_mug_session_level_and_a_video_beside_the_frames(mug_root):
    t = read_mug(mug_root).set_index("sample")
    # Both sessions hold anger/take000: the session keeps the sample names apart.
    s0, s1 = t.loc["003_session0_anger_take000"], t.loc["003_session1_anger_take000"]
    assert (s0.part, s1.part) == ("session0", "session1")
    assert s0.clip_dir == "MUG/subjects3/003/session0/anger/take000"
    assert (s1.onset_frame, s1.apex_frame, s1.offset_frame, s1.n_frames) == (10, 12, 14, 5)
    assert s1.apex_path == "MUG/subjects3/003/session1/anger/take000/img_0012.jpg"
    assert (mug_root / "MUG/subjects3/003/session1/anger/take000/take000.avi").is_file()
    assert t.loc["001_happiness_take000"].part == ""


def test_mug_unknown_emotion_folder(mug_root):
    (mug_root / "MUG" / "subjects3" / "001" / "joy").mkdir()
    with pytest.raises(DataLayoutError, match="001/joy: unknown folder; expected an emotion or "
                                              "a session<N> folder"):
        read_mug(mug_root)
    (mug_root / "MUG" / "subjects3" / "001" / "joy").rmdir()
    (mug_root / "MUG" / "subjects3" / "003" / "session1" / "joy").mkdir()
    with pytest.raises(DataLayoutError, match="session1/joy: unknown folder; expected an emotion"):
        read_mug(mug_root)
