"""Simulated identities: landmark-aligned morphs of two or more pool faces.

Every pool face is already similarity-aligned to the same template (:mod:`.sources`).
An identity takes the weighted mean of its sources' landmarks as its face shape, warps
each source onto that shape (thin-plate spline), and blends them inside the face (jaw
line up to the forehead). Hair, ears, neck and clothes come from the *primary* source
(largest weight), warped to the same shape, so the head stays plausible; the face itself
is no real person's. A per-identity mirror flip adds variety.

Coordinates are ``(x, y)`` template pixels, float32.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from merlib.data.synth.au import MIRROR
from merlib.data.synth.warp import border_anchors, landmark_warp
from merlib.faces.landmarks import LEFT_EYE, RIGHT_EYE, inter_ocular


@dataclass(frozen=True)
class IdentitySpec:
    """Which pool faces make a subject, and how.

    Attributes
    ----------
    key : str
        ``<dataset>/<subject>``.
    faces : tuple of str
        Pool face ids, primary (largest weight) first.
    weights : tuple of float
        Blend weights, sum 1, same order.
    flip : bool
        Mirror the result left-right.
    """

    key: str
    faces: tuple[str, ...]
    weights: tuple[float, ...]
    flip: bool


@dataclass(frozen=True)
class Identity:
    """A rendered identity in template coordinates.

    Attributes
    ----------
    spec : IdentitySpec
    image : ndarray of shape (H, W, 3), uint8 BGR
    landmarks : ndarray of shape (68, 2), float32
        ``(x, y)``, iBUG order (36-41 stay the image-left eye after a flip).
    mask : ndarray of shape (H, W), float32
        Head-and-shoulders opacity in [0, 1]; the camera puts its own background
        where it is 0 (source photos show other people and scenery there).
    """

    spec: IdentitySpec
    image: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray

    @property
    def iod(self) -> float:
        """Inter-ocular distance, template pixels."""
        return inter_ocular(self.landmarks)


def choose_sources(face_ids: Sequence[str], keys: Sequence[str], rng: np.random.Generator,
                   n_faces: tuple[int, int] = (2, 3)) -> list[IdentitySpec]:
    """Assign source faces to each identity key, spreading use and avoiding repeats.

    Parameters
    ----------
    face_ids : sequence of str
        Pool face ids (sorted; the order is part of the determinism).
    keys : sequence of str
        Identity keys, in a fixed order.
    rng : numpy Generator
    n_faces : (int, int)
        Inclusive range of sources per identity.

    Returns
    -------
    list of IdentitySpec
        One per key, same order. Combinations are distinct while the pool allows it;
        the least-used faces are preferred (random tie-break).
    """
    ids = list(face_ids)
    if len(ids) < n_faces[1]:
        raise ValueError(f"need at least {n_faces[1]} pool faces, got {len(ids)}")
    used = {f: 0 for f in ids}
    seen: set[frozenset[str]] = set()
    specs = []
    for key in keys:
        k = int(rng.integers(n_faces[0], n_faces[1] + 1))
        for _ in range(50):
            tie = rng.random(len(ids))
            order = sorted(range(len(ids)), key=lambda i: (used[ids[i]], tie[i]))
            # Take from the least-used few at random, not strictly the k least used, so
            # that the same faces do not keep pairing with each other.
            window = order[:max(k + 3, 2 * k)]
            pick = [ids[i] for i in rng.choice(window, size=k, replace=False)]
            if frozenset(pick) not in seen:
                break
        seen.add(frozenset(pick))
        for f in pick:
            used[f] += 1
        jitter = rng.uniform(-0.2, 0.2, size=k)
        w = (1.0 + jitter) / (1.0 + jitter).sum()
        order_w = np.argsort(-w, kind="stable")
        specs.append(IdentitySpec(
            key=key, faces=tuple(pick[i] for i in order_w),
            weights=tuple(round(float(w[i]), 6) for i in order_w),
            flip=bool(rng.random() < 0.5),
        ))
    return specs


def _face_mask(points: np.ndarray, shape: tuple[int, int], iod: float) -> np.ndarray:
    """Soft mask of the face: jaw line and brows raised to the forehead, float32 (H, W)."""
    jaw = points[0:17]
    brows = points[17:27].copy()
    brows[:, 1] -= 0.45 * iod  # the forehead above the brows belongs to the face too
    hull = cv2.convexHull(np.vstack([jaw, brows]).astype(np.float32)).astype(np.int32)
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA)
    # Shrink a little, then feather across the jaw line so the seam spreads out.
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, int(0.04 * iod)))
    sigma = 0.08 * iod
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def head_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Soft head-and-shoulders region around a face, float32 (H, W) in [0, 1].

    An ellipse around the head (1.45 x 2.0 inter-ocular distances, centred a little
    below the eyes) joined with a wider one for neck and shoulders.
    """
    iod = inter_ocular(points)
    eyes = 0.5 * (points[LEFT_EYE].mean(0) + points[RIGHT_EYE].mean(0))
    chin = points[8]
    h, w = shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
        r = np.sqrt(((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2)
        t = np.clip((1.0 - r) / 0.18, 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)  # smoothstep: no visible edge

    head = ellipse(eyes[0], eyes[1] + 0.45 * iod, 1.45 * iod, 2.0 * iod)
    shoulders = ellipse(chin[0], chin[1] + 1.7 * iod, 2.3 * iod, 1.3 * iod)
    return np.maximum(head, shoulders).astype(np.float32)


def _match_colour(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift/scale ``src``'s channels to ``ref``'s mean and spread inside ``mask``."""
    wgt = mask[..., None]
    total = float(mask.sum()) + 1e-6
    mu_s = (src * wgt).sum((0, 1)) / total
    mu_r = (ref * wgt).sum((0, 1)) / total
    sd_s = np.sqrt((((src - mu_s) ** 2) * wgt).sum((0, 1)) / total) + 1e-3
    sd_r = np.sqrt((((ref - mu_r) ** 2) * wgt).sum((0, 1)) / total) + 1e-3
    return (src - mu_s) * (sd_r / sd_s) + mu_r


def morph_identity(spec: IdentitySpec, images: Sequence[np.ndarray],
                   landmarks: Sequence[np.ndarray]) -> Identity:
    """Build an identity from its source crops.

    Parameters
    ----------
    spec : IdentitySpec
    images : sequence of ndarray of shape (H, W, 3), uint8
        Aligned crops of ``spec.faces``, same order.
    landmarks : sequence of ndarray of shape (68, 2)
        Their landmarks, template pixels.

    Returns
    -------
    Identity
    """
    w = np.asarray(spec.weights, np.float64)
    pts = [np.asarray(p, np.float64) for p in landmarks]
    shape = sum(wi * p for wi, p in zip(w, pts))
    h, wd = images[0].shape[:2]
    anchors = border_anchors(wd, h, per_side=5, margin=0.25 * max(wd, h))
    warped = [landmark_warp(img, p, shape, anchors).astype(np.float32)
              for img, p in zip(images, pts)]
    iod = inter_ocular(shape)
    face = _face_mask(shape, (h, wd), iod)
    blend = sum(wi * im for wi, im in zip(w, warped))
    # Keep the primary's overall skin tone so the seam to its hair and neck is mild.
    blend = _match_colour(blend, warped[0], face)
    out = face[..., None] * blend + (1.0 - face[..., None]) * warped[0]
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    points = shape.astype(np.float32)
    if spec.flip:
        image = np.ascontiguousarray(image[:, ::-1])
        points = points[MIRROR].copy()
        points[:, 0] = (wd - 1) - points[:, 0]
    return Identity(spec=spec, image=image, landmarks=points,
                    mask=head_mask(points, (h, wd)))
