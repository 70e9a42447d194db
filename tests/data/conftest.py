"""Fixture trees in the owners' layouts, written by code (tiny noise images).

Every tree is laid out with :mod:`merlib.data.layouts`, so the readers are tested on
the same layouts the synthetic generator writes; ``test_layouts.py`` checks the writers
against the owners' literal formats independently of the readers.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from merlib.data.composite import load_composite_list
from merlib.data.layouts import IMAGE_EXT, ClipRecord, frame_path, write_annotations

R = ClipRecord
#: Frame numbers that cross a digit boundary: lexical order would put 100 before 98.
CROSSING = (98, 99, 100, 101)

_IMAGES: dict[tuple[str, int], bytes] = {}


def image_bytes(ext: str, size: int = 8) -> bytes:
    """A ``size`` x ``size`` grey noise image encoded as ``ext`` (cached per format)."""
    if (ext, size) not in _IMAGES:
        pixels = np.random.default_rng(size).integers(0, 256, (size, size), dtype=np.uint8)
        ok, buf = cv2.imencode(ext, pixels)
        assert ok, ext
        _IMAGES[ext, size] = buf.tobytes()
    return _IMAGES[ext, size]


def lay_out(dataset: str, root: Path, records: Sequence[ClipRecord], *, size: int = 8,
            casme2_release: str = "2014") -> Path:
    """Write every frame of ``records`` and the dataset's annotation files under ``root``."""
    data = image_bytes(IMAGE_EXT[dataset], size)
    for rec in records:
        for n in rec.frames:
            path = frame_path(dataset, root, rec, n)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    write_annotations(dataset, root, records, casme2_release=casme2_release)
    return root


CASME2_2014 = [
    R("sub01", "EP02_01f", "happiness", CROSSING, onset=98, apex=100, offset=101,
      action_units="12"),
    R("sub01", "EP03_02", "disgust", (1, 2, 3, 4, 5), onset=1, apex=None, offset=5),
    R("sub02", "EP19_06f", "fear", (10, 11, 12), onset=10, apex=11, offset=12),
    R("sub11", "EP01_11f", "repression", (7, 8, 9), onset=7, apex=9, offset=9),
]

CASME2_2019 = [
    R("sub01", "EP02_01f", "happiness", CROSSING, onset=98, apex=99, offset=101,
      part="cropped"),
    R("sub03", "EP09_01", "surprise", (4, 5, 6), onset=4, apex=None, offset=6, part="cropped"),
    R("sub04", "EP10_02", "others", (1, 2, 3), onset=1, apex=2, offset=3, part="raw"),
]

SAMM = [
    R("006", "006_1_2", "Anger", (5560, 5561, 5562, 5563), onset=5560, apex=5562,
      offset=5563, action_units="R4"),
    R("006", "006_1_9", "Other", (10, 11, 12), onset=10, apex=11, offset=12),
    R("011", "011_2_7", "Happiness", CROSSING, onset=98, apex=99, offset=101),
]

SMIC = [
    R("s01", "s01_po_01", "positive", CROSSING, part="HS"),
    R("s01", "s01_ne_02", "negative", (1, 2, 3), part="HS"),
    R("s11", "s11_sur_01", "surprise", (5, 6, 7, 8, 9), part="HS"),
    R("s01", "s01_po_01", "positive", (50, 51, 52), part="VIS"),
    R("s01", "s01_po_01", "positive", (60, 61, 62), part="NIR"),
]

CKPLUS = [
    R("S005", "S005_001", "disgust", tuple(range(1, 12))),
    R("S005", "S005_002", None, (1, 2, 3, 4)),
    R("S010", "S010_004", "happy", CROSSING),
    R("S011", "S011_001", "neutral", (1, 2, 3)),
]

OULU = [
    R("P001", "P001_Anger", "Anger", (0, 1, 2, 3, 4), part="VL_Strong"),
    R("P001", "P001_Happiness", "Happiness", CROSSING, part="VL_Strong"),
    R("P002", "P002_Surprise", "Surprise", (0, 1, 2), part="VL_Dark"),
    R("P001", "P001_Anger", "Anger", (0, 1, 2, 3), part="NI_Weak"),
]

JAFFE = [
    R("KA", "KA.AN1.39", "AN", (1,)),
    R("KA", "KA.NE1.26", "NE", (1,)),
    R("KL", "KL.HA2.31", "HA", (1,)),
    R("YM", "YM.SU3.60", "SU", (1,)),
]

MUG = [
    R("001", "001_happiness_take000", "happiness", tuple(range(0, 21))),
    R("001", "001_neutral_take000", "neutral", (0, 1, 2)),
    R("002", "002_surprise_take001", "surprise", (95, 96, 97, 98, 99, 100, 101)),
    # A subject recorded in two sessions: one folder level more, same take names.
    R("003", "003_session0_anger_take000", "anger", (5, 6, 7), part="session0"),
    R("003", "003_session1_anger_take000", "anger", (10, 11, 12, 13, 14), part="session1"),
]
#: A file the owners ship beside a take's frames (must not be read as a frame).
MUG_VIDEO = "MUG/subjects3/003/session1/anger/take000/take000.avi"

ALL_RECORDS: dict[str, list[ClipRecord]] = {
    "casme2": CASME2_2014, "samm": SAMM, "smic": SMIC, "ckplus": CKPLUS, "oulu": OULU,
    "jaffe": JAFFE, "mug": MUG,
}


@pytest.fixture
def build() -> Callable[..., Path]:
    """``build(dataset, root, records, **kw)``: lay out a tree (see :func:`lay_out`)."""
    return lay_out


@pytest.fixture
def casme2_2014_root(tmp_path: Path) -> Path:
    return lay_out("casme2", tmp_path, CASME2_2014, casme2_release="2014")


@pytest.fixture
def casme2_2019_root(tmp_path: Path) -> Path:
    return lay_out("casme2", tmp_path, CASME2_2019, casme2_release="2019")


@pytest.fixture
def samm_root(tmp_path: Path) -> Path:
    return lay_out("samm", tmp_path, SAMM)


@pytest.fixture
def smic_root(tmp_path: Path) -> Path:
    return lay_out("smic", tmp_path, SMIC)


@pytest.fixture
def ckplus_root(tmp_path: Path) -> Path:
    return lay_out("ckplus", tmp_path, CKPLUS)


@pytest.fixture
def oulu_root(tmp_path: Path) -> Path:
    return lay_out("oulu", tmp_path, OULU)


@pytest.fixture
def jaffe_root(tmp_path: Path) -> Path:
    root = lay_out("jaffe", tmp_path, JAFFE)
    (root / "JAFFE" / "README").write_text("placeholder\n")  # owners ship a README
    return root


def lay_out_mug(root: Path) -> Path:
    """MUG in both forms (plain and session level), a video file beside frames."""
    lay_out("mug", root, MUG)
    (root / MUG_VIDEO).write_bytes(b"\x00\x00\x00\x18ftypmp42 placeholder")
    return root


@pytest.fixture
def mug_root(tmp_path: Path) -> Path:
    return lay_out_mug(tmp_path)


# --- Clips that move: the apex estimator's fixtures ----------------------------------

def moving_frames(n: int, peak: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``n`` grey frames of a still random texture whose lower half slides right and back.

    The slide follows a raised cosine, 0 px at the first and last frame and 3 px at index
    ``peak``; the whole picture also drifts by a sub-pixel random walk and carries
    sensor-like noise, as a real clip does.
    """
    rng = np.random.default_rng(seed)
    still = cv2.GaussianBlur(rng.integers(0, 256, (size, size)).astype(np.float32), (0, 0), 1.0)
    drift = np.cumsum(rng.normal(0, 0.05, (n, 2)), axis=0)
    frames = []
    for i in range(n):
        x = i / peak if i <= peak else 1 - (i - peak) / max(n - 1 - peak, 1)
        shift = 3.0 * (0.5 - 0.5 * np.cos(np.pi * x)) if peak else 3.0 * (i == 0)
        image = still.copy()
        lower = np.float32([[1, 0, shift], [0, 1, 0]])
        moved = cv2.warpAffine(still, lower, (size, size), borderMode=cv2.BORDER_REFLECT)
        image[size // 2:] = moved[size // 2:]
        whole = np.float32([[1, 0, drift[i, 0]], [0, 1, drift[i, 1]]])
        image = cv2.warpAffine(image, whole, (size, size), borderMode=cv2.BORDER_REFLECT)
        image += rng.normal(0, 1.0, image.shape).astype(np.float32)
        frames.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return frames


def clip_on_disk(folder: Path, numbers: range, peak: int) -> list[tuple[int, Path]]:
    """A moving clip written as ``img<number>.jpg`` files, peaking at frame ``peak``:
    the clip folder's ``(number, path)`` list, as the readers list it."""
    folder.mkdir(parents=True)
    frames = []
    for number, image in zip(numbers, moving_frames(len(numbers), numbers.index(peak))):
        frames.append((number, folder / f"img{number}.jpg"))
        cv2.imwrite(str(frames[-1][1]), image)
    return frames


def animate(dataset: str, root: Path, rec: ClipRecord, peak_frame: int, size: int = 64) -> None:
    """Overwrite the frames of ``rec`` with :func:`moving_frames` peaking at ``peak_frame``."""
    images = moving_frames(len(rec.frames), rec.frames.index(peak_frame), size)
    for number, image in zip(rec.frames, images):
        path = frame_path(dataset, root, rec, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(IMAGE_EXT[dataset], image)
        assert ok
        path.write_bytes(buf.tobytes())


def build_all(root: Path) -> Path:
    """All seven datasets under one root, plus the generator's extra files."""
    for dataset, records in ALL_RECORDS.items():
        lay_out(dataset, root, records)
    lay_out_mug(root)
    (root / "JAFFE" / "README").write_text("placeholder\n")
    (root / "SYNTHME.json").write_text("{}\n")
    (root / "SYNTHME_truth.csv").write_text("dataset,sample\n")
    return root


@pytest.fixture
def all_root(tmp_path: Path) -> Path:
    return build_all(tmp_path / "data")


# --- The full-size MEGC2019 micro tree -----------------------------------------------

#: Owners' emotion spellings per (dataset, label); negatives cycle through the list.
_EMOTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("casme2", "negative"): ("disgust", "repression"),
    ("casme2", "positive"): ("happiness",),
    ("casme2", "surprise"): ("surprise",),
    ("samm", "negative"): ("Anger", "Contempt", "Disgust", "Fear", "Sadness"),
    ("samm", "positive"): ("Happiness",),
    ("samm", "surprise"): ("Surprise",),
    ("smic", "negative"): ("negative",),
    ("smic", "positive"): ("positive",),
    ("smic", "surprise"): ("surprise",),
}

#: Clips on disk that are not in the composite: unlabelled emotions, excluded CASME II
#: negatives, and SMIC's other cameras.
MEGC_EXTRAS: dict[str, list[ClipRecord]] = {
    "casme2": [
        R("sub10", "EP99_01", "others", (1, 2, 3), onset=1, apex=2, offset=3),
        R("sub18", "EP99_02", "fear", (1, 2, 3), onset=1, apex=None, offset=3),
    ],
    "samm": [R("006", "006_9_9", "Other", (1, 2, 3), onset=1, apex=2, offset=3)],
    "smic": [R("s01", "s01_po_01", "positive", (1, 2, 3), part="VIS")],
}


def megc_records() -> dict[str, list[ClipRecord]]:
    """One 3-frame record per composite sample, emotions consistent with the labels."""
    listed = load_composite_list()
    cycles = {key: itertools.cycle(names) for key, names in _EMOTIONS.items()}
    records: dict[str, list[ClipRecord]] = {"casme2": [], "samm": [], "smic": []}
    for row in listed.itertuples():
        emotion = next(cycles[row.dataset, row.label])
        coded = {} if row.dataset == "smic" else {"onset": 1, "apex": 2, "offset": 3}
        part = "HS" if row.dataset == "smic" else ""
        records[row.dataset].append(
            R(row.subject, row.sample, emotion, (1, 2, 3), part=part, **coded)
        )
    for dataset, extra in MEGC_EXTRAS.items():
        records[dataset].extend(extra)
    return records


@pytest.fixture(scope="session")
def megc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CASME II + SAMM + SMIC holding all 442 composite clips (3 frames of 4x4 each).

    Session-scoped and shared: tests must not modify it (copy it first).
    """
    root = tmp_path_factory.mktemp("megc") / "data"
    for dataset, records in megc_records().items():
        lay_out(dataset, root, records, size=4)
    return root
