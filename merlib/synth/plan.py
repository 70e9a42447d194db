"""What SynthME contains: subjects, clips, labels, expressions and frame numbers.

Everything here is decided before any pixel is rendered, from the seed alone: each
random choice draws from a generator keyed by the seed and a stable text key
(``dataset/subject/sample`` and the purpose), never from iteration order or time, so a
plan (and the data rendered from it) is the same on every run and for any number of
worker processes.

Micro subjects are picked from the packaged MEGC2019 composite list and get exactly
their listed samples, names and labels, plus one non-3-class clip per CASME II / SAMM
subject. Macro subjects get one sequence per emotion (CK+ also one unlabelled one).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from merlib.data import jaffe
from merlib.data.composite import load_composite_list
from merlib.data.frames import middle_frame
from merlib.data.labels import emotion_to_label
from merlib.data.layouts import ClipRecord
from merlib.synth.au import Expression, real_combination, sample_expression, styled, subject_style
from merlib.synth.morph import IdentitySpec, choose_sources
from merlib.synth.render import CAMERAS

#: Subjects per micro dataset in the composite: the split of ``micro_subjects``.
MICRO_SHARES: dict[str, int] = {"casme2": 24, "samm": 28, "smic": 16}
#: Most subjects a macro dataset can have (the real datasets' counts; JAFFE's 10 posers).
MACRO_CAPS: dict[str, int] = {"ckplus": 123, "oulu": 80, "jaffe": 10, "mug": 86}

#: Owners' emotion -> expression recipe (:data:`merlib.synth.au.RECIPES`).
_KIND: dict[str, dict[str | None, str]] = {
    "casme2": {"happiness": "positive", "surprise": "surprise", "disgust": "disgust",
               "repression": "repression", "others": "others"},
    "samm": {"Happiness": "positive", "Surprise": "surprise", "Anger": "anger",
             "Contempt": "contempt", "Disgust": "disgust", "Fear": "fear",
             "Sadness": "sadness", "Other": "others"},
    "smic": {"positive": "positive", "negative": "negative", "surprise": "surprise"},
    "ckplus": {"anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
               "happy": "positive", "sadness": "sadness", "surprise": "surprise"},
    "oulu": {"Anger": "anger", "Disgust": "disgust", "Fear": "fear",
             "Happiness": "positive", "Sadness": "sadness", "Surprise": "surprise"},
    "jaffe": {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "positive",
              "NE": "neutral", "SA": "sadness", "SU": "surprise"},
    "mug": {"anger": "anger", "disgust": "disgust", "fear": "fear", "happiness": "positive",
            "neutral": "neutral", "sadness": "sadness", "surprise": "surprise"},
}
#: Owners' negative emotions a 3-class "negative" sample may be written as.
_NEGATIVE_NAMES: dict[str, tuple[str, ...]] = {
    "casme2": ("disgust", "repression"),
    "samm": ("Anger", "Contempt", "Disgust", "Fear", "Sadness"),
    "smic": ("negative",),
}
_POSITIVE_NAMES = {"casme2": "happiness", "samm": "Happiness", "smic": "positive"}
_SURPRISE_NAMES = {"casme2": "surprise", "samm": "Surprise", "smic": "surprise"}
_OTHER_NAMES = {"casme2": "others", "samm": "Other"}


@dataclass(frozen=True)
class ClipPlan:
    """One clip (or still) to render.

    Attributes
    ----------
    dataset : str
    record : ClipRecord
        Canonical names, owners' emotion, frame numbers and coded frames.
    label : str or None
        3-class label the readers will derive (None: outside the three classes).
    expression : Expression
        Apex landmark displacement (IOD units) and how it was drawn.
    intensities : tuple of float
        Expression intensity per frame of ``record.frames``, 0 to 1.
    onset_frame, apex_frame, offset_frame : int or None
        The truth: first frame, the frame of intensity 1 (as the readers locate it),
        last frame; None for JAFFE stills.
    identity : str
        Identity key ``<dataset>/<subject>``.
    """

    dataset: str
    record: ClipRecord
    label: str | None
    expression: Expression
    intensities: tuple[float, ...]
    onset_frame: int | None
    apex_frame: int | None
    offset_frame: int | None
    identity: str


@dataclass(frozen=True)
class Plan:
    """The whole dataset: identities and clips, in a fixed order."""

    identities: tuple[IdentitySpec, ...]
    clips: tuple[ClipPlan, ...]


def key_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator keyed by the seed and a stable text key (order-independent use)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    words = np.frombuffer(digest, dtype="<u4").tolist()
    return np.random.default_rng([int(seed), *words])


def split_counts(total: int, shares: dict[str, int],
                 caps: dict[str, int] | None = None) -> dict[str, int]:
    """Split ``total`` in proportion to ``shares`` (largest remainder), at least 1 each,
    at most ``caps``; the surplus of a capped entry goes to the others."""
    names = list(shares)
    caps = caps or {}
    limit = {n: caps.get(n, total) for n in names}
    if total < len(names) or total > sum(limit.values()):
        raise ValueError(f"cannot split {total} over {names} (1 each, caps {caps})")
    counts = {n: 1 for n in names}
    while sum(counts.values()) < total:
        open_ = [n for n in names if counts[n] < limit[n]]
        weight = sum(shares[n] for n in open_)
        target = sum(counts.values()) + 1
        # Give the next unit to the entry furthest below its proportional share.
        n = max(open_, key=lambda m: (shares[m] * target / weight - counts[m], -names.index(m)))
        counts[n] += 1
    return counts


def _micro_curve(n: int, apex: int) -> tuple[float, ...]:
    """Raised cosine 0 -> 1 at ``apex`` -> 0 at the last frame."""
    out = []
    for i in range(n):
        if i <= apex:
            x = i / apex if apex else 1.0
        else:
            x = 1.0 - (i - apex) / (n - 1 - apex)
        out.append(0.5 - 0.5 * np.cos(np.pi * x))
    return tuple(round(float(v), 6) for v in out)


def _onset_to_peak(n: int, plateau: int = 3) -> tuple[float, ...]:
    """Neutral first frame rising smoothly to 1, held for the last ``plateau`` frames."""
    rise = max(n - plateau, 1)
    return tuple(round(float(0.5 - 0.5 * np.cos(np.pi * min(i / rise, 1.0))), 6)
                 for i in range(n))


def _neutral_peak_neutral(n: int, half_plateau: int = 3) -> tuple[float, ...]:
    """0 at both ends, 1 on the middle ``2 * half_plateau + 1`` frames."""
    mid = (n - 1) // 2
    lo, hi = mid - half_plateau, mid + half_plateau
    out = []
    for i in range(n):
        if i < lo:
            x = i / lo
        elif i > hi:
            x = (n - 1 - i) / (n - 1 - hi)
        else:
            x = 1.0
        out.append(0.5 - 0.5 * np.cos(np.pi * x))
    return tuple(round(float(v), 6) for v in out)


def _micro_frames(dataset: str, rng: np.random.Generator) -> tuple[tuple[int, ...], int]:
    """Frame numbers of a micro clip and the index of its apex."""
    lo, hi = CAMERAS[dataset].frames
    n = int(rng.integers(lo, hi + 1))
    if dataset == "smic":
        n |= 1  # odd: the middle frame (the readers' apex) is unambiguous
        start = int(rng.integers(1000, 60000))
        frames = tuple(range(start, start + n))
        return frames, frames.index(middle_frame(list(frames)))
    if dataset == "casme2" and rng.random() < 0.4:
        # Straddle 99 -> 100 so that only numeric sorting keeps the frames in order.
        start = int(rng.integers(101 - n + 2, 99))
    elif dataset == "casme2":
        start = int(rng.integers(1, 300))
    else:
        start = int(rng.integers(1000, 9000))
    apex = int(rng.integers(int(0.3 * n), int(0.6 * n) + 1))
    return tuple(range(start, start + n)), apex


def _extra_name(dataset: str, subject: str, taken: set[str], rng: np.random.Generator) -> str:
    """A clip name in the owners' style that no composite sample uses."""
    for _ in range(1000):
        if dataset == "casme2":
            name = f"EP{int(rng.integers(1, 20)):02d}_{int(rng.integers(1, 20)):02d}"
        else:
            name = f"{subject}_{int(rng.integers(1, 8))}_{int(rng.integers(1, 16))}"
        if name not in taken:
            return name
    raise RuntimeError(f"no free clip name for {dataset} {subject}")


def _micro_emotion(dataset: str, label: str, rng: np.random.Generator) -> str:
    if label == "positive":
        return _POSITIVE_NAMES[dataset]
    if label == "surprise":
        return _SURPRISE_NAMES[dataset]
    names = _NEGATIVE_NAMES[dataset]
    return names[int(rng.integers(len(names)))]


def _in_subject_style(cfg, expr: Expression, dataset: str, subject: str) -> Expression:
    """``expr`` as this subject moves (``cfg.au_style_deg``): one style per subject, drawn
    from its own stream, so every clip of the subject turns the same way."""
    if cfg.au_style_deg <= 0 or not expr.aus:
        return expr
    angles = subject_style(cfg.au_style_deg, key_rng(cfg.seed, "style", dataset, subject))
    return replace(expr, displacement=styled(expr.displacement, angles))


def _apex_positions(cfg, dataset: str, key: tuple[str, ...], n: int, apex_i: int) -> tuple[int, int]:
    """(the apex a reader is given, the true apex), as indices into the clip's frames.

    Without ``cfg.apex_error`` both are ``apex_i``. With it, an offset drawn from
    N(0, apex_error x onset-to-apex) separates them: a coder's apex in the CASME II and
    SAMM sheets, or, for SMIC (whose readers take the middle frame, ``apex_i``), a true
    apex off the middle. Its own stream: the rest of the clip is drawn as before.
    """
    if cfg.apex_error <= 0 or n < 3:
        return apex_i, apex_i
    offset = int(np.rint(key_rng(cfg.seed, "apex_error", *key).normal(0.0, cfg.apex_error) * apex_i))
    moved = int(np.clip(apex_i + offset, 1, n - 1))
    return (apex_i, moved) if dataset == "smic" else (moved, apex_i)


def _micro_clip(cfg, dataset: str, subject: str, sample: str, emotion: str,
                label: str | None) -> ClipPlan:
    seed = cfg.seed
    key = (dataset, subject, sample)
    frames, apex_i = _micro_frames(dataset, key_rng(seed, "frames", *key))
    lo, hi = cfg.micro_amplitude_iod
    scale = cfg.amplitude_scale
    # The options of later generator versions draw from streams of their own, so that a
    # root without them plans the same clips as before they existed.
    if cfg.weak_fraction > 0:
        weak = key_rng(seed, "weak", *key)
        if weak.random() < cfg.weak_fraction:
            scale *= float(weak.uniform(0.3, 0.6))
    aus = None
    if cfg.au_statistics == "real" and label is not None:
        aus = real_combination(label, key_rng(seed, "aus", *key))
    expr = sample_expression(_KIND[dataset][emotion], (lo * scale, hi * scale),
                             key_rng(seed, "expression", *key), aus=aus)
    expr = _in_subject_style(cfg, expr, dataset, subject)
    given_i, true_i = _apex_positions(cfg, dataset, key, len(frames), apex_i)
    if dataset == "smic":
        rec = ClipRecord(subject, sample, emotion, frames, part="HS")
    else:
        rec = ClipRecord(subject, sample, emotion, frames, onset=frames[0],
                         apex=frames[given_i], offset=frames[-1],
                         action_units=expr.au_code(),
                         part="raw" if dataset == "casme2" else "")
    return ClipPlan(dataset, rec, label, expr, _micro_curve(len(frames), true_i),
                    frames[0], frames[true_i], frames[-1], f"{dataset}/{subject}")


def _plan_micro(cfg) -> list[ClipPlan]:
    listed = load_composite_list()
    counts = split_counts(cfg.micro_subjects, MICRO_SHARES)
    clips = []
    for dataset, k in counts.items():
        rows = listed[listed["dataset"] == dataset]
        subjects = sorted(set(rows["subject"].tolist()))
        picked = key_rng(cfg.seed, "subjects", dataset).choice(subjects, k, replace=False)
        chosen = sorted(str(s) for s in picked)
        taken = set(rows["sample"].tolist())
        for subject in chosen:
            mine = rows[rows["subject"] == subject]
            for sample, label in zip(mine["sample"].tolist(), mine["label"].tolist()):
                emotion = _micro_emotion(dataset, label,
                                         key_rng(cfg.seed, "emotion", dataset, subject, sample))
                clips.append(_micro_clip(cfg, dataset, subject, sample, emotion, label))
            if dataset in _OTHER_NAMES:
                name = _extra_name(dataset, subject, taken,
                                   key_rng(cfg.seed, "extra", dataset, subject))
                taken.add(name)
                clips.append(_micro_clip(cfg, dataset, subject, name, _OTHER_NAMES[dataset],
                                         None))
    return clips


def _macro_subjects(cfg, dataset: str, k: int) -> list[str]:
    rng = key_rng(cfg.seed, "subjects", dataset)
    if dataset == "jaffe":
        return sorted(str(p) for p in rng.choice(list(jaffe.POSERS), k, replace=False))
    pool = {"ckplus": ("S{:03d}", range(5, 1000)), "oulu": ("P{:03d}", range(1, 81)),
            "mug": ("{:03d}", range(1, 87))}[dataset]
    numbers = sorted(rng.choice(np.asarray(pool[1]), k, replace=False).tolist())
    return [pool[0].format(int(n)) for n in numbers]


def _macro_clip(cfg, dataset: str, subject: str, sample: str, emotion: str | None,
                kind: str, frames: tuple[int, ...], curve: tuple[float, ...],
                part: str = "") -> ClipPlan:
    lo, hi = cfg.macro_amplitude_iod
    expr = sample_expression(kind, (lo * cfg.amplitude_scale, hi * cfg.amplitude_scale),
                             key_rng(cfg.seed, "expression", dataset, subject, sample))
    expr = _in_subject_style(cfg, expr, dataset, subject)
    rec = ClipRecord(subject, sample, emotion, frames, part=part)
    name = jaffe.CODES.get(emotion or "", emotion) if dataset == "jaffe" else emotion
    label = emotion_to_label(name, dataset)
    if dataset == "jaffe":
        onset = apex = offset = None
    elif dataset == "mug":
        onset, apex, offset = frames[0], middle_frame(list(frames)), frames[-1]
    else:
        onset, apex, offset = frames[0], frames[-1], frames[-1]
    return ClipPlan(dataset, rec, label, expr, curve, onset, apex, offset,
                    f"{dataset}/{subject}")


def _plan_macro(cfg) -> list[ClipPlan]:
    counts = split_counts(cfg.macro_subjects, {d: 1 for d in MACRO_CAPS}, MACRO_CAPS)
    clips: list[ClipPlan] = []
    for dataset, k in counts.items():
        lo, hi = CAMERAS[dataset].frames
        image_id = 0
        for subject in _macro_subjects(cfg, dataset, k):
            rng = key_rng(cfg.seed, "sequences", dataset, subject)
            if dataset == "ckplus":
                emotions: list[str | None] = list(_KIND["ckplus"]) + [None]
                order = rng.permutation(len(emotions))
                for seq, i in enumerate(order, start=1):
                    emotion = emotions[int(i)]
                    kind = (_KIND["ckplus"][emotion] if emotion is not None
                            else str(rng.choice(["others", "positive", "negative"])))
                    n = int(rng.integers(lo, hi + 1))
                    clips.append(_macro_clip(cfg, dataset, subject, f"{subject}_{seq:03d}",
                                             emotion, kind, tuple(range(1, n + 1)),
                                             _onset_to_peak(n)))
            elif dataset == "oulu":
                for emotion, kind in _KIND["oulu"].items():
                    n = int(rng.integers(lo, hi + 1))
                    clips.append(_macro_clip(cfg, dataset, subject, f"{subject}_{emotion}",
                                             emotion, kind, tuple(range(n)),
                                             _onset_to_peak(n), part="VL_Strong"))
            elif dataset == "jaffe":
                for code, kind in _KIND["jaffe"].items():
                    for take in range(1, int(rng.integers(2, 4)) + 1):
                        image_id += 1
                        clips.append(_macro_clip(cfg, dataset, subject,
                                                 f"{subject}.{code}{take}.{image_id}", code,
                                                 kind, (1,), (1.0,)))
            else:  # mug
                for emotion, kind in _KIND["mug"].items():
                    n = int(rng.integers(lo, hi + 1)) | 1
                    clips.append(_macro_clip(cfg, dataset, subject,
                                             f"{subject}_{emotion}_take000", emotion, kind,
                                             tuple(range(n)), _neutral_peak_neutral(n)))
    return clips


def make_plan(cfg, face_ids: Sequence[str], yaws: Sequence[float],
              closed_mouth: Sequence[bool] | None = None,
              clarity: Sequence[float] | None = None,
              expressiveness: Sequence[float] | None = None) -> Plan:
    """Plan the dataset for a validated :class:`merlib.synth.SynthConfig`.

    Parameters
    ----------
    cfg : SynthConfig
    face_ids, yaws : sequences
        The pool's face ids (sorted) and their signed head turns.
    closed_mouth : sequence of bool, optional
        Whether each face's lips are closed (None: all are); used when
        ``cfg.neutral_faces``.
    clarity : sequence of float, optional
        How clearly each face shows (:func:`merlib.synth.sources.clarity`; None: all
        alike).
    expressiveness : sequence of float, optional
        How far each face is from neutral (:func:`merlib.synth.neutral.expressiveness`;
        None: all alike); used when ``cfg.neutral_faces``.

    Returns
    -------
    Plan
        Identities in clip order of first appearance; clips grouped by dataset (in
        :data:`merlib.data.schema.DATASETS` order) and subject.
    """
    clips = _plan_micro(cfg) + _plan_macro(cfg)
    keys = list(dict.fromkeys(c.identity for c in clips))
    micro = {c.identity for c in clips if c.dataset in MICRO_SHARES}
    specs = choose_sources(face_ids, yaws, keys, key_rng(cfg.seed, "identities"),
                           n_faces=cfg.faces_per_identity, neutral=cfg.neutral_faces,
                           closed_mouth=closed_mouth, clarity=clarity,
                           expressiveness=expressiveness if cfg.neutral_faces else None,
                           apart=micro if cfg.distinct_sources else ())
    return Plan(identities=tuple(specs), clips=tuple(clips))
