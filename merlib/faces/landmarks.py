"""dlib face detection and 68-point landmarks, with the models loaded once per process.

Coordinates are pixels, ``(x, y)``, origin at the top-left pixel centre. The 68-point
model is the one shipped by the ``face-recognition-models`` package; it was trained on
iBUG 300-W, whose terms restrict it to non-commercial research use.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from merlib.errors import MerlibError

#: Number of points of the iBUG 68-point markup.
N_LANDMARKS = 68
#: Eye landmarks (0-based iBUG indices): image-left eye, image-right eye.
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


def model_path() -> Path:
    """Path of the 68-point model inside the installed ``face-recognition-models``.

    Found with ``importlib`` because importing that package fails with current
    setuptools (it imports ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MerlibError(
            "the 68-point landmark model needs the package face-recognition-models "
            "(pip install face-recognition-models==0.3.0)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / MODEL_FILE
    if not path.is_file():
        raise MerlibError(f"landmark model not found at {path}")
    return path


@lru_cache(maxsize=1)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _predictor():
    import dlib

    return dlib.shape_predictor(str(model_path()))


def _as_grey_u8(grey: np.ndarray) -> np.ndarray:
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grey image, got {grey.dtype} {grey.shape}")
    return np.ascontiguousarray(grey)


def detect_faces_scored(grey: np.ndarray, upsample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """HOG frontal-face detections with their scores, best first.

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
    upsample : int
        dlib's pyramid upsampling count (1 finds faces down to about 40 px wide).

    Returns
    -------
    boxes : ndarray of shape (N, 4), int64
        ``x1, y1, x2, y2`` (inclusive corners, may lie outside the image).
    scores : ndarray of shape (N,), float64
    """
    rects, scores, _ = _detector().run(_as_grey_u8(grey), upsample, 0.0)
    boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects],
                     dtype=np.int64).reshape(-1, 4)
    return boxes, np.asarray(scores, dtype=np.float64).reshape(-1)


def detect_faces(grey: np.ndarray, upsample: int = 1) -> np.ndarray:
    """HOG frontal-face boxes, int array of shape (N, 4): ``x1, y1, x2, y2``, best first."""
    return detect_faces_scored(grey, upsample)[0]


def landmarks_68(grey: np.ndarray, box: np.ndarray | tuple[int, int, int, int]) -> np.ndarray:
    """The 68 iBUG landmarks inside a face box.

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
    box : array-like of 4 ints
        ``x1, y1, x2, y2`` as returned by :func:`detect_faces`.

    Returns
    -------
    ndarray of shape (68, 2), float32
        ``(x, y)`` pixel coordinates, 0-based iBUG order (jaw 0-16, brows 17-26,
        nose 27-35, eyes 36-47, mouth 48-67).
    """
    import dlib

    x1, y1, x2, y2 = (int(v) for v in box)
    shape = _predictor()(_as_grey_u8(grey), dlib.rectangle(x1, y1, x2, y2))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def inter_ocular(points: np.ndarray) -> float:
    """Distance between the two eye centres (means of points 36-41 and 42-47), pixels."""
    pts = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(pts[LEFT_EYE].mean(0) - pts[RIGHT_EYE].mean(0)))
