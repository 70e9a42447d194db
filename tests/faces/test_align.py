"""Pure geometry of merlib.faces.align, on toy landmarks with known answers (no dlib)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from merlib.faces.align import (
    ImageFormatError, align_face, apply_mask, crop_transform, eye_angle, eye_centres,
    eye_mask, target_eye_centres, to_grey, transform_points, warp_to_crop,
)
from merlib.faces.landmarks import LEFT_EYE, RIGHT_EYE
from tests.faces.conftest import place, toy_landmarks

SIZE, SIDE, ROW = 256, 2.5, 0.24


def test_eye_centres_are_the_means_of_the_six_eye_points():
    pts = place(toy_landmarks(), 0, 40, (100, 80))
    np.testing.assert_allclose(eye_centres(pts), [[80, 80], [120, 80]], atol=1e-9)


@pytest.mark.parametrize("angle", [-40.0, -12.5, 0.0, 3.0, 17.0, 45.0])
def test_eye_angle_recovers_the_roll(angle):
    pts = place(toy_landmarks(), angle, 50, (300, 200))
    assert eye_angle(pts) == pytest.approx(angle, abs=1e-9)
    # The paper's form: arctan of the slope from the left eye A to the midpoint C.
    (xa, ya), (xb, yb) = eye_centres(pts)
    xc, yc = (xa + xb) / 2, (ya + yb) / 2
    assert np.degrees(np.arctan((yc - ya) / (xc - xa))) == pytest.approx(angle, abs=1e-9)


@pytest.mark.parametrize("angle,scale,centre", [
    (0, 30, (200, 150)), (-25, 80, (320, 240)), (14, 12, (40, 30)), (33, 150, (900, 500)),
])
def test_crop_puts_eyes_at_the_same_pixels_level(angle, scale, centre):
    pts = place(toy_landmarks(), angle, scale, centre)
    m = crop_transform(pts, SIZE, side_iod=SIDE, eye_row=ROW)
    crop_pts = transform_points(m, pts)
    np.testing.assert_allclose(eye_centres(crop_pts), target_eye_centres(SIZE, SIDE, ROW), atol=1e-3)
    assert eye_angle(crop_pts) == pytest.approx(0, abs=1e-4)
    # A similarity: the whole toy face keeps its shape, at size / side_iod px per IOD.
    np.testing.assert_allclose(crop_pts, place(toy_landmarks(), 0, SIZE / SIDE, crop_pts[36:48].mean(0)),
                               atol=1e-3)


def test_target_eyes_are_symmetric_about_the_vertical_centre_line():
    (xl, yl), (xr, yr) = target_eye_centres(SIZE, SIDE, ROW)
    assert yl == yr == pytest.approx(ROW * SIZE - 0.5)
    assert (xl + xr) / 2 == pytest.approx((SIZE - 1) / 2)
    assert xr - xl == pytest.approx(SIZE / SIDE)


def test_rotate_off_keeps_the_roll_and_the_eye_midpoint():
    pts = place(toy_landmarks(), 20, 60, (300, 200))
    crop_pts = transform_points(crop_transform(pts, SIZE, rotate=False), pts)
    assert eye_angle(crop_pts) == pytest.approx(20, abs=1e-4)
    np.testing.assert_allclose(eye_centres(crop_pts).mean(0), target_eye_centres(SIZE, SIDE, ROW).mean(0),
                               atol=1e-3)


def test_warp_zero_pads_beyond_the_frame():
    frame = np.full((100, 100), 200, np.uint8)
    pts = place(toy_landmarks(), 0, 40, (5, 5))  # face in the top-left corner
    crop = warp_to_crop(frame, crop_transform(pts, 64), 64)
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    assert crop[0, 0] == 0 and crop[-1, -1] == 200


def test_warp_moves_a_dot_where_the_transform_says_for_both_scales():
    # A bright disc at the eye midpoint must land at the crop's eye midpoint, whether the
    # crop enlarges the face or shrinks it (the anti-aliased path).
    for scale in (30, 400):
        frame = np.zeros((1200, 1600), np.uint8)
        centre = (800.0, 601.0)
        pts = place(toy_landmarks(), 10, scale, centre)
        cv2.circle(frame, (800, 601), max(3, scale // 8), 255, -1)
        crop = warp_to_crop(frame, crop_transform(pts, SIZE), SIZE).astype(float)
        ys, xs = np.nonzero(crop > 0)
        w = crop[ys, xs]
        got = (np.sum(xs * w) / w.sum(), np.sum(ys * w) / w.sum())
        np.testing.assert_allclose(got, target_eye_centres(SIZE, SIDE, ROW).mean(0), atol=1.0)


def test_eye_mask_covers_each_eye_point_and_grows_with_dilation():
    pts = transform_points(crop_transform(place(toy_landmarks(), 7, 90, (300, 300)), SIZE),
                           place(toy_landmarks(), 7, 90, (300, 300)))
    areas = []
    for dil in (0, 5, 15):
        mask = eye_mask(pts, (SIZE, SIZE), dil)
        assert mask.dtype == bool and mask.shape == (SIZE, SIZE)
        xy = np.round(pts[np.r_[36:48]]).astype(int)
        inside = mask[np.clip(xy[:, 1], 0, SIZE - 1), np.clip(xy[:, 0], 0, SIZE - 1)]
        if dil:
            assert inside.all()
        areas.append(int(mask.sum()))
        # Never the nose tip or the mouth.
        for i in (30, 51, 57, 62):
            x, y = np.round(pts[i]).astype(int)
            assert not mask[y, x]
    assert 0 < areas[0] < areas[1] < areas[2]


def test_apply_mask_sets_only_the_masked_pixels_and_copies():
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = apply_mask(grey, mask)
    assert out[1, 2] == 0 and grey[1, 2] == 6
    assert (out[~mask] == grey[~mask]).all()
    with pytest.raises(ValueError, match="mask: shape"):
        apply_mask(grey, mask[:3])


def test_align_face_masks_eyes_and_maps_landmarks():
    rng = np.random.default_rng(0)
    frame = rng.integers(1, 255, (480, 640), dtype=np.uint8)
    pts = place(toy_landmarks(), -9, 80, (330, 210))
    out = align_face(frame, pts)
    assert out.crop.shape == (256, 256) and out.crop.dtype == np.uint8
    assert out.points.dtype == np.float32 and out.points.shape == (68, 2)
    assert (out.crop[out.mask] == 0).all() and out.mask.any()
    assert out.angle_deg == pytest.approx(-9) and out.iod_px == pytest.approx(80)
    plain = align_face(frame, pts, mask_eyes=False)
    assert not plain.mask.any() and (plain.crop[~out.mask] == out.crop[~out.mask]).all()


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 3), (20, 30, 4)])
def test_to_grey_accepts_grey_and_colour(shape):
    img = np.full(shape, 100, np.uint8)
    out = to_grey(img)
    assert out.shape == (20, 30) and out.dtype == np.uint8 and out.flags.c_contiguous


def test_to_grey_rejects_16_bit_naming_the_source():
    with pytest.raises(ImageFormatError, match="frame.png: expected an 8-bit image"):
        to_grey(np.zeros((4, 4), np.uint16), source="frame.png")
    with pytest.raises(ImageFormatError, match="got \\(4, 4, 2\\)"):
        to_grey(np.zeros((4, 4, 2), np.uint8))


def test_bad_landmarks_are_rejected_with_their_shape():
    with pytest.raises(ValueError, match="points: expected finite landmarks of shape \\(68, 2\\)"):
        eye_centres(np.zeros((5, 2)))
    pts = toy_landmarks()
    pts[LEFT_EYE] = pts[RIGHT_EYE]
    with pytest.raises(ValueError, match="eye centres coincide"):
        crop_transform(pts, 64)
