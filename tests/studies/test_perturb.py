"""Image perturbations of the robustness study: identities, sizes in face units, errors."""
from __future__ import annotations

import numpy as np
import pytest

from merlib.errors import ConfigError
from merlib.faces.perturb import IDENTITY, PERTURBATIONS, perturb


def _face(h: int = 120, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A textured frame and landmarks with eyes 40 px apart, mouth rows ~90, brows ~40."""
    rng = np.random.default_rng(0)
    g = rng.integers(40, 216, size=(h, w)).astype(np.uint8)
    pts = np.zeros((68, 2))
    pts[:, 0], pts[:, 1] = 80, 60
    pts[36:42] = (60, 55)
    pts[42:48] = (100, 55)
    pts[17:27] = (80, 40)
    pts[48:68] = (80, 90)
    return g, pts


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_identity_strength_returns_the_frame(name):
    g, pts = _face()
    assert np.array_equal(perturb(g, name, IDENTITY[name], pts), g)


@pytest.mark.parametrize("name,strength", [("noise", 16), ("blur", 0.05), ("brightness", 50), ("contrast", 0.3),
                                           ("gamma", 2.0), ("jpeg", 5), ("lowres", 8), ("rotation", 20),
                                           ("turn", 0.3), ("occlude_mouth", 0.5), ("occlude_brows", 0.5)])
def test_each_perturbation_changes_the_frame_keeps_shape_and_dtype(name, strength):
    g, pts = _face()
    out = perturb(g, name, strength, pts)
    assert out.shape == g.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - g).mean() > 1.0


def test_brightness_adds_and_clips():
    g = np.array([[10, 250]], np.uint8)
    _, pts = _face()
    assert perturb(g, "brightness", 30, pts).tolist() == [[40, 255]]


def test_noise_is_seeded_and_has_the_asked_sigma():
    g = np.full((200, 200), 128, np.uint8)
    _, pts = _face()
    a, b = perturb(g, "noise", 10, pts, seed=3), perturb(g, "noise", 10, pts, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, perturb(g, "noise", 10, pts, seed=4))
    assert abs(float(a.astype(float).std()) - 10) < 0.5


def test_mouth_band_covers_the_mouth_rows_only():
    g, pts = _face()
    out = perturb(g, "occlude_mouth", 0.5, pts)  # 0.5 IOD = 20 px high around y=90
    changed = np.flatnonzero((out != g).any(1))
    assert changed.min() == 80 and changed.max() == 99
    cols = np.flatnonzero((out != g).any(0))  # 0.9 IOD = 36 px either side of x=80
    assert cols.min() == 44 and cols.max() == 115


def test_lowres_is_relative_to_the_inter_ocular_distance():
    g, pts = _face()
    # IOD 40 px: keeping 40 px or more is the identity; 10 px smooths the texture.
    assert np.array_equal(perturb(g, "lowres", 40, pts), g)
    assert perturb(g, "lowres", 10, pts).astype(float).std() < 0.5 * g.astype(float).std()


@pytest.mark.parametrize("name,strength,match", [
    ("fog", 1, "name: expected one of"), ("jpeg", 0, "out of range for 'jpeg'"),
    ("gamma", -1, "out of range for 'gamma'"), ("turn", 1.0, "turn: expected a strength in"),
])
def test_bad_arguments_name_the_parameter(name, strength, match):
    g, pts = _face()
    with pytest.raises(ConfigError, match=match):
        perturb(g, name, strength, pts)


def test_bad_frame_and_landmarks_are_refused():
    g, pts = _face()
    with pytest.raises(ConfigError, match="grey: expected a uint8"):
        perturb(g.astype(np.float32), "noise", 1, pts)
    with pytest.raises(ConfigError, match="points: expected 68"):
        perturb(g, "noise", 1, pts[:10])
