"""Simulated identities: landmark-aligned morphs of two or more pool faces.

Every pool face is already similarity-aligned to the same template (:mod:`.sources`).
An identity takes the weighted mean of its sources' landmarks as its face shape, warps
each source onto that shape (thin-plate spline), and blends them inside the face (jaw
line up to the forehead). Hair, ears, neck and clothes come from the *primary* source
(largest weight), warped to the same shape, so the head stays plausible; the face itself
is no real person's. A per-identity mirror flip adds variety.

With ``neutral`` set, the face shape is first neutralised (:mod:`.neutral`: lips closed,
smile taken out, raised brows lowered), so every source is warped straight onto a neutral
face; around the mouth only the sources whose lips were closed are blended (the
``mouth_weights``), since a warp cannot close an open smile over its teeth.

Coordinates are ``(x, y)`` template pixels, float32.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from merlib.synth.au import MIRROR
from merlib.synth.neutral import mouth_region, neutral_shape
from merlib.synth.warp import border_anchors, landmark_warp
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
    source_flips : tuple of bool
        Mirror each source before blending (so all sources turn the same way).
    flip : bool
        Mirror the result left-right.
    neutral : bool, default=False
        Neutralise the face shape (:func:`merlib.synth.neutral.neutral_shape`).
    mouth_weights : tuple of float, default=()
        Blend weights around the mouth (sum 1, same order; 0 for an open-mouthed
        source); empty: ``weights``.
    """

    key: str
    faces: tuple[str, ...]
    weights: tuple[float, ...]
    source_flips: tuple[bool, ...]
    flip: bool
    neutral: bool = False
    mouth_weights: tuple[float, ...] = ()


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


#: Least clarity (dlib's detection score of the photograph) of a face an ordinary identity
#: uses. In the pinned pool two faces fall below besides the two blurred ones: a
#: half-shadowed face (0.33) and a turned one (0.39); in strongly expressive frames their
#: morphs were the ones dlib lost.
MIN_CLARITY = 0.5


def choose_sources(face_ids: Sequence[str], yaws: Sequence[float], keys: Sequence[str],
                   rng: np.random.Generator, n_faces: tuple[int, int] = (2, 3),
                   max_yaw_gap: float = 0.25, *, neutral: bool = False,
                   closed_mouth: Sequence[bool] | None = None,
                   clarity: Sequence[float] | None = None,
                   expressiveness: Sequence[float] | None = None,
                   apart: Collection[str] = ()) -> list[IdentitySpec]:
    """Assign source faces to each identity key, spreading use and avoiding repeats.

    Parameters
    ----------
    face_ids : sequence of str
        Pool face ids (sorted; the order is part of the determinism).
    yaws : sequence of float
        Signed head turn of each face (:func:`merlib.synth.sources.yaw_offset`).
        Faces turned to the image right are mirrored, so all sources of an identity
        look the same way, and only faces whose turns differ by at most
        ``max_yaw_gap`` are blended (else the blend shows two noses).
    keys : sequence of str
        Identity keys, in a fixed order.
    rng : numpy Generator
    n_faces : (int, int)
        Inclusive range of sources per identity.
    neutral : bool, default=False
        Neutralise every identity's face (:attr:`IdentitySpec.neutral`).
    closed_mouth : sequence of bool, optional
        Whether each face's lips are closed (:func:`merlib.synth.neutral.mouth_is_open`
        is False); None: all are. With ``neutral``, every identity gets at least one
        closed-mouthed source, and only those blend around the mouth.
    clarity : sequence of float, optional
        How clearly each face shows (:func:`merlib.synth.sources.clarity`: dlib's
        detection score of its photograph, 0 for a blurred one); None: all alike.
        Identities not ``apart`` (the macro subjects, whose expressions are large) leave
        out faces below :data:`MIN_CLARITY`: dlib loses such heads under strong
        expressions.
    expressiveness : sequence of float, optional
        How far each face is from neutral (:func:`merlib.synth.neutral.expressiveness`);
        None: all alike. Among faces that led and were used equally often, the nearest
        to neutral leads first: the neutralising warp then changes it least.
    apart : collection of str
        Keys whose identities should share as few source faces as possible among
        themselves (the micro-expression subjects, each left out in turn by
        leave-one-subject-out).

    Returns
    -------
    list of IdentitySpec
        One per key, same order. Each identity's primary (largest weight, whose hair
        and head are kept) is the face that led the fewest identities so far
        (closed-mouthed with ``neutral``); the other sources are the least-used similar
        faces (random tie-break). Combinations are distinct while the pool allows it.
        An ``apart`` identity takes the fewest sources (``n_faces[0]``); its primary is
        a face no other ``apart`` identity has led (while the pool has one, open mouth
        or not), and each further source is the one that makes the fewest new pairs of
        ``apart`` identities sharing a face.

    Raises
    ------
    ValueError
        Too few faces, yaws of the wrong length, or ``neutral`` with no closed mouth.
    """
    ids = list(face_ids)
    n = len(ids)
    turn = np.abs(np.asarray(yaws, np.float64))
    if n < n_faces[1] or len(turn) != n:
        raise ValueError(f"need at least {n_faces[1]} pool faces with a yaw each; "
                         f"got {n} ids and {len(turn)} yaws")
    closed = np.ones(n, bool) if closed_mouth is None else np.asarray(closed_mouth, bool)
    if len(closed) != n:
        raise ValueError(f"closed_mouth needs one value per face ({n}); got {len(closed)}")
    if neutral and not closed.any():
        raise ValueError("neutral identities need at least one closed-mouthed pool face")
    need_closed = closed if neutral else np.ones(n, bool)
    clear = np.full(n, np.inf) if clarity is None else np.asarray(clarity, np.float64)
    expressive = np.zeros(n) if expressiveness is None else np.asarray(expressiveness,
                                                                        np.float64)
    if len(clear) != n or len(expressive) != n:
        raise ValueError(f"clarity and expressiveness need one value per face ({n}); got "
                         f"{len(clear)} and {len(expressive)}")
    # Faces an ordinary identity may use (all of them if too few are clear).
    usable = clear >= MIN_CLARITY
    if usable.sum() < n_faces[1] + 1 or not (usable & need_closed).any():
        usable = np.ones(n, bool)
    apart = frozenset(apart)
    used = np.zeros(n, np.int64)
    led = np.zeros(n, np.int64)  # times a face was the primary (gives the head)
    apart_used = np.zeros(n, np.int64)
    apart_led = np.zeros(n, np.int64)
    apart_sets: list[frozenset[int]] = []
    seen: set[frozenset[int]] = set()
    specs = []
    for key in keys:
        sep = key in apart
        k = n_faces[0] if sep else int(rng.integers(n_faces[0], n_faces[1] + 1))
        for attempt in range(50):
            tie = rng.random(n)
            if sep:
                first = min(range(n), key=lambda i: (apart_led[i], apart_used[i], led[i],
                                                      used[i], expressive[i], tie[i]))
            else:
                # A closed-mouthed primary: the mouth then comes from the face that also
                # gives the head (apart identities need every face as a primary).
                first = int(min(np.flatnonzero(usable),
                                key=lambda i: (not need_closed[i], led[i], used[i],
                                               expressive[i], tie[i])))
            allowed = range(n) if sep else np.flatnonzero(usable)
            gap = np.abs(turn - turn[first])
            # Repeated combinations admit less similar faces on later attempts.
            limit = max_yaw_gap + 0.05 * attempt
            near = [int(i) for i in allowed if i != first and gap[i] <= limit]
            if len(near) < k - 1:  # too few similar faces: take the closest ones
                near = sorted((int(i) for i in allowed if i != first),
                              key=lambda i: gap[i])[:k + 1]
            if not need_closed[first] and not need_closed[near].any():
                # An open-mouthed primary needs a closed-mouthed partner for the mouth.
                near.append(min((i for i in range(n) if need_closed[i]), key=lambda i: gap[i]))
            if sep:
                pick = _pick_apart(first, near, k, need_closed, apart_sets, apart_used,
                                   used, gap, tie, seen)
            else:
                near.sort(key=lambda i: (used[i], tie[i]))
                # A repeated combination widens the choice on the next attempt.
                window = near[:max(k + 2, 2 * k) + attempt]
                pick = _pick_spread(first, window, near, k, need_closed, gap, seen, rng)
            if frozenset(pick) not in seen:
                break
        seen.add(frozenset(pick))
        used[pick] += 1
        led[first] += 1
        if sep:
            apart_used[pick] += 1
            apart_led[first] += 1
            apart_sets.append(frozenset(pick))
        jitter = rng.uniform(-0.2, 0.2, size=k)
        # The first pick is the primary: it gets the largest weight.
        w = np.sort((1.0 + jitter) / (1.0 + jitter).sum())[::-1]
        mouth: tuple[float, ...] = ()
        if neutral and not need_closed[pick].all():
            m = w * need_closed[pick]
            mouth = tuple(round(float(v), 6) for v in m / m.sum())
        specs.append(IdentitySpec(
            key=key, faces=tuple(ids[i] for i in pick),
            weights=tuple(round(float(v), 6) for v in w),
            source_flips=tuple(bool(yaws[i] > 0) for i in pick),
            flip=bool(rng.random() < 0.5),
            neutral=neutral, mouth_weights=mouth,
        ))
    return specs


def _fresh(pick: list[int], cands: list[int], k: int,
           seen: set[frozenset[int]]) -> list[int]:
    """``cands`` that do not complete a combination already taken (when one slot is left)."""
    if len(pick) < k - 1:
        return cands
    return [i for i in cands if frozenset(pick + [i]) not in seen]


def _pick_spread(first: int, window: list[int], near: list[int], k: int,
                 closed: np.ndarray, gap: np.ndarray, seen: set[frozenset[int]],
                 rng: np.random.Generator) -> list[int]:
    """Sources of an ordinary identity: random faces of ``window`` (the least used of
    the similar faces ``near``); an open-mouthed primary's first partner is
    closed-mouthed; the last pick avoids combinations already taken."""
    pick = [first]
    if not closed[first]:
        others = [i for i in range(len(closed)) if i != first and closed[i]]
        partners = (_fresh(pick, [i for i in window if closed[i]], k, seen)
                    or _fresh(pick, [i for i in near if closed[i]], k, seen)
                    or sorted(_fresh(pick, others, k, seen), key=lambda i: gap[i])[:1]
                    or [i for i in near if closed[i]])
        pick.append(int(rng.choice(partners)))
    rest = [i for i in window if i not in pick]
    if k - len(pick) > 1:
        pick += [int(i) for i in rng.choice(rest, size=k - len(pick) - 1, replace=False)]
        rest = [i for i in rest if i not in pick]
    if len(pick) < k:
        pick.append(int(rng.choice(_fresh(pick, rest, k, seen) or rest)))
    return pick


def _pick_apart(first: int, near: list[int], k: int, closed: np.ndarray,
                apart_sets: list[frozenset[int]], apart_used: np.ndarray, used: np.ndarray,
                gap: np.ndarray, tie: np.ndarray,
                seen: set[frozenset[int]]) -> list[int]:
    """Sources of an ``apart`` identity: greedily, the face that adds the fewest
    identities sharing a face with this one, then the least used, then the one turned
    most like the primary (``gap``: the blend shows the fewest double contours); an
    open-mouthed primary's first partner is closed-mouthed; no combination already
    taken."""
    pick = [first]
    for _ in range(k - 1):
        cands = [i for i in near if i not in pick]
        if not closed[pick].any():
            cands = [i for i in cands if closed[i]] or cands
        cands = _fresh(pick, cands, k, seen) or cands
        sharing = {j for j, s in enumerate(apart_sets) if not s.isdisjoint(pick)}

        def cost(i: int) -> tuple:
            new = sum(1 for j, s in enumerate(apart_sets) if i in s and j not in sharing)
            return new, apart_used[i], used[i], gap[i], tie[i]

        pick.append(min(cands, key=cost))
    return pick


def mirror(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image left-right with its landmarks (re-indexed, so 36-41 stay the
    image-left eye). Returns ``(image, points)``; points float32 (68, 2)."""
    w = image.shape[1]
    flipped = np.ascontiguousarray(image[:, ::-1])
    pts = np.asarray(points, np.float32)[MIRROR].copy()
    pts[:, 0] = (w - 1) - pts[:, 0]
    return flipped, pts


def _face_mask(points: np.ndarray, shape: tuple[int, int], iod: float) -> np.ndarray:
    """Soft mask of the face: jaw line and brows raised to the forehead, float32 (H, W)."""
    jaw = points[0:17]
    brows = points[17:27].copy()
    brows[:, 1] -= 0.3 * iod  # the forehead above the brows belongs to the face too
    hull = cv2.convexHull(np.vstack([jaw, brows]).astype(np.float32)).astype(np.int32)
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA)
    # Shrink a little, then feather across the jaw line so the seam spreads out.
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, int(0.04 * iod)))
    sigma = 0.08 * iod
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def head_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Soft head-and-shoulders region around a face, float32 (H, W) in [0, 1].

    An ellipse around the head (semi-axes 1.65 x 2.2 inter-ocular distances, centred a little
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

    head = ellipse(eyes[0], eyes[1] + 0.4 * iod, 1.65 * iod, 2.2 * iod)
    shoulders = ellipse(chin[0], chin[1] + 1.5 * iod, 2.4 * iod, 1.4 * iod)
    # Fade out before the template's edges, so no straight crop border shows; slowly at
    # the bottom, where the shoulders run out of the template.
    ex = np.clip(np.minimum(xs, w - 1 - xs) / (0.25 * iod), 0.0, 1.0)
    ey = np.minimum(np.clip(ys / (0.25 * iod), 0.0, 1.0),
                    np.clip((h - 1 - ys) / (0.9 * iod), 0.0, 1.0))
    fade = ex * ey
    return (np.maximum(head, shoulders) * fade * fade * (3.0 - 2.0 * fade)).astype(np.float32)


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
    h, wd = images[0].shape[:2]
    sources = [mirror(img, p) if f else (img, p)
               for img, p, f in zip(images, landmarks, spec.source_flips)]
    images = [img for img, _ in sources]
    pts = [np.asarray(p, np.float64) for _, p in sources]
    shape = sum(wi * p for wi, p in zip(w, pts))
    if spec.neutral:
        shape = neutral_shape(shape)
    anchors = border_anchors(wd, h, per_side=5, margin=0.25 * max(wd, h))
    warped = [landmark_warp(img, p, shape, anchors).astype(np.float32)
              for img, p in zip(images, pts)]
    iod = inter_ocular(shape)
    face = _face_mask(shape, (h, wd), iod)
    blend = sum(wi * im for wi, im in zip(w, warped))
    mouth_w = np.asarray(spec.mouth_weights or spec.weights, np.float64)
    if not np.allclose(mouth_w, w):
        region = mouth_region(shape, (h, wd))
        mouth = sum(wi * im for wi, im in zip(mouth_w, warped) if wi > 0)
        # Match the mouth sources' skin to the whole blend's on a ring around the
        # region, so the patch shows no edge; the lips inside keep their own colour.
        ring = np.clip(cv2.GaussianBlur(region, (0, 0), 0.1 * iod) - region, 0.0, 1.0) * face
        mouth = _match_colour(mouth, blend, ring)
        blend = region[..., None] * mouth + (1.0 - region[..., None]) * blend
    # Recolour the primary's head (hair, neck, clothes) to the blend's skin tone: the
    # seam at the jaw line fades, and the head does not pull the face towards the
    # primary's own look.
    head = _match_colour(warped[0], blend, face)
    out = face[..., None] * blend + (1.0 - face[..., None]) * head
    # Most sources were enlarged onto the template and averaging softens further: a
    # mild unsharp mask restores some edge contrast.
    out = out + 0.6 * (out - cv2.GaussianBlur(out, (0, 0), 2.0))
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    points = shape.astype(np.float32)
    if spec.flip:
        image, points = mirror(image, points)
    return Identity(spec=spec, image=image, landmarks=points,
                    mask=head_mask(points, (h, wd)))
