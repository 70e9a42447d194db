"""Faces for the pre-processing tests: toy landmark geometry and a real photograph.

The photograph is scikit-image's bundled ``astronaut`` (Eileen Collins, NASA, public
domain): no download, and a real face for dlib to find. Frames are made from it by
placing the face with a known roll, scale and position on a grey canvas.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def toy_landmarks() -> np.ndarray:
    """A frontal 68-point face (iBUG order), float64 (68, 2): eyes at (+-0.5, 0), IOD 1.

    Each eye is a symmetric hexagon, so its landmark mean is exactly its centre.
    """
    t = np.linspace(np.pi, 0, 17)
    jaw = np.c_[1.05 * np.cos(t), 0.1 + 1.65 * np.sin(t)]
    brows = np.r_[np.c_[np.linspace(-0.85, -0.15, 5), np.full(5, -0.35)],
                  np.c_[np.linspace(0.15, 0.85, 5), np.full(5, -0.35)]]
    nose = np.r_[np.c_[np.zeros(4), np.linspace(-0.1, 0.55, 4)],
                 np.c_[np.linspace(-0.2, 0.2, 5), np.full(5, 0.65)]]
    a = np.radians([180, 120, 60, 0, -60, -120])
    eye = np.c_[0.18 * np.cos(a), -0.07 * np.sin(a)]
    m_out = np.linspace(np.pi, -np.pi, 12, endpoint=False)
    m_in = np.linspace(np.pi, -np.pi, 8, endpoint=False)
    mouth = np.r_[np.c_[0.4 * np.cos(m_out), 1.0 - 0.15 * np.sin(m_out)],
                  np.c_[0.25 * np.cos(m_in), 1.0 - 0.05 * np.sin(m_in)]]
    pts = np.r_[jaw, brows, nose, eye + [-0.5, 0], eye + [0.5, 0], mouth]
    assert pts.shape == (68, 2)
    return pts


def place(points: np.ndarray, angle_deg: float, scale: float, centre: tuple[float, float]) -> np.ndarray:
    """``points`` rotated by ``angle_deg`` (clockwise on screen, y down), scaled, moved."""
    th = np.radians(angle_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return points @ rot.T * scale + np.asarray(centre)


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


#: Centre of the astronaut's face (between the eyes), in the 512 x 512 photograph.
ASTRONAUT_EYES = (220.0, 106.0)


def face_frame(photo: np.ndarray, roll_deg: float = 0.0, scale: float = 1.0,
               at: tuple[float, float] = (320.0, 200.0), shape: tuple[int, int] = (480, 640),
               grey: bool = False) -> np.ndarray:
    """The astronaut's face rolled by ``roll_deg`` (clockwise on screen) and scaled, with
    its eye midpoint moved to ``at``, on a flat grey ``shape`` canvas."""
    m = cv2.getRotationMatrix2D(ASTRONAUT_EYES, -roll_deg, scale)
    m[:, 2] += np.asarray(at) - np.asarray(ASTRONAUT_EYES)
    out = cv2.warpAffine(photo, m, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY) if grey else out


def write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), path
    return path
