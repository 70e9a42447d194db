"""The pipeline on a real face (scikit-image's astronaut): alignment measured by dlib
re-detecting the landmarks on the output, every fallback, and the cache."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from merlib.faces import landmarks as lm
from merlib.faces.align import eye_angle, eye_centres, target_eye_centres
from merlib.faces.cache import FaceStore, file_sha256
from merlib.faces.config import AlignConfig
from merlib.errors import ConfigError
from merlib.faces.pipeline import (
    FrameReadError, detection_attempts, figure2_stages, find_landmarks, image_format, neighbour_paths,
    process_frame, read_frame, truncation,
)
from tests.faces.conftest import face_frame, write

NO_MASK = AlignConfig(mask_eyes=False)


def redetect(crop: np.ndarray) -> np.ndarray:
    boxes = lm.detect_faces(crop, 1)
    assert len(boxes) == 1, "exactly one face expected on an aligned crop"
    return lm.landmarks_68(crop, boxes[0])


@pytest.fixture(scope="module")
def rolled(astronaut_bgr, tmp_path_factory):
    """Frames of the same face at five rolls, two scales and two positions."""
    folder = tmp_path_factory.mktemp("rolled")
    frames = []
    for i, roll in enumerate((-15, -8, 0, 8, 15)):
        for scale, at in ((1.0, (250.0, 180.0)), (2.0, (330.0, 210.0))):
            frames.append(write(folder / f"r{i}_{scale:.0f}.jpg", face_frame(astronaut_bgr, roll, scale, at)))
    return frames


def test_aligned_crops_have_level_eyes_at_the_same_pixels(rolled):
    target = target_eye_centres(NO_MASK.crop_size, NO_MASK.side_iod, NO_MASK.eye_row)
    angles, centres = [], []
    for path in rolled:
        result = process_frame(path, NO_MASK)
        assert result.meta["status"] == "ok", result.meta
        pts = redetect(result.crop)
        angles.append(eye_angle(pts))
        centres.append(eye_centres(pts))
    centres = np.array(centres)
    # Measured: |angle| <= 0.9 deg, eye centres within 1.4 px of the target.
    assert np.abs(angles).max() < 2.0
    assert np.abs(centres - target).max() < 4.0  # px, of an IOD of 102 px
    assert centres.std(axis=0).max() < 1.5


def test_the_input_roll_is_what_is_removed(rolled):
    by_roll = {}
    for path in rolled:
        r = process_frame(path, NO_MASK)
        by_roll.setdefault(path.name.split("_")[0], []).append(r.meta["angle_deg"])
    means = [np.mean(v) for _, v in sorted(by_roll.items())]
    # The astronaut's own roll is about 3 degrees; the frames add -15 .. +15.
    np.testing.assert_allclose(np.diff(means), [7, 8, 8, 7], atol=1.5)


def test_mask_covers_the_redetected_eye_landmarks(rolled):
    masked = process_frame(rolled[3], AlignConfig())
    plain = process_frame(rolled[3], NO_MASK)
    pts = np.round(redetect(plain.crop)[36:48]).astype(int)
    assert (masked.crop[pts[:, 1], pts[:, 0]] == 0).all()
    changed = masked.crop != plain.crop
    assert 0.02 < changed.mean() < 0.15  # the eyes, not half the face


def test_colour_and_grey_frames_give_the_same_crop(astronaut_bgr, tmp_path):
    colour = write(tmp_path / "c.png", face_frame(astronaut_bgr))
    grey = write(tmp_path / "g.png", face_frame(astronaut_bgr, grey=True))
    a, b = process_frame(colour), process_frame(grey)
    assert np.abs(a.crop.astype(int) - b.crop).max() <= 1


def test_no_face_fails_with_the_reason(tmp_path):
    path = write(tmp_path / "wall.png", np.full((240, 320), 90, np.uint8))
    r = process_frame(path, neighbours=False)
    assert r.crop is None and r.meta["status"] == "failed"
    assert r.meta["reason"] == "no face found"


def test_several_faces_keep_the_largest(astronaut_bgr):
    big = face_frame(astronaut_bgr, 0, 1.5, (170, 200))
    small = face_frame(astronaut_bgr, 0, 1.1, (480, 200))
    frame = np.where(np.arange(640)[None, :, None] < 340, big, small).astype(np.uint8)
    det = find_landmarks(frame[:, :, 1].copy(), AlignConfig())
    assert det.status == "fallback" and det.n_faces == 2
    assert det.fallback == "largest face kept"
    assert eye_centres(det.points)[:, 0].mean() < 340  # the big one, on the left


def test_tiny_face_fails_as_too_small(astronaut_bgr):
    det = find_landmarks(face_frame(astronaut_bgr, grey=True), AlignConfig(min_face=400))
    assert det.status == "failed" and det.reason.startswith("face too small (")
    assert "min_face=400" in det.reason


def test_missed_face_is_retried_and_the_retry_reported(astronaut_bgr):
    # Shrunk to 80 px the face is below dlib's 80-px window: only the retries find it.
    grey = face_frame(astronaut_bgr, grey=True)
    cfg = AlignConfig(detect_side=80, upsample=0, retry_upsample=1)
    assert detection_attempts(grey.shape, cfg) == [(80, 0), (80, 1), (None, 1)]
    det = find_landmarks(grey, cfg)
    assert det.status == "fallback" and det.fallback.startswith("retry ")
    assert det.reason.startswith("no face on ")


def test_unreadable_missing_and_16_bit_frames_fail_with_the_reason(tmp_path):
    import cv2

    garbage = tmp_path / "img1.jpg"
    garbage.write_bytes(b"not a jpeg")
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), np.zeros((50, 50), np.uint16))
    empty = tmp_path / "empty.jpg"
    empty.touch()
    text = tmp_path / "notes.png"
    text.write_text("frame 12 was lost\n")
    folder = tmp_path / "img2.jpg"
    folder.mkdir()
    for path, reason in ((garbage, "not a readable image (not JPEG, PNG, BMP or TIFF data)"),
                         (tmp_path / "gone.jpg", "cannot read file"),
                         (deep, "expected an 8-bit image, got dtype uint16"),
                         (empty, "empty file (0 bytes)"),
                         (text, "not a readable image (not JPEG, PNG, BMP or TIFF data)"),
                         (folder, "cannot read file (Is a directory)")):
        r = process_frame(path, neighbours=False)
        assert r.meta["status"] == "failed" and r.meta["reason"].startswith(reason), (path, r.meta)
    with pytest.raises(FrameReadError, match="img1.jpg: not a readable image"):
        read_frame(garbage)
    with pytest.raises(FrameReadError, match="img2.jpg: a folder, not an image file"):
        read_frame(folder)


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp"])
def test_a_cut_short_frame_fails_instead_of_becoming_a_crop(astronaut_bgr, tmp_path, capfd, ext):
    whole = write(tmp_path / f"whole.{ext}", face_frame(astronaut_bgr))
    data = whole.read_bytes()
    cut = tmp_path / f"img5.{ext}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    assert process_frame(whole).meta["status"] == "ok"
    capfd.readouterr()
    r = process_frame(cut, neighbours=False)
    # Before: OpenCV decoded the cut JPEG with a grey lower half into an 'ok' crop, and
    # printed "Premature end of JPEG file" (no file name) on stderr.
    assert r.meta["status"] == "failed" and r.crop is None
    assert r.meta["reason"].startswith(f"truncated {ext.upper().replace('JPG', 'JPEG')}: ")
    assert "Premature end" not in capfd.readouterr().err
    with pytest.raises(FrameReadError, match=f"img5.{ext}: truncated"):
        read_frame(cut)


def test_the_whole_files_of_every_simulated_dataset_pass_the_truncation_check(synth_root):
    counts: dict[str, int] = {}
    for path in synth_root.rglob("*"):
        if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}:
            data = path.read_bytes()
            fmt = image_format(data)
            assert fmt is not None and truncation(data, fmt) == "", path
            counts[fmt] = counts.get(fmt, 0) + 1
    assert set(counts) == {"JPEG", "PNG", "BMP", "TIFF"} and sum(counts.values()) > 1000


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_exif_orientation_is_applied_as_pillow_does(orientation, tmp_path):
    from PIL import Image, ImageOps

    rng = np.random.default_rng(orientation)
    stored = (rng.random((30, 50, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "f.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    with Image.open(path) as im:
        shown = np.asarray(ImageOps.exif_transpose(im))[:, :, ::-1]  # RGB -> BGR
    assert np.array_equal(read_frame(path), shown)


def test_a_sideways_stored_frame_with_an_exif_orientation_is_aligned(astronaut_bgr, tmp_path):
    from PIL import Image

    upright = face_frame(astronaut_bgr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show"
    path = tmp_path / "sideways.jpg"
    Image.fromarray(np.rot90(upright[:, :, ::-1]).copy()).save(path, exif=exif, quality=95)
    # Before, OpenCV's IMREAD_UNCHANGED ignored the tag: "no face found".
    r = process_frame(path, neighbours=False)
    assert r.meta["status"] == "ok" and abs(r.meta["angle_deg"]) < 8


def test_truncation_reads_the_file_structure():
    assert truncation(b"\xff\xd8\xff\xe0" + b"\x00" * 20, "JPEG").startswith("truncated JPEG: no image data")
    jpeg = b"\xff\xd8\xff\xda\x00\x08" + b"\x12\xff\x00\x34" * 4
    assert "no end-of-image marker" in truncation(jpeg, "JPEG")
    assert truncation(jpeg + b"\xff\xd9", "JPEG") == ""
    assert truncation(jpeg + b"\xff\xd9" + b"\x00" * 7, "JPEG") == ""  # padding after the end
    assert truncation(b"BM" + b"\x00" * 10, "BMP") == "truncated BMP: 12 bytes, shorter than its headers"
    assert truncation(b"anything", None) == ""


def _clip_with_a_faceless_frame(photo: np.ndarray, clip: Path, frame9: np.ndarray) -> Path:
    for n in (7, 8, 10, 11):
        write(clip / f"img{n}.jpg", face_frame(photo, 0, 1.0 + 0.01 * n))
    return write(clip / "img9.jpg", frame9)


def test_a_faceless_frame_borrows_the_nearest_frames_landmarks(astronaut_bgr, tmp_path):
    # The face upside down: dlib's frontal detector finds nothing, yet the frame is a
    # real picture, so the crop made with its neighbour's landmarks is kept.
    upside_down = face_frame(astronaut_bgr, 0, 1.09)[::-1].copy()
    frame = _clip_with_a_faceless_frame(astronaut_bgr, tmp_path / "clip", upside_down)
    assert [p.name for p in neighbour_paths(frame, 2)] == ["img8.jpg", "img10.jpg", "img7.jpg", "img11.jpg"]
    r = process_frame(frame, store=FaceStore(tmp_path / "cache"))
    assert r.meta["status"] == "fallback" and r.meta["landmark_source"] == "img8.jpg"
    assert r.meta["reason"] == "no face found"
    assert "landmarks of neighbouring frame img8.jpg" in r.meta["fallback"]
    assert r.crop.shape == (256, 256) and r.meta["face_std"] > 20  # measured: 61
    alone = process_frame(frame, neighbours=False)
    assert alone.meta["status"] == "failed"
    off = process_frame(frame, AlignConfig(neighbour_frames=0))
    assert off.meta["status"] == "failed"


def test_a_blank_frame_with_borrowed_landmarks_fails_as_a_flat_crop(astronaut_bgr, tmp_path):
    # Before the quality check this was a 'fallback' crop of flat grey, used for training.
    blank = _clip_with_a_faceless_frame(astronaut_bgr, tmp_path / "clip", np.full((480, 640), 128, np.uint8))
    r = process_frame(blank, store=FaceStore(tmp_path / "cache"))
    assert r.crop is None and r.meta["status"] == "failed"
    assert r.meta["reason"] == ("no face found; flat crop: grey-level std 0.0 inside the face region "
                                "< min_face_std=4 (blank or faceless frame?)")
    assert r.meta["fallback"] == "landmarks of neighbouring frame img8.jpg"
    assert r.meta["landmark_source"] == "img8.jpg" and r.meta["face_std"] == 0.0
    # The check can be turned off: then the flat crop is what the caller asked for.
    kept = process_frame(blank, AlignConfig(min_face_std=0))
    assert kept.meta["status"] == "fallback" and np.ptp(kept.crop[kept.crop > 0]) == 0


def test_flat_crops_fail_with_given_landmarks_too(astronaut_bgr, tmp_path):
    points = find_landmarks(face_frame(astronaut_bgr, grey=True)).points
    flat = write(tmp_path / "flat.png", np.full((480, 640), 200, np.uint8))
    r = process_frame(flat, points=points)
    assert r.meta["status"] == "failed" and r.meta["reason"].startswith("flat crop: grey-level std 0.0")
    face = write(tmp_path / "face.png", face_frame(astronaut_bgr))
    assert process_frame(face, points=points).meta["face_std"] > 20


def test_the_crop_entry_follows_the_neighbour_whose_landmarks_were_borrowed(astronaut_bgr, tmp_path):
    upside_down = face_frame(astronaut_bgr, 0, 1.09)[::-1].copy()
    frame = _clip_with_a_faceless_frame(astronaut_bgr, tmp_path / "a", upside_down)
    store = FaceStore(tmp_path / "cache")
    first = process_frame(frame, store=store)
    # Edit the neighbour the landmarks came from: the old entry must not be served
    # (before, the entry was keyed by the frame's own bytes only, and was).
    write(frame.parent / "img8.jpg", face_frame(astronaut_bgr, 6, 1.3, (300.0, 220.0)))
    again = process_frame(frame, store=store)
    fresh = process_frame(frame)
    assert again.crop.tobytes() == fresh.crop.tobytes() != first.crop.tobytes()
    # The same bytes in another clip, with other neighbours, give their own crop too.
    other = tmp_path / "b"
    for n in (8, 10):
        write(other / f"img{n}.jpg", face_frame(astronaut_bgr, -7, 0.9, (280.0, 190.0)))
    copy = write(other / "img9.jpg", upside_down)
    there = process_frame(copy, store=store)
    assert there.crop.tobytes() == process_frame(copy).crop.tobytes() != again.crop.tobytes()
    assert first.entry.name.count("-") == 2  # <sha>-<crop_key>-<neighbour context>
    assert len({first.entry, again.entry, there.entry}) == 3
    # A frame with a face of its own keeps the plain entry, whatever its neighbours.
    own = process_frame(frame.parent / "img10.jpg", store=store)
    assert own.entry.name.count("-") == 1


def test_given_landmarks_skip_detection(astronaut_bgr, tmp_path, monkeypatch):
    path = write(tmp_path / "f.png", face_frame(astronaut_bgr))
    points = find_landmarks(face_frame(astronaut_bgr, grey=True)).points
    monkeypatch.setattr(lm, "detect_faces", _boom)
    r = process_frame(path, NO_MASK, points=points)
    assert r.meta["status"] == "ok" and r.meta["landmark_source"] == "given"


def _boom(*args, **kwargs):
    raise AssertionError("the detector must not run")


def test_cache_hit_does_no_detection_and_returns_the_same_bytes(astronaut_bgr, tmp_path, monkeypatch):
    path = write(tmp_path / "f.jpg", face_frame(astronaut_bgr, 5))
    store = FaceStore(tmp_path / "cache")
    first = process_frame(path, store=store)
    monkeypatch.setattr(lm, "detect_faces", _boom)
    monkeypatch.setattr(lm, "landmarks_68", _boom)
    again = process_frame(path, store=store)
    assert again.crop.tobytes() == first.crop.tobytes()
    assert again.points.tobytes() == first.points.tobytes() and again.meta == first.meta
    # A mask setting changes only the warp: the landmark entry is reused, no detection.
    wider = process_frame(path, AlignConfig(mask_dilation=0.3), store=store)
    assert (wider.crop == 0).sum() > (first.crop == 0).sum()
    # A detection setting does need the detector.
    with pytest.raises(AssertionError, match="must not run"):
        process_frame(path, AlignConfig(upsample=1), store=store)


def test_cache_key_follows_content_not_name(astronaut_bgr, tmp_path):
    a = write(tmp_path / "a.jpg", face_frame(astronaut_bgr, 5))
    b = tmp_path / "renamed.jpg"
    b.write_bytes(a.read_bytes())
    store = FaceStore(tmp_path / "cache")
    assert store.crop_path(file_sha256(a), AlignConfig()) == store.crop_path(file_sha256(b), AlignConfig())
    process_frame(a, store=store)
    assert len(list((tmp_path / "cache" / "crops").rglob("*.npz"))) == 1
    assert not store.stray_temporaries()


def test_interrupted_write_leaves_no_entry(astronaut_bgr, tmp_path, monkeypatch):
    path = write(tmp_path / "f.jpg", face_frame(astronaut_bgr))
    store = FaceStore(tmp_path / "cache")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(KeyboardInterrupt):
        process_frame(path, store=store)
    monkeypatch.undo()
    assert not list((tmp_path / "cache").rglob("*.npz")) and not store.stray_temporaries()
    assert process_frame(path, store=store).meta["status"] == "ok"  # resumes


def test_figure2_stages(astronaut_bgr, tmp_path):
    path = write(tmp_path / "f.png", face_frame(astronaut_bgr, 12))
    st = figure2_stages(path)
    assert st["A"].shape == (480, 640, 3) and st["B"].shape == (480, 640)
    for k in "CDE":
        assert st[k].shape == (256, 256) and st[k].dtype == np.uint8
    assert abs(eye_angle(st["points_C"]) - 15) < 2 and abs(eye_angle(st["points_D"])) < 1e-3
    assert (st["E"] == 0).sum() > (st["D"] == 0).sum()


def test_config_errors_name_the_setting():
    with pytest.raises(ConfigError, match=r"min_face_std: expected in \[0, 128\) grey levels, got -1"):
        AlignConfig(min_face_std=-1)
    with pytest.raises(ConfigError, match="min_face_std: expected a number, got 'high'"):
        AlignConfig(min_face_std="high")
    with pytest.raises(ConfigError, match="crop_size: expected >= 8, got 4"):
        AlignConfig(crop_size=4)
    with pytest.raises(ValueError, match="crop_size: expected an integer, got 256.5"):
        AlignConfig(crop_size=256.5)
    with pytest.raises(ValueError, match="eye_row"):
        AlignConfig(eye_row=1.5)
    with pytest.raises(ValueError, match="unknown settings \\['crop'\\]"):
        AlignConfig.from_dict({"crop": 3})
    assert AlignConfig.from_dict(AlignConfig().as_dict()) == AlignConfig()
    assert AlignConfig(mask_dilation=0.3).detect_key() == AlignConfig().detect_key()
    assert AlignConfig(mask_dilation=0.3).crop_key() != AlignConfig().crop_key()
    assert AlignConfig(upsample=1).detect_key() != AlignConfig().detect_key()
    # The quality threshold judges crops, not landmarks: landmark entries stay valid.
    assert AlignConfig(min_face_std=8).detect_key() == AlignConfig().detect_key()
    assert AlignConfig(min_face_std=8).crop_key() != AlignConfig().crop_key()
