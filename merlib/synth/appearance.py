"""What an action unit does to the skin: wrinkles, furrows, bulges and shading.

A landmark warp (:mod:`.au`) moves the features of a face but leaves its skin as it was:
a brow lowers without the glabella furrowing, a smile spreads without the nasolabial fold
deepening. Real action units change the skin's appearance too, and a texture descriptor,
or a network looking at one apex frame, keys on exactly that. This module draws those
changes procedurally, anchored to the identity's landmarks in template coordinates, so
the expression's warp carries them along with the skin (:func:`merlib.synth.render.render_clip`
multiplies the template's colour by ``1 + intensity * shading`` before warping each
frame).

Each action unit contributes *creases* (thin dark lines with a lighter ridge beside them)
and *bulges* (soft highlights, with a soft shadow below), as the FACS manual describes the
appearance changes of each AU (Ekman, Friesen & Hager 2002, *Facial Action Coding System:
the manual*, "appearance changes" of each action unit; summarised for the AUs used here):

====  ======================================  =============================================
AU    FACS appearance change                  drawn as
====  ======================================  =============================================
1     horizontal wrinkles, centre forehead    3 arched creases above the inner brows
2     horizontal wrinkles, lateral forehead   3 creases above each outer brow
4     vertical furrows between the brows,     2 vertical creases at the glabella, a short
      bulge and shadow over the inner brows   horizontal one at the nose root, a shadow
                                              under the brows, a bulge above the inner brows
5     upper lid retracted, more eye shown     highlight between brow and upper lid
6     crow's feet, cheeks raised, infra-      3 rays from the outer eye corner, a crease
      orbital furrow                          under the lower lid, a highlight on the cheek
7     lower lid tensed and bulging            a crease under the lower lid, highlight above
9     wrinkles across the nose bridge,        3 short horizontal creases on the bridge, the
      nasolabial furrow deepened              upper nasolabial fold
10    nasolabial furrow deepened              the nasolabial fold, a highlight on the upper
                                              lip
12    nasolabial furrow deepened, cheek       a longer, curved nasolabial fold, a cheek
      bulge                                   highlight beside it
14    dimple beside the lip corner            a short crease lateral to the corner
15    lip corners pulled down, chin skin      a crease from each corner downwards
      bulges below them
17    chin boss pushed up, wrinkled           the mentolabial furrow deepened, a stippled
      (orange-peel) chin                      chin
20    lips stretched sideways                 short creases lateral to the corners
23    lips tightened, vertical lip lines      short vertical creases above and below lips
24    lips pressed, bulges above and below    highlights above and below the lips
25/26 lips parted, jaw dropped                the mouth's inside darkens as it opens
====  ======================================  =============================================

MiE-X (Liu et al. 2021, arXiv 2112.01730) synthesises micro-expressions from AUs with
appearance and is the closest prior work; it learns the appearance from macro-expression
images, which a pretrained face generator would need and this offline project does not
have. The shapes here are hand-set, like the AU displacement tables: their relative
sizes matter, their absolute contrast is one calibrated number (``strength``).

How strong: at the apex, a crease darkens the skin by ``DEPTH[au]`` times ``strength``
times the subject's skin factor (age, skin: drawn per subject in [0.6, 1.4]) times the
expression's amplitude relative to a macro-expression's (:data:`REFERENCE_AMPLITUDE_IOD`),
times the AU's weight in the expression. A micro-expression moving landmarks by 0.03 IOD
thus creases the skin a fifth as deeply as a posed macro-expression.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from merlib.synth.au import MIRROR, UNILATERAL, Expression

__all__ = ["APPEARANCE_MODES", "DEPTH", "REFERENCE_AMPLITUDE_IOD", "shading_map", "skin_factor"]

#: ``SynthConfig.appearance`` choices: the warp alone (the generator before appearance)
#: or the FACS appearance changes drawn here.
APPEARANCE_MODES: tuple[str, ...] = ("none", "facs")

#: A posed macro-expression's apex amplitude, IOD units: appearance changes reach
#: ``DEPTH`` there (times ``strength``).
REFERENCE_AMPLITUDE_IOD = 0.15

#: Relative darkening of an AU's creases at the reference amplitude, before ``strength``.
DEPTH: dict[int, float] = {1: 0.22, 2: 0.22, 4: 0.28, 5: 0.10, 6: 0.24, 7: 0.20, 9: 0.26,
                           10: 0.22, 12: 0.26, 14: 0.22, 15: 0.20, 17: 0.22, 20: 0.16,
                           23: 0.18, 24: 0.14, 25: 0.45, 26: 0.45}


class _Canvas:
    """Dark (``crease``) and light (``bulge``) strokes on a template-sized map."""

    def __init__(self, shape: tuple[int, int], iod: float) -> None:
        self.shape = shape
        self.iod = iod
        self.dark = np.zeros(shape, np.float32)
        self.light = np.zeros(shape, np.float32)

    def _px(self, pts: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(pts, np.float64) * 16).astype(np.int32)  # 4 fractional bits

    def crease(self, pts: np.ndarray, weight: float = 1.0, width: float = 0.018) -> None:
        """A thin dark line through ``pts`` (k, 2), ``width`` in IOD; a ridge beside it."""
        w = max(1, int(round(width * self.iod)))
        cv2.polylines(self.dark, [self._px(pts)], False, float(weight), w, cv2.LINE_AA, shift=4)

    def bulge(self, centre: np.ndarray, radius: tuple[float, float], weight: float = 1.0,
              angle_deg: float = 0.0) -> None:
        """A soft highlight: an ellipse of ``radius`` (IOD units) around ``centre``."""
        axes = (max(1, int(round(radius[0] * self.iod))), max(1, int(round(radius[1] * self.iod))))
        c = tuple(int(v) for v in self._px(centre))
        cv2.ellipse(self.light, c, (axes[0] * 16, axes[1] * 16), angle_deg, 0, 360, float(weight), -1,
                    cv2.LINE_AA, shift=4)

    def shadow(self, pts: np.ndarray, weight: float = 1.0, width: float = 0.08) -> None:
        """A broad soft shadow along ``pts`` (a brow's overhang, a bulge's underside)."""
        w = max(1, int(round(width * self.iod)))
        cv2.polylines(self.dark, [self._px(pts)], False, float(weight) * 0.35, w, cv2.LINE_AA, shift=4)

    def shading(self) -> np.ndarray:
        """Relative modulation: negative where darker, positive where lighter."""
        s = 0.012 * self.iod
        dark = cv2.GaussianBlur(self.dark, (0, 0), s)
        # A crease's lips catch the light: a faint, wider halo around each line.
        halo = cv2.GaussianBlur(self.dark, (0, 0), 3 * s) - dark
        light = cv2.GaussianBlur(self.light, (0, 0), 4 * s)
        return (-dark + 0.25 * np.clip(halo, 0, None) + 0.35 * light).astype(np.float32)


class _Face:
    """Landmark geometry of one template face: points, the eye axis, IOD units."""

    def __init__(self, landmarks: np.ndarray) -> None:
        self.p = np.asarray(landmarks, np.float64)
        left, right = self.p[36:42].mean(0), self.p[42:48].mean(0)
        self.iod = float(np.linalg.norm(right - left))
        self.ex = (right - left) / self.iod            # towards the image-right eye
        self.ey = np.array([-self.ex[1], self.ex[0]])  # down the face
        self.mid = 0.5 * (left + right)
        self.hand = 1.0  # -1 on a mirrored half: "left of travel" flips with the mirror

    def at(self, base: np.ndarray, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        """``base`` moved by (dx, dy) IOD along the face's own axes."""
        return np.asarray(base, np.float64) + self.iod * (dx * self.ex + dy * self.ey)

    def curve(self, a: np.ndarray, b: np.ndarray, bow: float, n: int = 12) -> np.ndarray:
        """A quadratic arc from ``a`` to ``b``, its middle pushed ``bow`` IOD to the left of
        the direction of travel (negative: right)."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        d = b - a
        normal = np.array([d[1], -d[0]]) / max(np.linalg.norm(d), 1e-9)
        ctrl = 0.5 * (a + b) + 2 * bow * self.hand * self.iod * normal
        t = np.linspace(0, 1, n)[:, None]
        return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t ** 2 * b


def _side(f: _Face, side: int) -> tuple[_Face, int]:
    """The face as seen with its image-right half mirrored onto the image-left (side -1)."""
    if side > 0:
        return f, 1
    mirrored = f.p[MIRROR].copy()
    g = _Face(f.p)  # geometry kept: callers index ``mirrored`` points and flip their ex offsets
    g.p = mirrored
    g.ex = -f.ex
    g.hand = -1.0
    return g, -1


# --- one drawing per AU, on the image-left half (the caller mirrors it) ---------------
def _au1(c: _Canvas, f: _Face) -> None:
    inner = 0.5 * (f.p[21] + f.p[22])
    for k in range(3):
        y = -(0.22 + 0.13 * k)
        a, b = f.at(inner, -0.42 + 0.04 * k, y + 0.04), f.at(inner, 0.0, y)
        c.crease(f.curve(a, b, 0.015), 0.9 - 0.15 * k)


def _au2(c: _Canvas, f: _Face) -> None:
    for k in range(3):
        a, b = f.at(f.p[17], 0.05, -(0.20 + 0.12 * k)), f.at(f.p[20], 0.0, -(0.24 + 0.12 * k))
        c.crease(f.curve(a, b, 0.02), 0.9 - 0.15 * k)


def _au4(c: _Canvas, f: _Face) -> None:
    inner = 0.5 * (f.p[21] + f.p[22])
    c.crease(np.array([f.at(inner, -0.07, -0.12), f.at(inner, -0.06, 0.16)]), 1.0)
    c.crease(np.array([f.at(f.p[27], -0.08, -0.02), f.at(f.p[27], 0.0, 0.0)]), 0.6)
    c.shadow(np.array([f.at(f.p[i], 0.0, 0.07) for i in range(17, 22)]), 1.0)
    c.bulge(f.at(f.p[20], 0.05, -0.08), (0.16, 0.06), 0.8)


def _au5(c: _Canvas, f: _Face) -> None:
    c.bulge(0.5 * (f.p[19] + f.p[37]), (0.16, 0.05), 0.8)


def _au6(c: _Canvas, f: _Face) -> None:
    corner = f.p[36]
    for angle in (-30.0, 0.0, 28.0):
        r = np.deg2rad(angle)
        direction = -np.cos(r) * f.ex + np.sin(r) * f.ey  # outwards from the eye
        start = corner + f.iod * 0.07 * direction
        c.crease(np.array([start, start + f.iod * 0.22 * direction]), 0.8)
    c.crease(f.curve(f.at(f.p[39], 0.0, 0.16), f.at(f.p[36], -0.02, 0.14), -0.02), 0.8)
    c.bulge(f.at(0.5 * (f.p[40] + f.p[41]), -0.05, 0.38), (0.2, 0.12), 1.0)


def _au7(c: _Canvas, f: _Face) -> None:
    lid = [f.at(f.p[i], 0.0, 0.08) for i in (39, 40, 41, 36)]
    c.crease(np.array(lid), 0.9)
    c.bulge(f.at(0.5 * (f.p[40] + f.p[41]), 0.0, 0.04), (0.14, 0.03), 0.8)


def _nasolabial(c: _Canvas, f: _Face, reach: float, bow: float, weight: float) -> None:
    start = f.at(f.p[31], -0.08, -0.02)
    end = f.at(f.p[48], -0.10, reach)
    c.crease(f.curve(start, end, bow, 16), weight, 0.025)


def _au9(c: _Canvas, f: _Face) -> None:
    for k, i in enumerate((28, 29, 28)):
        y = 0.06 * (k - 1) if i == 28 else 0.0
        c.crease(np.array([f.at(f.p[i], -0.12, y), f.at(f.p[i], 0.0, y - 0.01)]), 0.7)
    _nasolabial(c, f, 0.02, -0.03, 0.6)


def _au10(c: _Canvas, f: _Face) -> None:
    _nasolabial(c, f, 0.05, -0.035, 1.0)
    c.bulge(f.at(f.p[50], 0.0, -0.05), (0.1, 0.04), 0.6)


def _au12(c: _Canvas, f: _Face) -> None:
    _nasolabial(c, f, 0.18, -0.06, 1.0)
    c.bulge(f.at(f.p[48], -0.28, -0.30), (0.2, 0.13), 1.0)


def _au14(c: _Canvas, f: _Face) -> None:
    c.crease(np.array([f.at(f.p[48], -0.07, -0.05), f.at(f.p[48], -0.08, 0.05)]), 1.0, 0.025)


def _au15(c: _Canvas, f: _Face) -> None:
    c.crease(f.curve(f.at(f.p[48], -0.02, 0.04), f.at(f.p[48], -0.06, 0.28), -0.02), 0.9)
    c.bulge(f.at(f.p[59], -0.05, 0.12), (0.08, 0.06), 0.6)


def _au17(c: _Canvas, f: _Face, rng: np.random.Generator) -> None:
    c.crease(f.curve(f.at(f.p[58], -0.05, 0.12), f.at(f.p[57], 0.0, 0.14), 0.01), 1.0, 0.03)
    c.bulge(f.at(f.p[8], 0.0, -0.12), (0.15, 0.08), 0.8)
    # Orange-peel stipple over the chin boss: small dark dots.
    for _ in range(14):
        dot = f.at(f.p[8], float(rng.uniform(-0.14, 0.0)), float(rng.uniform(-0.2, -0.05)))
        c.crease(np.array([dot, f.at(dot, 0.006, 0.0)]), 0.5, 0.015)


def _au20(c: _Canvas, f: _Face) -> None:
    c.crease(np.array([f.at(f.p[48], -0.06, 0.0), f.at(f.p[48], -0.2, 0.02)]), 0.8)


def _au23(c: _Canvas, f: _Face) -> None:
    for dx in (-0.12, -0.05):
        c.crease(np.array([f.at(f.p[51], dx, -0.09), f.at(f.p[51], dx, -0.03)]), 0.6, 0.012)
        c.crease(np.array([f.at(f.p[57], dx, 0.03), f.at(f.p[57], dx, 0.09)]), 0.6, 0.012)


def _au24(c: _Canvas, f: _Face) -> None:
    c.bulge(f.at(f.p[50], 0.0, -0.06), (0.12, 0.035), 0.8)
    c.bulge(f.at(f.p[58], 0.0, 0.06), (0.12, 0.035), 0.8)


def _mouth_inside(c: _Canvas, f: _Face) -> None:
    # The neutral lips meet along the inner lip line; as the warp opens them, the few
    # template pixels between them are stretched over the gap: darkening them draws the
    # inside of the mouth.
    line = f.p[[60, 61, 62, 63, 64]] * 0.5 + f.p[[60, 67, 66, 65, 64]] * 0.5
    c.crease(line, 1.0, 0.02)


_DRAW: dict[int, Callable] = {1: _au1, 2: _au2, 4: _au4, 5: _au5, 6: _au6, 7: _au7, 9: _au9,
                              10: _au10, 12: _au12, 14: _au14, 15: _au15, 17: _au17, 20: _au20,
                              23: _au23, 24: _au24}
#: AUs drawn once for the whole face, not per half.
_MIDLINE_DRAW: dict[int, Callable] = {25: _mouth_inside, 26: _mouth_inside}


def skin_factor(rng: np.random.Generator) -> float:
    """A subject's depth of creases relative to the average (age, skin): [0.6, 1.4]."""
    return float(rng.uniform(0.6, 1.4))


def shading_map(shape: tuple[int, int], landmarks: np.ndarray, expression: Expression,
                strength: float, skin: float, rng: np.random.Generator) -> np.ndarray | None:
    """The apex appearance change of ``expression`` on a template face.

    Parameters
    ----------
    shape : (int, int)
        Template image height and width.
    landmarks : ndarray of shape (68, 2)
        The template's neutral landmarks, ``(x, y)`` pixels.
    expression : Expression
        Its AUs, weights, side (unilateral AUs), asymmetry and amplitude.
    strength : float
        Global contrast (``SynthConfig.appearance_strength``): 1 draws :data:`DEPTH`.
    skin : float
        The subject's :func:`skin_factor`.
    rng : numpy Generator
        Per-sample detail (the chin's stipple).

    Returns
    -------
    ndarray of shape (H, W), float32, or None
        Relative change of the skin's brightness at the apex (multiply the colour by
        ``1 + intensity * map``); None when the expression moves nothing.
    """
    if not expression.aus or strength <= 0:
        return None
    face = _Face(landmarks)
    scale = strength * skin * expression.amplitude_iod / REFERENCE_AMPLITUDE_IOD
    total = np.zeros(shape, np.float32)
    for au, weight in zip(expression.aus, expression.weights):
        if au not in _DRAW and au not in _MIDLINE_DRAW:
            continue
        canvas = _Canvas(shape, face.iod)
        if au in _MIDLINE_DRAW:
            _MIDLINE_DRAW[au](canvas, face)
            halves = [(1.0, canvas)]
        else:
            halves = []
            sides = (expression.side,) if au in UNILATERAL else (1, -1)
            for side in sides:
                half, s = _side(face, side)
                part = _Canvas(shape, face.iod)
                draw = _DRAW[au]
                if au == 17:
                    draw(part, half, rng)
                else:
                    draw(part, half)
                # The expression's left/right asymmetry scales each half as it scales the warp.
                halves.append((1.0 + expression.asymmetry * s, part))
        for factor, part in halves:
            total += (DEPTH[au] * weight * factor) * part.shading()
    return (total * scale).astype(np.float32)
