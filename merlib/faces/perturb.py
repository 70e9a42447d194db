"""Capture-condition perturbations of a grey frame, applied *before* pre-processing.

The robustness study (:mod:`merlib.studies.robustness`) degrades a test subject's apex
frame as a worse camera, light or pose would, then runs the unchanged pre-processing
(detection, landmarks, alignment, eye mask) and the unchanged model on it. Each
perturbation is a pure function of the frame, a strength and the face geometry of the
clean frame (its 68 landmarks), so it is the same on every machine and its size is given
in face units where pixels would mean different things in frames of different sizes:

================  ===========================================  ==========================
name              what it does                                  strength
================  ===========================================  ==========================
``noise``         additive Gaussian noise (seeded)              sigma, grey levels
``blur``          Gaussian blur                                 sigma, inter-ocular dist.
``brightness``    add a constant (clipped)                      grey levels added
``contrast``      scale around the frame's mean grey            factor (1: none)
``gamma``         ``255 * (x / 255) ** gamma``                  gamma (1: none)
``jpeg``          JPEG encode / decode (OpenCV)                 quality, 1..100
``lowres``        area down-sampling then bilinear up-sampling  IOD left, pixels
``rotation``      in-plane rotation about the face centre       degrees
``turn``          horizontal perspective: one side of the face  fraction the far side
                  shortened, as a small head turn (yaw)         shrinks
``occlude_mouth`` flat band (frame mean) over the mouth         band height, IOD
``occlude_brows`` flat band over the brows                      band height, IOD
================  ===========================================  ==========================

Strength 0 (or 1 for the multiplicative ones) leaves the frame unchanged: see
:data:`IDENTITY`.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from merlib.errors import ConfigError
from merlib.faces.landmarks import LEFT_EYE, RIGHT_EYE

#: The strength at which each perturbation is the identity.
IDENTITY: dict[str, float] = {
    "noise": 0.0, "blur": 0.0, "brightness": 0.0, "contrast": 1.0, "gamma": 1.0, "jpeg": 100.0,
    "lowres": float("inf"), "rotation": 0.0, "turn": 0.0, "occlude_mouth": 0.0, "occlude_brows": 0.0,
}

#: Readable axis labels (the strength's unit).
UNITS: dict[str, str] = {
    "noise": "noise sigma (grey levels)", "blur": "blur sigma (IOD)",
    "brightness": "grey levels added", "contrast": "contrast factor", "gamma": "gamma",
    "jpeg": "JPEG quality", "lowres": "inter-ocular distance left (px)",
    "rotation": "in-plane rotation (deg)", "turn": "far-side shortening (fraction)",
    "occlude_mouth": "band height over the mouth (IOD)", "occlude_brows": "band height over the brows (IOD)",
}

_MOUTH = slice(48, 68)
_BROWS = slice(17, 27)


def _geometry(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Face centre (mean of the 68 landmarks) and inter-ocular distance, frame pixels."""
    p = np.asarray(points, np.float64)
    if p.shape != (68, 2) or not np.isfinite(p).all():
        raise ConfigError(f"points: expected 68 finite (x, y) landmarks, got shape {p.shape}")
    iod = float(np.linalg.norm(p[RIGHT_EYE].mean(0) - p[LEFT_EYE].mean(0)))
    if iod <= 0:
        raise ConfigError("points: the two eye centres coincide (inter-ocular distance 0)")
    return p.mean(0), iod


def _noise(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(g + rng.normal(0.0, s, g.shape), 0, 255)


def _blur(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    _, iod = _geometry(pts)
    sigma = s * iod
    return g if sigma <= 0 else cv2.GaussianBlur(g, (0, 0), sigmaX=sigma)


def _brightness(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    return np.clip(g + s, 0, 255)


def _contrast(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    m = g.mean()
    return np.clip(m + s * (g - m), 0, 255)


def _gamma(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    return 255.0 * (g / 255.0) ** s


def _jpeg(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.clip(np.round(g), 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(round(s))])
    if not ok:  # pragma: no cover - OpenCV always encodes a grey uint8 image
        raise ConfigError(f"jpeg: OpenCV could not encode at quality {s}")
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float64)


def _lowres(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    _, iod = _geometry(pts)
    f = s / iod
    if f >= 1:
        return g
    h, w = g.shape
    small = cv2.resize(g, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _warp(g: np.ndarray, m: np.ndarray, perspective: bool = False) -> np.ndarray:
    h, w = g.shape
    # Replicated borders: black wedges would be new edges the detector could latch onto.
    if perspective:
        return cv2.warpPerspective(g, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(g, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _rotation(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    c, _ = _geometry(pts)
    return _warp(g, cv2.getRotationMatrix2D((float(c[0]), float(c[1])), float(s), 1.0))


def _turn(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    # A yaw turn seen by a distant camera: the face's far half narrows and its far edge
    # gets shorter. Modelled on the face's square (2 IOD either side of the centre): the
    # right edge keeps its height, the left edge shrinks by s and moves in by s / 2.
    if not 0 <= s < 1:
        raise ConfigError(f"turn: expected a strength in [0, 1), got {s}")
    c, iod = _geometry(pts)
    r = 2.0 * iod
    x0, x1, y0, y1 = c[0] - r, c[0] + r, c[1] - r, c[1] + r
    src = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    dx, dy = s * r, s * r
    dst = np.float32([[x0 + dx, y0 + dy], [x1, y0], [x1, y1], [x0 + dx, y1 - dy]])
    return _warp(g, cv2.getPerspectiveTransform(src, dst), perspective=True)


def _band(g: np.ndarray, s: float, pts: np.ndarray, which: slice) -> np.ndarray:
    c, iod = _geometry(pts)
    part = np.asarray(pts, np.float64)[which]
    cx, cy = part.mean(0)
    half_h, half_w = 0.5 * s * iod, 0.9 * iod
    out = g.copy()
    h, w = g.shape
    y0, y1 = int(max(0, round(cy - half_h))), int(min(h, round(cy + half_h)))
    x0, x1 = int(max(0, round(cx - half_w))), int(min(w, round(cx + half_w)))
    out[y0:y1, x0:x1] = g.mean()
    return out


def _occlude_mouth(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    return _band(g, s, pts, _MOUTH)


def _occlude_brows(g: np.ndarray, s: float, pts: np.ndarray, seed: int) -> np.ndarray:
    return _band(g, s, pts, _BROWS)


PERTURBATIONS: dict[str, Callable[[np.ndarray, float, np.ndarray, int], np.ndarray]] = {
    "noise": _noise, "blur": _blur, "brightness": _brightness, "contrast": _contrast, "gamma": _gamma,
    "jpeg": _jpeg, "lowres": _lowres, "rotation": _rotation, "turn": _turn,
    "occlude_mouth": _occlude_mouth, "occlude_brows": _occlude_brows,
}

#: Which perturbations move the face geometrically (the alignment may undo them).
GEOMETRIC: tuple[str, ...] = ("rotation", "turn")


def perturb(grey: np.ndarray, name: str, strength: float, points: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """One perturbation of a grey frame.

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
        The frame as the pre-processing reads it.
    name : str
        A key of :data:`PERTURBATIONS`.
    strength : float
        In the unit of :data:`UNITS` ``[name]``; :data:`IDENTITY` ``[name]`` returns the
        frame unchanged.
    points : ndarray of shape (68, 2)
        Landmarks of the *clean* frame (frame pixels): place the occlusion bands, the
        rotation and turn centre, and turn IOD units into pixels.
    seed : int
        Noise seed (the other perturbations are deterministic).

    Returns
    -------
    ndarray of shape (H, W), uint8

    Raises
    ------
    ConfigError
        Unknown name, a non-grey frame, a strength out of range or bad landmarks.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.full((40, 40), 100, np.uint8)
    >>> pts = np.zeros((68, 2)); pts[36:42] = (10, 20); pts[42:48] = (30, 20)
    >>> int(perturb(g, "brightness", 30, pts)[0, 0])
    130
    """
    if name not in PERTURBATIONS:
        raise ConfigError(f"name: expected one of {sorted(PERTURBATIONS)}, got {name!r}")
    g = np.asarray(grey)
    if g.ndim != 2 or g.dtype != np.uint8:
        raise ConfigError(f"grey: expected a uint8 (H, W) frame, got {g.dtype} {g.shape}")
    s = float(strength)
    if not np.isfinite(s) and not (name == "lowres" and s == float("inf")):
        raise ConfigError(f"strength: expected a finite number for {name!r}, got {strength!r}")
    checks = {"noise": s >= 0, "blur": s >= 0, "contrast": s >= 0, "gamma": s > 0,
              "jpeg": 1 <= s <= 100, "lowres": s > 0, "occlude_mouth": s >= 0, "occlude_brows": s >= 0}
    if not checks.get(name, True):
        raise ConfigError(f"strength: {strength!r} is out of range for {name!r} ({UNITS[name]})")
    _geometry(points)
    if s == IDENTITY[name]:
        return g.copy()
    out = PERTURBATIONS[name](g.astype(np.float64), s, np.asarray(points, np.float64), seed)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
