"""Action-unit landmark displacements, and the expressions built from them.

Each action unit (AU, FACS numbering) is a displacement of the 68 iBUG landmarks in an
upright, aligned face, in units of the inter-ocular distance (IOD). Image axes: ``x`` to
the right, ``y`` down, so "up" is ``-y``. Tables give the image-left half of the face
(subject's right: jaw 0-8, brow 17-21, eye 36-41, mouth 48-51/57-62/66-67) and the
midline; the other half is its mirror image. Unilateral AUs (14) act on one side.

An expression is a weighted sum of AU fields with a left/right asymmetry, rescaled so
that the largest landmark displacement equals the sampled apex amplitude.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Landmark index -> its mirror image (iBUG 68-point markup, 0-based).
MIRROR: np.ndarray = np.array(
    list(range(16, -1, -1))                      # jaw 0-16
    + list(range(26, 16, -1))                    # brows 17-26
    + [27, 28, 29, 30]                           # nose bridge
    + [35, 34, 33, 32, 31]                       # nostrils 31-35
    + [45, 44, 43, 42, 47, 46]                   # image-left eye 36-41
    + [39, 38, 37, 36, 41, 40]                   # image-right eye 42-47
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]   # outer lip 48-59
    + [64, 63, 62, 61, 60, 67, 66, 65],          # inner lip 60-67
    dtype=np.int64,
)

# (dx, dy) per landmark, image-left half + midline, before normalisation. The numbers
# are hand-set shapes of FACS descriptions; only their relative sizes matter.
_HALF_TABLES: dict[int, dict[int, tuple[float, float]]] = {
    1: {21: (0.05, -1.0), 20: (0.0, -0.7), 19: (0.0, -0.35), 18: (0.0, -0.15)},
    2: {17: (0.0, -0.8), 18: (0.0, -1.0), 19: (0.0, -0.7), 20: (0.0, -0.3),
        37: (0.0, -0.1), 38: (0.0, -0.1)},
    4: {21: (0.45, 0.8), 20: (0.3, 0.9), 19: (0.15, 0.7), 18: (0.05, 0.45), 17: (0.0, 0.2),
        37: (0.0, 0.15), 38: (0.0, 0.15)},
    5: {37: (0.0, -1.0), 38: (0.0, -1.0), 36: (0.0, -0.15), 39: (0.0, -0.1),
        19: (0.0, -0.2), 20: (0.0, -0.2)},
    6: {40: (0.0, -0.8), 41: (0.0, -0.8), 36: (-0.05, -0.3), 1: (0.0, -0.35),
        2: (0.0, -0.5), 3: (0.0, -0.35), 31: (0.0, -0.2), 48: (0.0, -0.2)},
    7: {40: (0.0, -1.0), 41: (0.0, -1.0), 37: (0.0, 0.4), 38: (0.0, 0.4), 36: (0.05, 0.0)},
    9: {31: (0.05, -1.0), 32: (0.0, -0.8), 33: (0.0, -0.6), 30: (0.0, -0.3),
        29: (0.0, -0.15), 21: (0.15, 0.5), 20: (0.0, 0.3), 50: (0.0, -0.4), 51: (0.0, -0.4),
        49: (0.0, -0.3), 61: (0.0, -0.35), 62: (0.0, -0.35), 40: (0.0, -0.3), 41: (0.0, -0.3)},
    10: {50: (0.0, -1.0), 51: (0.0, -0.9), 49: (0.0, -0.8), 61: (0.0, -0.9),
         62: (0.0, -0.8), 48: (0.0, -0.3), 60: (0.0, -0.4), 31: (0.0, -0.3), 32: (0.0, -0.2)},
    12: {48: (-0.75, -0.65), 60: (-0.6, -0.55), 49: (-0.35, -0.35), 59: (-0.35, -0.3),
         61: (-0.2, -0.2), 67: (-0.2, -0.15), 50: (-0.15, -0.15), 58: (-0.15, -0.1),
         3: (0.0, -0.15), 4: (0.0, -0.15)},
    14: {48: (-0.6, -0.05), 60: (-0.55, -0.05), 49: (-0.25, 0.0), 59: (-0.25, 0.0),
         61: (-0.15, 0.0), 67: (-0.15, 0.0)},
    15: {48: (-0.2, 1.0), 60: (-0.15, 0.9), 59: (0.0, 0.5), 49: (0.0, 0.4), 67: (0.0, 0.4),
         61: (0.0, 0.3), 58: (0.0, 0.25), 5: (0.0, 0.1)},
    17: {57: (0.0, -0.8), 58: (0.0, -0.7), 66: (0.0, -0.6), 67: (0.0, -0.5), 8: (0.0, -0.5),
         7: (0.0, -0.4), 6: (0.0, -0.2), 59: (0.0, -0.4), 48: (0.0, -0.1)},
    20: {48: (-1.0, 0.2), 60: (-0.8, 0.15), 49: (-0.5, 0.1), 59: (-0.5, 0.1),
         50: (-0.25, 0.0), 58: (-0.25, 0.0), 61: (-0.4, 0.0), 67: (-0.4, 0.0)},
    23: {48: (0.6, 0.0), 60: (0.5, 0.0), 49: (0.3, 0.15), 59: (0.3, -0.15),
         50: (0.1, 0.3), 51: (0.0, 0.3), 57: (0.0, -0.3), 58: (0.1, -0.3)},
    25: {66: (0.0, 1.0), 67: (0.0, 0.9), 57: (0.0, 0.6), 58: (0.0, 0.55), 59: (0.0, 0.4),
         61: (0.0, -0.2), 62: (0.0, -0.2)},
    # Lip presser: the lips pressed together and narrowed, the red of the lips thinner.
    24: {50: (0.0, 0.5), 51: (0.0, 0.55), 61: (0.0, 0.7), 62: (0.0, 0.75), 58: (0.0, -0.5),
         57: (0.0, -0.55), 67: (0.0, -0.7), 66: (0.0, -0.75), 48: (0.15, 0.0), 60: (0.1, 0.0)},
    # Nostril dilator: the wings flare outwards.
    38: {31: (-1.0, 0.0), 32: (-0.5, 0.1), 30: (0.0, 0.0)},
    26: {8: (0.0, 1.0), 7: (0.0, 0.9), 6: (0.0, 0.7), 5: (0.0, 0.45), 4: (0.0, 0.2),
         57: (0.0, 0.95), 58: (0.0, 0.9), 59: (0.0, 0.7), 66: (0.0, 0.9), 67: (0.0, 0.85),
         48: (0.0, 0.3), 60: (0.0, 0.35)},
}

#: AUs that act on one side of the face only.
UNILATERAL: frozenset[int] = frozenset({14})


#: Landmarks on the image-left half (subject's right) and on the midline.
IMAGE_LEFT: frozenset[int] = frozenset(
    list(range(0, 8)) + list(range(17, 22)) + [31, 32] + list(range(36, 42))
    + [48, 49, 50, 58, 59, 60, 61, 67]
)
MIDLINE: frozenset[int] = frozenset({8, 27, 28, 29, 30, 33, 51, 57, 62, 66})


def _is_image_left_or_midline(i: int) -> bool:
    return i in IMAGE_LEFT or i in MIDLINE


def _au_field(au: int) -> np.ndarray:
    """Unit displacement of one AU, shape (68, 2), max landmark norm 1 (IOD units)."""
    d = np.zeros((68, 2), dtype=np.float64)
    for i, (dx, dy) in _HALF_TABLES[au].items():
        if not _is_image_left_or_midline(i):
            raise ValueError(f"AU{au}: landmark {i} is on the image-right half")
        d[i] = (dx, dy)
        if au not in UNILATERAL:
            j = int(MIRROR[i])
            if j == i:
                d[i, 0] = 0.0  # the midline moves vertically only
            else:
                d[j] = (-dx, dy)
    return d / np.linalg.norm(d, axis=1).max()


#: AU number -> unit displacement field, shape (68, 2), IOD units, max norm 1.
AU_FIELDS: dict[int, np.ndarray] = {au: _au_field(au) for au in sorted(_HALF_TABLES)}

#: Expression kind -> the AU combinations one sample may draw from. ``neutral`` moves
#: nothing (but is still resampled like every other frame).
RECIPES: dict[str, tuple[tuple[int, ...], ...]] = {
    "positive": ((6, 12), (12,), (6, 12, 25)),
    "surprise": ((1, 2, 5, 26), (1, 2, 26), (1, 2, 5), (1, 2, 5, 25)),
    "negative": ((4, 7), (9, 10), (15,), (15, 17), (4, 15), (4, 7, 23), (14,)),
    "anger": ((4, 5, 7, 23), (4, 7), (4, 7, 23)),
    "contempt": ((14,), (12, 14)),
    "disgust": ((9, 10), (9, 15, 17), (10,), (9,)),
    "fear": ((1, 2, 4, 5, 20, 26), (1, 4, 20), (1, 2, 4, 5, 20)),
    "sadness": ((1, 4, 15), (15, 17), (1, 4), (1, 15)),
    "repression": ((15,), (14,), (17,), (15, 17), (14, 17)),
    "others": ((4,), (7,), (17,), (1,), (23,), (14,)),
    "neutral": ((),),
}


#: How the real composite's samples combine AUs, per objective class: the most frequent
#: combinations with their counts, then each AU's share of the class's samples, and the
#: class size. Counted from the owners' CASME II and SAMM sheets joined to the MEGC2019
#: list (``shared/real_composite_statistics.md``: 180 negative, 58 positive, 40 surprise
#: samples; AUs below 5% of a class are left out there and here).
REAL_COMBINATIONS: dict[str, tuple[tuple[tuple[int, ...], int], ...]] = {
    "negative": (((7,), 29), ((4,), 24), ((4, 7), 21), ((17,), 15), ((4, 10), 10), ((15,), 6),
                 ((14,), 6), ((10,), 5)),
    "positive": (((12,), 34), ((14,), 4), ((6, 12), 3), ((7, 12), 3), ((12, 15), 2),
                 ((6, 12, 15), 2), ((12, 24), 2)),
    "surprise": (((1, 2), 17), ((5,), 8), ((1,), 3), ((2, 12), 1), ((25,), 1), ((2, 26, 38), 1),
                 ((1, 2, 5, 7), 1), ((1, 2, 25), 1)),
}
REAL_AU_SHARES: dict[str, dict[int, float]] = {
    "negative": {4: 0.43, 7: 0.41, 17: 0.16, 10: 0.12, 15: 0.09, 9: 0.08, 14: 0.07},
    "positive": {12: 0.93, 6: 0.09, 14: 0.07, 15: 0.07, 7: 0.05},
    "surprise": {2: 0.62, 1: 0.57, 5: 0.28, 25: 0.08, 26: 0.08, 14: 0.05},
}
REAL_CLASS_SIZES: dict[str, int] = {"negative": 180, "positive": 58, "surprise": 40}
REAL_MEAN_AUS: dict[str, float] = {"negative": 1.62, "positive": 1.38, "surprise": 1.77}


def real_combination(label: str, rng: np.random.Generator) -> tuple[int, ...]:
    """Draw one sample's AUs as the real composite's ``label`` samples combine them.

    A listed combination is drawn with its count's share of the class; otherwise (the
    class's long tail of rarer combinations) two or three distinct AUs are drawn in
    proportion to their shares, redrawn while they form a listed combination, so the
    class's mean number of AUs per sample is about the real one (checked in ``tests/synth/test_appearance.py``).
    """
    if label not in REAL_COMBINATIONS:
        raise ValueError(f"label {label!r}: expected one of {sorted(REAL_COMBINATIONS)}")
    combos = REAL_COMBINATIONS[label]
    counts = np.array([n for _, n in combos], np.float64)
    listed = counts.sum() / REAL_CLASS_SIZES[label]
    if rng.random() < listed:
        return combos[int(rng.choice(len(combos), p=counts / counts.sum()))][0]
    shares = REAL_AU_SHARES[label]
    aus = np.array(sorted(shares))
    p = np.array([shares[a] for a in aus])
    listed_combos = {c for c, _ in combos}
    for _ in range(100):
        k = 3 if rng.random() < 0.25 else 2
        combo = tuple(sorted(int(a) for a in rng.choice(aus, size=min(k, len(aus)), replace=False,
                                                         p=p / p.sum())))
        # The long tail holds the combinations the list does not: a listed one drawn here
        # would inflate its count beyond the real one.
        if combo not in listed_combos:
            return combo
    return combo


@dataclass(frozen=True)
class Expression:
    """One sample's expression at apex.

    Attributes
    ----------
    kind : str
        Key of :data:`RECIPES`.
    aus : tuple of int
        AUs used.
    weights : tuple of float
        Relative weight of each AU (before the amplitude rescaling).
    side : int
        +1: unilateral AUs act on the image-left half; -1: image-right.
    asymmetry : float
        Image-left half scaled by ``1 + asymmetry``, image-right by ``1 - asymmetry``.
    amplitude_iod : float
        Largest landmark displacement at apex, IOD units.
    displacement : ndarray of shape (68, 2), float64
        Landmark displacements at apex, IOD units, ``(dx, dy)``.
    """

    kind: str
    aus: tuple[int, ...]
    weights: tuple[float, ...]
    side: int
    asymmetry: float
    amplitude_iod: float
    displacement: np.ndarray

    def au_code(self) -> str:
        """FACS-style code, e.g. ``6+12``; unilateral AUs get ``L``/``R`` (subject's side)."""
        # Image-left is the subject's right.
        return "+".join(
            (("R" if self.side > 0 else "L") if au in UNILATERAL else "") + str(au)
            for au in self.aus
        )


def expression_field(aus: tuple[int, ...], weights: tuple[float, ...], side: int,
                     asymmetry: float) -> np.ndarray:
    """Unnormalised weighted AU sum with asymmetry, shape (68, 2), IOD units."""
    d = np.zeros((68, 2), dtype=np.float64)
    for au, w in zip(aus, weights):
        f = AU_FIELDS[au]
        if au in UNILATERAL and side < 0:
            f = f[MIRROR] * np.array([-1.0, 1.0])
        d += w * f
    left = np.array([i in IMAGE_LEFT for i in range(68)])
    right = np.array([i not in IMAGE_LEFT and i not in MIDLINE for i in range(68)])
    scale = np.ones(68)
    scale[left] += asymmetry
    scale[right] -= asymmetry
    return d * scale[:, None]


def sample_expression(kind: str, amplitude_range: tuple[float, float],
                      rng: np.random.Generator, aus: tuple[int, ...] | None = None) -> Expression:
    """Draw one expression of ``kind`` with per-sample variation.

    Parameters
    ----------
    kind : str
        Key of :data:`RECIPES` (a class or an owners' emotion, lower case).
    amplitude_range : (float, float)
        Range of the apex amplitude (largest landmark displacement), IOD units.
    rng : numpy Generator
    aus : tuple of int, optional
        The AUs to use (e.g. :func:`real_combination`); by default one of ``kind``'s
        :data:`RECIPES`, drawn from ``rng``.

    Returns
    -------
    Expression
    """
    if kind not in RECIPES:
        raise ValueError(f"expression kind {kind!r}: expected one of {sorted(RECIPES)}")
    if aus is None:
        options = RECIPES[kind]
        aus = options[int(rng.integers(len(options)))]
    elif unknown := [a for a in aus if a not in AU_FIELDS]:
        raise ValueError(f"aus: no displacement field for AU {unknown}")
    weights = tuple(float(w) for w in rng.uniform(0.6, 1.0, size=len(aus)))
    side = 1 if rng.random() < 0.5 else -1
    asymmetry = float(rng.uniform(-0.25, 0.25))
    lo, hi = amplitude_range
    amplitude = float(rng.uniform(lo, hi))
    if not aus:
        return Expression(kind, (), (), side, 0.0, 0.0, np.zeros((68, 2)))
    d = expression_field(aus, weights, side, asymmetry)
    d *= amplitude / np.linalg.norm(d, axis=1).max()
    return Expression(kind, aus, weights, side, asymmetry, amplitude, d)


#: Face regions whose landmarks turn together in :func:`subject_style` (68-point indices).
STYLE_REGIONS: dict[str, range] = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
                                   "eyes": range(36, 48), "mouth": range(48, 68)}


def subject_style(sd_deg: float, rng: np.random.Generator) -> np.ndarray:
    """One subject's way of moving: a rotation angle per landmark, shape (68,), radians.

    Each region of :data:`STYLE_REGIONS` draws one angle from N(0, ``sd_deg``); the
    image-left landmarks turn by it and their mirror images by its negative, so the style
    is as symmetric as the face, and the midline does not turn (it moves vertically).
    """
    angles = np.zeros(68, np.float64)
    if sd_deg <= 0:
        return angles
    left = np.array([i in IMAGE_LEFT for i in range(68)])
    mid = np.array([i in MIDLINE for i in range(68)])
    for region in STYLE_REGIONS.values():
        idx = np.array(list(region))
        angles[idx] = np.deg2rad(float(rng.normal(0.0, sd_deg)))
    angles[~left] *= -1.0
    angles[mid] = 0.0
    return angles


def styled(displacement: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``displacement`` (68, 2) with each landmark's vector turned by ``angles`` (68,):
    the same amplitude, another direction."""
    c, s = np.cos(angles), np.sin(angles)
    dx, dy = displacement[:, 0], displacement[:, 1]
    return np.stack([c * dx - s * dy, s * dx + c * dy], axis=1)
