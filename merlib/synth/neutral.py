"""Neutral base faces: take the pool photographs' smiles out before expressions go in.

Most pool photographs smile, many broadly; real micro-expression clips start from a
neutral face and the expression is a change from it. An identity's face shape is
therefore *neutralised* before its sources are warped onto it (:mod:`.morph`): the lips
are closed, the mouth corners lowered to the lip line, a widened mouth narrowed and
raised brows lowered (:func:`neutral_shape`). A closed-lip smile then warps to a
convincing neutral mouth; an open smile does not (a warp cannot invent the lips that
cover the teeth), so such sources are detected (:func:`mouth_is_open`) and give nothing
to the mouth region of the blend (:func:`mouth_region`), where the closed-lip sources
alone are used.

Measures are in inter-ocular distances (IOD); template coordinates are upright (the eye
line horizontal), ``(x, y)`` pixels with ``y`` down, so "up" is ``-y``.
"""
from __future__ import annotations

import cv2
import numpy as np

from merlib.faces.landmarks import LEFT_EYE, RIGHT_EYE, inter_ocular

#: Mouth-corner elevation (IOD) a neutral mouth is given: corners a little below the lip line,
#: as in the pool's least-smiling faces (-0.06 to 0.0).
NEUTRAL_ELEVATION = -0.02
#: Gap left between the inner lips (IOD): coincident control points would make the
#: thin-plate spline singular.
NEUTRAL_LIP_GAP = 0.01
#: Mouth width (IOD, corner to corner) above which a mouth counts as stretched: the pool's
#: least-smiling faces measure 0.77-0.96, broad smiles 1.0-1.17.
NEUTRAL_MOUTH_WIDTH = 0.85
#: Share of the width beyond :data:`NEUTRAL_MOUTH_WIDTH` that is kept (faces differ).
WIDTH_KEPT = 0.4
#: Brow height above the eye line (IOD, mean of the ten brow points) above which brows
#: count as raised: the pool's median is 0.32.
NEUTRAL_BROW_HEIGHT = 0.33
#: Share of the raise beyond :data:`NEUTRAL_BROW_HEIGHT` that is taken out.
BROW_LOWERED = 0.6

#: An open mouth: inner lips further apart than this (IOD) ...
OPEN_GAP = 0.10
#: ... and this share of the lips' outline filled with teeth or mouth cavity.
OPEN_FILL = 0.10

_UPPER_LIP = (49, 50, 51, 52, 53, 61, 62, 63)
_LOWER_LIP = (55, 56, 57, 58, 59, 65, 66, 67)
#: Jaw points that rise when the mouth closes, with the share of the lower lip's rise
#: (the chin follows the lower lip; the jaw's angles barely move).
_JAW_FOLLOW = {4: 0.1, 5: 0.3, 6: 0.5, 7: 0.6, 8: 0.65, 9: 0.6, 10: 0.5, 11: 0.3, 12: 0.1}


def corner_elevation(points: np.ndarray) -> float:
    """How far the mouth corners sit above the lip line, IOD (positive: a smile).

    The lip line is the midpoint of the inner lips' middle points (62, 66), so the value
    does not depend on how far the mouth is open; the corners are 48 and 54.
    """
    p = np.asarray(points, np.float64)
    line = 0.5 * (p[62, 1] + p[66, 1])
    return float((line - 0.5 * (p[48, 1] + p[54, 1])) / inter_ocular(p))


def lip_gap(points: np.ndarray) -> float:
    """Distance between the inner lips' middle points (62, 66), IOD."""
    p = np.asarray(points, np.float64)
    return float((p[66, 1] - p[62, 1]) / inter_ocular(p))


def _polygon(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def mouth_fill(image: np.ndarray, points: np.ndarray) -> float:
    """Share of the outer-lip outline (48-59) showing teeth or mouth cavity, not lips.

    Pixels are compared with the lips' own median colour (CIELAB, between the outer and
    the inner outline): teeth are brighter and less red, the cavity much darker. dlib's
    inner-lip points are unreliable on smiling mouths (closed lips often get a wide inner
    outline), so the pixels decide together with :func:`lip_gap`.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8 BGR
    points : ndarray of shape (68, 2)

    Returns
    -------
    float in [0, 1]
    """
    p = np.asarray(points, np.float64)
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    outer = _polygon(p[48:60], image.shape[:2])
    lips = outer & ~_polygon(p[60:68], image.shape[:2])
    if not lips.any() or not outer.any():
        return 0.0
    light, red = lab[..., 0], lab[..., 1]
    lip_light, lip_red = np.median(light[lips]), np.median(red[lips])
    teeth = (light > lip_light + 25) & (red < lip_red - 8)
    cavity = light < lip_light - 40
    return float(((teeth | cavity) & outer).sum() / outer.sum())


def mouth_is_open(image: np.ndarray, points: np.ndarray) -> bool:
    """True when the lips are parted showing teeth or cavity (:data:`OPEN_GAP`,
    :data:`OPEN_FILL`): a warp cannot close such a mouth convincingly."""
    return lip_gap(points) > OPEN_GAP and mouth_fill(image, points) > OPEN_FILL


def _along_mouth(x: np.ndarray, knots_x: np.ndarray, knots_v: np.ndarray) -> np.ndarray:
    order = np.argsort(knots_x)
    return np.interp(x, knots_x[order], knots_v[order])


def neutral_shape(points: np.ndarray) -> np.ndarray:
    """Move an upright face's mouth and brows to a neutral pose.

    In order: the lips close (the upper lip comes down a third of the gap, the lower lip
    and the chin up two thirds, as a mouth closes from a smile); each mouth corner is
    lowered to :data:`NEUTRAL_ELEVATION` above the lip line, the lip outline following
    with the square of its distance from the mouth's middle (corners droop only if they
    already did: those are left); a mouth wider than :data:`NEUTRAL_MOUTH_WIDTH` is
    narrowed; brows higher than :data:`NEUTRAL_BROW_HEIGHT` are lowered. Eyes and the
    rest of the face stay.

    Parameters
    ----------
    points : ndarray of shape (68, 2)
        ``(x, y)``, iBUG order, in an upright frame (template coordinates).

    Returns
    -------
    ndarray of shape (68, 2), float64
    """
    p = np.asarray(points, np.float64)
    q = p.copy()
    iod = inter_ocular(p)

    # Close the lips column by column (61/67, 62/66, 63/65), tapering to the corners.
    pairs = ((61, 67), (62, 66), (63, 65))
    close = np.array([max(p[lo, 1] - p[up, 1] - NEUTRAL_LIP_GAP * iod, 0.0) for up, lo in pairs])
    knots_x = np.array([p[48, 0]] + [p[up, 0] for up, _ in pairs] + [p[54, 0]])
    knots_v = np.concatenate([[0.0], close, [0.0]])
    up_idx, lo_idx = list(_UPPER_LIP), list(_LOWER_LIP)
    q[up_idx, 1] += _along_mouth(p[up_idx, 0], knots_x, knots_v) / 3.0
    q[lo_idx, 1] -= 2.0 * _along_mouth(p[lo_idx, 0], knots_x, knots_v) / 3.0
    for i, share in _JAW_FOLLOW.items():
        q[i, 1] -= share * 2.0 * close[1] / 3.0

    # Lower each corner to the lip line; the outline follows.
    line = 0.5 * (q[62, 1] + q[66, 1])
    centre_x = 0.5 * (q[48, 0] + q[54, 0])
    half = 0.5 * (q[54, 0] - q[48, 0])
    mouth = np.arange(48, 68)
    side_left = q[mouth, 0] < centre_x
    for corner, on_side in ((48, side_left), (54, ~side_left)):
        lift = max(line - q[corner, 1] - NEUTRAL_ELEVATION * iod, 0.0)
        idx = mouth[on_side]
        t = np.clip(np.abs(q[idx, 0] - centre_x) / max(half, 1e-6), 0.0, 1.0)
        q[idx, 1] += lift * t * t

    # Narrow a stretched mouth about its middle.
    width = 2.0 * half
    neutral = NEUTRAL_MOUTH_WIDTH * iod
    if width > neutral:
        factor = (neutral + WIDTH_KEPT * (width - neutral)) / width
        q[mouth, 0] = centre_x + (q[mouth, 0] - centre_x) * factor

    # Lower raised brows.
    eye_line = 0.5 * (p[LEFT_EYE, 1].mean() + p[RIGHT_EYE, 1].mean())
    height = (eye_line - p[17:27, 1].mean()) / iod
    if height > NEUTRAL_BROW_HEIGHT:
        q[17:27, 1] += BROW_LOWERED * (height - NEUTRAL_BROW_HEIGHT) * iod
    return q


def expressiveness(points: np.ndarray) -> float:
    """How far a face is from neutral: the mean landmark displacement of
    :func:`neutral_shape`, IOD (0 for a face it leaves as it is)."""
    p = np.asarray(points, np.float64)
    return float(np.linalg.norm(neutral_shape(p) - p, axis=1).mean() / inter_ocular(p))


def mouth_region(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Soft mask of the mouth and the skin around it, float32 (H, W) in [0, 1].

    An ellipse around the lips reaching a fifth of an IOD beyond them (below, where an
    open source's warped lower lip ends up, a little more), feathered: the part of the
    blend that only closed-lip sources provide.
    """
    p = np.asarray(points, np.float64)
    iod = inter_ocular(p)
    lips = p[48:60]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    centre = (0.5 * (x0 + x1), 0.5 * (y0 + y1) + 0.05 * iod)
    axes = (0.5 * (x1 - x0) + 0.2 * iod, 0.5 * (y1 - y0) + 0.25 * iod)
    mask = np.zeros(shape, np.float32)
    cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])),
                0.0, 0.0, 360.0, 1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(mask, (0, 0), 0.08 * iod)
