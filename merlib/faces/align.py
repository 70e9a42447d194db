"""Pure face-alignment geometry: eye centres, levelling angle, crop transform, eye mask.

Nothing here detects anything: every function takes the 68 landmarks (iBUG order, see
:mod:`merlib.faces.landmarks`) and is deterministic, so each step can be tested alone
on synthetic geometry.

Conventions
-----------
* Points are ``(x, y)`` pixels, origin at the centre of the top-left pixel, ``y`` down
  (dlib's and OpenCV's convention), arrays of shape ``(N, 2)``.
* An affine transform is a float64 ``(2, 3)`` matrix ``M`` mapping a source point
  ``p`` to ``M[:, :2] @ p + M[:, 2]`` (what :func:`cv2.warpAffine` takes).
* "Left eye" is the eye on the image's left (the subject's right eye), landmarks 36-41,
  the paper's ``A(xL, yL)``; "right eye" is landmarks 42-47, ``B(xR, yR)``.

The crop is the similarity transform that puts the two eye centres at fixed pixels of
a ``size`` x ``size`` square (:func:`target_eye_centres`): the eye midpoint on the
vertical centre line at ``eye_row * size``, the eyes ``size / side_iod`` apart. So after
alignment every face has its eyes in the same place, whatever its size, position and
roll in the frame; pixels beyond the frame's edges are zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from merlib.errors import MerlibError
from merlib.faces.landmarks import LEFT_EYE, N_LANDMARKS, RIGHT_EYE

#: Below this scale (crop pixels per source pixel) the source is shrunk with area
#: averaging before the warp: bilinear sampling alone would alias fine texture.
_ANTIALIAS_BELOW = 0.8


class ImageFormatError(MerlibError, ValueError):
    """An image is not 8-bit grey or colour (the message names the image)."""


def to_grey(image: np.ndarray, *, source: str = "image") -> np.ndarray:
    """Normalise an 8-bit image to grey.

    Parameters
    ----------
    image : ndarray of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), uint8
        Grey, BGR or BGRA (OpenCV's channel order, as :func:`cv2.imread` returns).
    source : str
        Names the image in error messages (e.g. its file path).

    Returns
    -------
    ndarray of shape (H, W), uint8, C-contiguous
        ITU-R 601 luma for colour input (:data:`cv2.COLOR_BGR2GRAY`); grey input is
        returned as is (a copy only when it was not contiguous).

    Raises
    ------
    ImageFormatError
        For another dtype (16-bit, float) or shape; names ``source``.
    """
    if image.dtype != np.uint8:
        raise ImageFormatError(f"{source}: expected an 8-bit image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ImageFormatError(
        f"{source}: expected shape (H, W) or (H, W, 1|3|4), got {image.shape}"
    )


def _check_points(points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (N_LANDMARKS, 2) or not np.isfinite(pts).all():
        raise ValueError(
            f"points: expected finite landmarks of shape ({N_LANDMARKS}, 2), got "
            f"{pts.shape}{'' if np.isfinite(pts).all() else ' with NaN/inf'}"
        )
    return pts


def eye_centres(points: np.ndarray) -> np.ndarray:
    """The two eye centres: the means of each eye's six landmarks.

    Parameters
    ----------
    points : array-like of shape (68, 2)

    Returns
    -------
    ndarray of shape (2, 2), float64
        ``[[xL, yL], [xR, yR]]``: image-left eye (36-41), then image-right eye (42-47).
    """
    pts = _check_points(points)
    return np.stack([pts[LEFT_EYE].mean(0), pts[RIGHT_EYE].mean(0)])


def eye_angle(points: np.ndarray) -> float:
    """Roll of the eye line, degrees: ``arctan((yR - yL) / (xR - xL))``.

    The paper's angle (its C is the eye midpoint, so ``(yC - yA) / (xC - xA)`` is the
    same slope). Computed with ``arctan2`` so a face upside down or with the eyes one
    above the other still gives a defined angle in ``(-180, 180]``. Positive when the
    right eye is lower in the image (``y`` grows downwards): the face is turned
    clockwise as seen on screen, and rotating it counter-clockwise by this angle levels it.

    Parameters
    ----------
    points : array-like of shape (68, 2)
    """
    (xl, yl), (xr, yr) = eye_centres(points)
    return float(np.degrees(np.arctan2(yr - yl, xr - xl)))


def target_eye_centres(size: int, side_iod: float, eye_row: float) -> np.ndarray:
    """Where :func:`crop_transform` (with ``rotate=True``) puts the eye centres.

    Returns
    -------
    ndarray of shape (2, 2), float64
        ``[[xL, yL], [xR, yR]]`` in crop pixels: the eye midpoint at
        ``((size - 1) / 2, eye_row * size - 0.5)``, the eyes ``size / side_iod`` apart.
    """
    half = size / side_iod / 2.0
    cx, cy = (size - 1) / 2.0, eye_row * size - 0.5
    return np.array([[cx - half, cy], [cx + half, cy]])


def crop_transform(
    points: np.ndarray,
    size: int,
    *,
    side_iod: float = 2.5,
    eye_row: float = 0.24,
    rotate: bool = True,
) -> np.ndarray:
    """The similarity transform from source pixels to a ``size`` x ``size`` face crop.

    Parameters
    ----------
    points : array-like of shape (68, 2)
        Landmarks in source pixels.
    size : int
        Side of the square crop, pixels.
    side_iod : float, default=2.5
        Side of the crop in inter-ocular distances (IOD, between the eye centres).
        At 2.5 the square spans about brow-top-minus-a-margin to below the chin and
        jaw to jaw on a frontal face (measured on dlib landmarks: jaw at +-1.1 IOD,
        chin 1.75 IOD below the eyes).
    eye_row : float, default=0.24
        Height of the eye line as a fraction of ``size`` from the top.
    rotate : bool, default=True
        Level the eyes (rotate by :func:`eye_angle` about the eye midpoint). With
        ``False`` the same square is cut out unrotated (Figure 2, panel C).

    Returns
    -------
    ndarray of shape (2, 3), float64
        Source ``(x, y)`` -> crop ``(x, y)``.
    """
    if size < 8:
        raise ValueError(f"size: expected at least 8 pixels, got {size}")
    if side_iod <= 0 or not 0 < eye_row < 1:
        raise ValueError(
            f"side_iod / eye_row: expected side_iod > 0 and 0 < eye_row < 1, got "
            f"{side_iod} / {eye_row}"
        )
    (left, right) = eye_centres(points)
    iod = float(np.linalg.norm(right - left))
    if iod < 1e-6:
        raise ValueError("points: the two eye centres coincide; no scale can be derived")
    scale = size / (side_iod * iod)
    theta = np.radians(eye_angle(points)) if rotate else 0.0
    c, s = np.cos(theta), np.sin(theta)
    # Rotating by -theta levels the eye line (y is down, so this is counter-clockwise).
    linear = scale * np.array([[c, s], [-s, c]])
    target = target_eye_centres(size, side_iod, eye_row).mean(0)
    shift = target - linear @ ((left + right) / 2.0)
    return np.hstack([linear, shift[:, None]])


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine transform to points of shape (N, 2); returns float32 (N, 2)."""
    m = np.asarray(matrix, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def warp_to_crop(grey: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Resample ``grey`` into the ``size`` x ``size`` crop of ``matrix``.

    Bilinear, zero beyond the source's edges. When the crop shrinks the face (scale
    below 0.8) the region the crop reads is first shrunk with area averaging to the
    crop's scale, so a large face (SAMM's) is not aliased.

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
    matrix : ndarray of shape (2, 3)
        From :func:`crop_transform`.
    size : int

    Returns
    -------
    ndarray of shape (size, size), uint8
    """
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < _ANTIALIAS_BELOW:
        # Shrink only the source region the crop reads (plus a margin for the filter).
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], dtype=np.float64)
        src = transform_points(inv, corners)
        h, w = grey.shape
        x0 = int(np.clip(np.floor(src[:, 0].min()) - 2, 0, w))
        y0 = int(np.clip(np.floor(src[:, 1].min()) - 2, 0, h))
        x1 = int(np.clip(np.ceil(src[:, 0].max()) + 3, 0, w))
        y1 = int(np.clip(np.ceil(src[:, 1].max()) + 3, 0, h))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            roi = grey[y0:y1, x0:x1]
            out_w = max(1, round((x1 - x0) * scale))
            out_h = max(1, round((y1 - y0) * scale))
            small = cv2.resize(roi, (out_w, out_h), interpolation=cv2.INTER_AREA)
            fx, fy = out_w / (x1 - x0), out_h / (y1 - y0)
            # small pixel (u, v) <- source ((u + 0.5) / fx - 0.5 + x0, ...): centre-aligned.
            to_src = np.array([[1 / fx, 0, 0.5 / fx - 0.5 + x0],
                               [0, 1 / fy, 0.5 / fy - 0.5 + y0]])
            m = m @ np.vstack([to_src, [0, 0, 1]])
            grey = small
    return cv2.warpAffine(grey, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def eye_mask(points: np.ndarray, shape: tuple[int, int], dilation_px: float) -> np.ndarray:
    """A filled region over each eye: its six landmarks' convex hull, dilated.

    Parameters
    ----------
    points : array-like of shape (68, 2)
        Landmarks in the coordinates of the image to mask (e.g. crop coordinates).
    shape : (int, int)
        ``(H, W)`` of that image.
    dilation_px : float
        Radius of the disc the hulls are dilated by, pixels (0: the bare hulls).

    Returns
    -------
    ndarray of shape (H, W), bool
        True over the eyes.
    """
    if dilation_px < 0:
        raise ValueError(f"dilation_px: expected >= 0, got {dilation_px}")
    pts = _check_points(points)
    canvas = np.zeros(shape, dtype=np.uint8)
    frac_bits = 4  # sub-pixel vertex precision for the fill
    for eye in (LEFT_EYE, RIGHT_EYE):
        hull = cv2.convexHull(np.round(pts[eye] * (1 << frac_bits)).astype(np.int32))
        cv2.fillConvexPoly(canvas, hull, 1, lineType=cv2.LINE_8, shift=frac_bits)
    radius = int(round(dilation_px))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        canvas = cv2.dilate(canvas, kernel)
    return canvas.astype(bool)


def apply_mask(grey: np.ndarray, mask: np.ndarray, fill: int = 0) -> np.ndarray:
    """A copy of ``grey`` (H, W) uint8 with ``mask`` (H, W) bool set to ``fill``."""
    if mask.shape != grey.shape:
        raise ValueError(f"mask: shape {mask.shape} differs from the image's {grey.shape}")
    out = grey.copy()
    out[mask] = fill
    return out


@dataclass(frozen=True)
class Aligned:
    """One aligned face.

    Attributes
    ----------
    crop : ndarray of shape (S, S), uint8
        Levelled (unless ``rotate=False``) face crop, eyes masked when asked.
    points : ndarray of shape (68, 2), float32
        The landmarks mapped into crop coordinates.
    mask : ndarray of shape (S, S), bool
        The eye mask (all False when masking is off).
    angle_deg : float
        The eye-line roll of the source (:func:`eye_angle`), degrees.
    iod_px : float
        Inter-ocular distance in the source, pixels.
    matrix : ndarray of shape (2, 3), float64
        Source -> crop transform.
    """

    crop: np.ndarray
    points: np.ndarray
    mask: np.ndarray
    angle_deg: float
    iod_px: float
    matrix: np.ndarray


def align_face(
    grey: np.ndarray,
    points: np.ndarray,
    *,
    size: int = 256,
    side_iod: float = 2.5,
    eye_row: float = 0.24,
    rotate: bool = True,
    mask_eyes: bool = True,
    mask_dilation: float = 0.15,
) -> Aligned:
    """Rotate, crop, resize and mask one face (Figure 2, panels C to E).

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
    points : array-like of shape (68, 2)
        Landmarks in ``grey``'s pixels.
    size, side_iod, eye_row, rotate
        See :func:`crop_transform`.
    mask_eyes : bool, default=True
    mask_dilation : float, default=0.15
        Dilation of the eye hulls, as a fraction of the inter-ocular distance (so the
        mask covers the same part of every face whatever ``size``).

    Returns
    -------
    Aligned
    """
    pts = _check_points(points)
    matrix = crop_transform(pts, size, side_iod=side_iod, eye_row=eye_row, rotate=rotate)
    crop = warp_to_crop(grey, matrix, size)
    crop_pts = transform_points(matrix, pts)
    if mask_eyes:
        mask = eye_mask(crop_pts, crop.shape, mask_dilation * size / side_iod)
        crop = apply_mask(crop, mask)
    else:
        mask = np.zeros(crop.shape, dtype=bool)
    (left, right) = eye_centres(pts)
    return Aligned(crop=crop, points=crop_pts, mask=mask, angle_deg=eye_angle(pts),
                   iod_px=float(np.linalg.norm(right - left)), matrix=matrix)


def inside_source(matrix: np.ndarray, source_shape: tuple[int, int], size: int) -> np.ndarray:
    """Which crop pixels sample the source frame (the others are the zero padding).

    Parameters
    ----------
    matrix : ndarray of shape (2, 3)
        Source -> crop transform (:attr:`Aligned.matrix`).
    source_shape : (int, int)
        ``(H, W)`` of the source frame.
    size : int
        Side of the crop.

    Returns
    -------
    ndarray of shape (size, size), bool
    """
    inv = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    yy, xx = np.mgrid[0:size, 0:size]
    src = transform_points(inv, np.c_[xx.ravel(), yy.ravel()]).reshape(size, size, 2)
    h, w = source_shape
    return ((src[..., 0] >= 0) & (src[..., 0] <= w - 1)
            & (src[..., 1] >= 0) & (src[..., 1] <= h - 1))


def face_std(aligned: Aligned, source_shape: tuple[int, int]) -> float:
    """Grey-level standard deviation of a crop inside its face region.

    The face region is the convex hull of the 68 landmarks in crop coordinates, less
    the eye mask and the crop pixels beyond the source frame's edges (both are zero by
    construction, not image content). A flat crop (a blank frame, or a faceless one
    aligned with a neighbour's landmarks) scores near 0; a face, tens of grey levels.

    Parameters
    ----------
    aligned : Aligned
    source_shape : (int, int)
        ``(H, W)`` of the frame the crop was cut from.

    Returns
    -------
    float
        0.0 when fewer than two pixels of the region are left.
    """
    crop = aligned.crop
    hull = cv2.convexHull(np.round(aligned.points).astype(np.int32))
    region = np.zeros(crop.shape, np.uint8)
    cv2.fillConvexPoly(region, hull, 1)
    keep = region.astype(bool) & ~aligned.mask & inside_source(aligned.matrix, source_shape, crop.shape[0])
    values = crop[keep]
    return float(values.std()) if values.size >= 2 else 0.0
