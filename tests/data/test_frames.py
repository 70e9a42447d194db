from __future__ import annotations

import pytest

from merlib.data.frames import list_frames, middle_frame, nearest_frame, relative
from merlib.data.labels import emotion_to_label
from merlib.errors import DataLayoutError


def test_list_frames_sorts_numerically_and_ignores_other_files(tmp_path):
    for n in (100, 99, 101, 98, 9):
        (tmp_path / f"img{n}.jpg").write_bytes(b"x")
    (tmp_path / "Thumbs.db").write_bytes(b"x")
    (tmp_path / "reg_img5.jpg").write_bytes(b"x")  # another release's name: not a match
    frames = list_frames(tmp_path, r"img(\d+)\.jpg")
    assert [n for n, _ in frames] == [9, 98, 99, 100, 101]
    assert frames[-1][1] == tmp_path / "img101.jpg"


def test_list_frames_errors_name_the_folder(tmp_path):
    with pytest.raises(DataLayoutError, match="no frame files") as err:
        list_frames(tmp_path, r"img(\d+)\.jpg")
    assert str(tmp_path) in str(err.value)
    with pytest.raises(DataLayoutError, match="does not exist"):
        list_frames(tmp_path / "gone", r"img(\d+)\.jpg")
    (tmp_path / "img7.jpg").write_bytes(b"x")
    (tmp_path / "img07.jpg").write_bytes(b"x")
    with pytest.raises(DataLayoutError, match="both hold frame 7"):
        list_frames(tmp_path, r"img(\d+)\.jpg")


def test_middle_and_nearest_frame():
    assert middle_frame([98, 99, 100, 101]) == 99  # lower middle for an even count
    assert middle_frame([5, 6, 7]) == 6
    assert nearest_frame([1, 2, 5], 4) == 5
    assert nearest_frame([1, 3], 2) == 1


def test_relative_is_posix(tmp_path):
    assert relative(tmp_path / "A" / "b.jpg", tmp_path) == "A/b.jpg"


@pytest.mark.parametrize("emotion, dataset, label", [
    ("Happiness", "samm", "positive"), ("happy", "ckplus", "positive"),
    ("Anger", "samm", "negative"), ("Contempt", "samm", "negative"),
    ("fear", "samm", "negative"), ("sadness", "mug", "negative"),
    ("repression", "casme2", "negative"), ("disgust", "casme2", "negative"),
    ("fear", "casme2", None), ("sadness", "casme2", None),  # MEGC2019: not negatives there
    ("SURPRISE", "oulu", "surprise"), ("surprise", "smic", "surprise"),
    ("negative", "smic", "negative"), ("others", "casme2", None), ("Other", "samm", None),
    ("neutral", "jaffe", None), (None, "ckplus", None),
])
def test_emotion_to_label(emotion, dataset, label):
    assert emotion_to_label(emotion, dataset) == label
