"""SynthME: the simulated default dataset, written in the owners' exact layouts.

The real micro- and macro-expression datasets are licensed, so the default run of merlib
uses this generated stand-in. Its subjects are morphs of real photographs fetched from
package registries (:mod:`.sources`, :mod:`.morph`), so no subject is a real person; its
expressions are landmark warps along action-unit directions (:mod:`.au`, :mod:`.warp`),
filmed by a per-dataset camera (:mod:`.render`). Subjects, sample names and labels follow
the MEGC2019 composite list (:mod:`.plan`), and the files go where the owners put theirs
(:mod:`merlib.data.layouts`), so the same readers load real and simulated data.

Every subject's face is neutralised before expressions are applied (:mod:`.neutral`;
most pool photographs smile), and the micro-expression subjects share as few source
faces as the pool allows (:func:`.morph.choose_sources`); both are options of
:class:`SynthConfig`, on by default.

Besides the dataset folders, the root holds ``SYNTHME.json`` (marks the root as
simulated: seed, configuration, counts, face-pool digest, each subject's source faces
and blend weights), ``SYNTHME_truth.csv``
(one row per sample: label, action units, apex amplitude, source faces, coded frames)
and ``SYNTHME_composite.csv`` (the MEGC2019 composite samples the root simulates: the
expected list of :func:`merlib.data.composite.megc2019_composite` for this root). The
readers ignore all three.

Example
-------
>>> from merlib.synth import SynthConfig, generate
>>> root = generate("data/synthme", SynthConfig(seed=0))          # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from merlib.data.simulated import COMPOSITE, COMPOSITE_COLUMNS, MARKER, TRUTH, TRUTH_COLUMNS
from merlib.errors import MerlibError

__all__ = ["SynthConfig", "SynthConfigError", "generate", "render_samples", "config_of_record", "realism_of",
           "generator_settings",
           "REALISM_FIELDS", "REALISM_PRESETS", "REALISTIC_RECORD", "MARKER", "TRUTH", "TRUTH_COLUMNS",
           "COMPOSITE", "COMPOSITE_COLUMNS"]


#: Options added to make SynthME as hard as the real composite; their defaults are the
#: generator before them.
REALISM_FIELDS: tuple[str, ...] = ("appearance", "appearance_strength", "au_statistics", "au_style_deg",
                                   "head_motion_iod", "blink_rate", "weak_fraction", "flicker", "apex_error")


#: Named generator settings (:meth:`SynthConfig.preset`, ``merlib synth --realism``).
#: ``none``: the warp-only generator as it was before calibration (the field defaults).
#: ``realistic``: the development-root setting chosen by ``bench/calibrate_synthme.py``
#: alone (the method under test played no part), ``bench/records/`` :data:`REALISTIC_RECORD`:
#: on a root of the real composite's size both published references, LBP-TOP and Bi-WOOF,
#: score within 0.05 of their real values (the data chapter shows every setting tried).
REALISTIC_RECORD: str = "calibration-dev-s7-v11.json"
REALISM_PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "realistic": {"appearance": "facs", "appearance_strength": 5.0, "au_statistics": "real",
                  "au_style_deg": 45.0, "head_motion_iod": 0.005, "blink_rate": 0.2, "weak_fraction": 0.3,
                  "flicker": 0.005, "apex_error": 0.3, "micro_amplitude_iod": (0.015, 0.035)},
}


def config_of_record(record: dict) -> "SynthConfig":
    """The :class:`SynthConfig` a root's ``SYNTHME.json`` record was generated with
    (``faces_dir`` left at its default; lists back to tuples)."""
    names = {f.name for f in fields(SynthConfig)} - {"faces_dir"}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items() if k in names}
    return SynthConfig(**kwargs).validate()


def realism_of(record: dict) -> dict:
    """The :data:`REALISM_FIELDS` of a root's ``SYNTHME.json`` record, an absent one at its
    default (the generator before it): what a study root must share with the data root
    it extends."""
    defaults = {f.name: f.default for f in fields(SynthConfig) if f.name in REALISM_FIELDS}
    return {k: record.get(k, v) for k, v in defaults.items()}


#: Settings a study root generated beside a data root takes from it besides the realism
#: options: the amplitude ranges (a calibrated root's differ from the defaults).
AMPLITUDE_FIELDS: tuple[str, ...] = ("micro_amplitude_iod", "macro_amplitude_iod")


def generator_settings(record: dict) -> dict:
    """What a study root must share with the data root it extends: :func:`realism_of`
    and the amplitude ranges (:data:`AMPLITUDE_FIELDS`, as tuples; an absent one at its
    default)."""
    defaults = {f.name: f.default for f in fields(SynthConfig) if f.name in AMPLITUDE_FIELDS}
    ranges = {k: tuple(record.get(k, v)) for k, v in defaults.items()}
    return {**realism_of(record), **ranges}


class SynthConfigError(MerlibError, ValueError):
    """A SynthME parameter is out of range (names the parameter and the value)."""


class SynthOutputError(MerlibError, FileExistsError):
    """The output folder cannot be used (names it)."""


@dataclass(frozen=True)
class SynthConfig:
    """What to simulate.

    Attributes
    ----------
    seed : int, default=0
        Everything random derives from it (and from stable per-sample keys).
    micro_subjects : int, default=24
        Micro-expression subjects, 3..68, split over CASME II / SAMM / SMIC like the
        composite's 24 / 28 / 16 (at least one each), picked from the composite list.
    macro_subjects : int, default=16
        Macro-expression subjects, 4..200, split evenly over CK+ / Oulu-CASIA / JAFFE /
        MUG (JAFFE at most 10: its real posers).
    amplitude_scale : float, default=1.0
        Multiplies every expression amplitude, (0, 5].
    faces_dir : Path or None, default=None
        Face pool folder (``merlib faces``); None: ``$MERLIB_FACES_DIR`` or
        ``~/.cache/merlib/faces``. Fetched there if missing.
    micro_amplitude_iod : (float, float), default=(0.02, 0.04)
        Range of the apex amplitude (largest landmark displacement) of micro clips, in
        inter-ocular distances, before ``amplitude_scale``.
    macro_amplitude_iod : (float, float), default=(0.10, 0.20)
        The same for macro clips.
    faces_per_identity : (int, int), default=(2, 3)
        Inclusive range of pool faces blended into one subject.
    neutral_faces : bool, default=True
        Neutralise every subject's face before expressions are applied (lips closed,
        smile and raised brows taken out; around the mouth only closed-lipped sources
        are blended): the pool's photographs mostly smile. See :mod:`.neutral`.
    distinct_sources : bool, default=True
        Micro-expression subjects share as few source faces as the pool allows: each
        takes the fewest (``faces_per_identity[0]``), a primary face no other micro
        subject has (while the pool has one), and partners that add the fewest sharing
        pairs. Leave-one-subject-out then leaks less appearance between subjects
        (measured by :func:`merlib.studies.overlap.source_overlap`).
    appearance : {"none", "facs"}, default="none"
        ``"facs"``: each action unit also changes the skin (wrinkles, furrows, bulges,
        the mouth's inside; :mod:`.appearance`), driven by the same intensity curve as
        the warp. ``"none"``: the warp alone, the generator as it was before.
    appearance_strength : float, default=1.0
        Contrast of the appearance changes, [0, 5] (1: :data:`.appearance.DEPTH` at a
        macro-expression's amplitude).
    au_statistics : {"recipes", "real"}, default="recipes"
        How a micro-expression sample of the three classes picks its AUs. ``"real"``:
        as the real composite's samples do (:func:`.au.real_combination`: mostly one or
        two AUs, overlapping classes). ``"recipes"``: from :data:`.au.RECIPES`, richer
        prototypes (the generator as it was before).
    au_style_deg : float, default=0.0
        How differently each subject's face carries out the same action unit, [0, 45]:
        the standard deviation, in degrees, of a per-subject rotation of the landmark
        displacements of each face region (:func:`.au.subject_style`). Real faces move
        the same AU in directions that differ with their morphology; 0: every subject
        moves exactly as :data:`.au.AU_FIELDS` (the generator as it was before).
    head_motion_iod : float, default=0.0
        Rigid head motion within a clip, [0, 0.2]: the spread of the head's displacement
        over a clip, IOD units (:func:`.render.sample_nuisance`). 0: only the camera's
        slow drift.
    blink_rate : float, default=0.0
        Share of clips with one eye blink, [0, 1].
    weak_fraction : float, default=0.0
        Share of micro clips whose expression is weak, [0, 1]: their amplitude range is
        multiplied by a factor drawn from [0.3, 0.6].
    flicker : float, default=0.0
        Lighting flicker, [0, 0.1]: the standard deviation of a brightness gain drawn for
        every frame, on top of the camera's own (:data:`.render.CAMERAS`). Lights filmed
        at 100-200 fps flicker; optical flow, which assumes constant brightness, suffers
        from it more than texture does.
    apex_error : float, default=0.0
        How far the apex a reader is given lies from the true one, [0, 1]: the standard
        deviation of the offset as a fraction of the onset-to-apex time. CASME II and SAMM
        sheets then carry a coder's apex, off the truth by that much; SMIC, which
        annotates none (its readers take the middle frame), gets its true apex off the
        middle by the same spread. The truth file keeps the true apex. 0: every given
        apex is the true one (the generator as it was before).
    """

    seed: int = 0
    micro_subjects: int = 24
    macro_subjects: int = 16
    amplitude_scale: float = 1.0
    faces_dir: Path | None = None
    micro_amplitude_iod: tuple[float, float] = (0.02, 0.04)
    macro_amplitude_iod: tuple[float, float] = (0.10, 0.20)
    faces_per_identity: tuple[int, int] = (2, 3)
    neutral_faces: bool = True
    distinct_sources: bool = True
    appearance: str = "none"
    appearance_strength: float = 1.0
    au_statistics: str = "recipes"
    au_style_deg: float = 0.0
    head_motion_iod: float = 0.0
    blink_rate: float = 0.0
    weak_fraction: float = 0.0
    flicker: float = 0.0
    apex_error: float = 0.0

    def validate(self) -> SynthConfig:
        """Raise :class:`SynthConfigError` on the first bad field; return ``self``."""
        def bad(name: str, expected: str) -> SynthConfigError:
            return SynthConfigError(f"{name} must be {expected}; got {getattr(self, name)!r}")

        def is_int(v: object) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.seed) or self.seed < 0:
            raise bad("seed", "a non-negative integer")
        if not is_int(self.micro_subjects) or not 3 <= self.micro_subjects <= 68:
            raise bad("micro_subjects", "an integer in 3..68")
        if not is_int(self.macro_subjects) or not 4 <= self.macro_subjects <= 200:
            raise bad("macro_subjects", "an integer in 4..200")
        if (isinstance(self.amplitude_scale, bool)
                or not isinstance(self.amplitude_scale, (int, float))
                or not 0.0 < float(self.amplitude_scale) <= 5.0):
            raise bad("amplitude_scale", "a number in (0, 5]")
        for name in ("micro_amplitude_iod", "macro_amplitude_iod"):
            lo_hi = getattr(self, name)
            if (len(lo_hi) != 2 or not all(isinstance(v, (int, float)) for v in lo_hi)
                    or not 0.0 < lo_hi[0] <= lo_hi[1] <= 1.0):
                raise bad(name, "(low, high) with 0 < low <= high <= 1")
        n = self.faces_per_identity
        if len(n) != 2 or not all(is_int(v) for v in n) or not 2 <= n[0] <= n[1] <= 5:
            raise bad("faces_per_identity", "(low, high) integers with 2 <= low <= high <= 5")
        for name in ("neutral_faces", "distinct_sources"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "True or False")
        if self.appearance not in ("none", "facs"):
            raise bad("appearance", "'none' or 'facs'")
        if self.au_statistics not in ("recipes", "real"):
            raise bad("au_statistics", "'recipes' or 'real'")
        for name, hi in (("appearance_strength", 5.0), ("au_style_deg", 45.0), ("head_motion_iod", 0.2),
                         ("blink_rate", 1.0),
                         ("weak_fraction", 1.0), ("flicker", 0.1),
                         ("apex_error", 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= hi:
                raise bad(name, f"a number in [0, {hi:g}]")
        return self

    @classmethod
    def preset(cls, name: str, **fields_: Any) -> SynthConfig:
        """A configuration of :data:`REALISM_PRESETS` ``name``, any field overridden by
        ``fields_``; validated.

        Raises
        ------
        SynthConfigError
            ``name`` is no preset, or a field is out of range.
        """
        if name not in REALISM_PRESETS:
            raise SynthConfigError(f"realism must be one of {sorted(REALISM_PRESETS)}; got {name!r}")
        return cls(**{**REALISM_PRESETS[name], **fields_}).validate()

    def look(self) -> tuple[str, float, float, float, float]:
        """What the renderer needs besides the plan: appearance, its strength, head
        motion, blink rate and flicker."""
        return (self.appearance, float(self.appearance_strength), float(self.head_motion_iod),
                float(self.blink_rate), float(self.flicker))

    def record(self) -> dict:
        """The fields for ``SYNTHME.json``. ``faces_dir`` is left out: it is a
        machine-specific path, and the pool digest identifies the faces instead. The
        realism options (:data:`REALISM_FIELDS`) are recorded only when they differ from
        the generator before them, so such a root's files, marker included, are the same
        bytes as before and keep their data fingerprint."""
        out = {}
        for f in fields(self):
            if f.name == "faces_dir":
                continue
            if f.name in REALISM_FIELDS and getattr(self, f.name) == f.default:
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


def _dataset_folders() -> dict[str, str]:
    from merlib.data.index import DATASET_FOLDERS

    return dict(DATASET_FOLDERS)


def _check_output(out: Path) -> list[Path]:
    """What must be removed before writing to ``out`` (a previous SynthME root's
    entries); raise if ``out`` is unusable. Touches nothing."""
    if out.exists() and not out.is_dir():
        raise SynthOutputError(f"output {out} exists and is not a folder")
    if not out.exists():
        return []
    entries = sorted(out.iterdir())
    if not entries:
        return []
    try:
        simulated = json.loads((out / MARKER).read_text()).get("simulated") is True
    except (OSError, ValueError, AttributeError):
        simulated = False
    if not simulated:
        raise SynthOutputError(
            f"refusing to write into {out}: the folder is not empty and is not a previous "
            f"SynthME root (no {MARKER}); choose an empty or new folder"
        )
    ours = set(_dataset_folders().values()) | {MARKER, TRUTH, COMPOSITE}
    foreign = [p.name for p in entries if p.name not in ours]
    if foreign:
        raise SynthOutputError(
            f"refusing to overwrite SynthME root {out}: it also holds {foreign}; "
            f"move them or choose another folder"
        )
    return entries


def _clear(entries: list[Path]) -> None:
    for path in entries:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


@lru_cache(maxsize=2)
def _pool(root: str):
    from merlib.synth.sources import load_pool

    return load_pool(root)


def _closed_mouths(pool) -> list[bool]:
    """Whether each pool face's lips are closed (pool order)."""
    from merlib.synth.neutral import mouth_is_open

    return [not mouth_is_open(pool.image(f), f.landmarks) for f in pool.faces]


@lru_cache(maxsize=4)
def _identity(pool_root: str, spec):
    from merlib.synth.morph import morph_identity

    pool = _pool(pool_root)
    faces = {f.id: f for f in pool.faces}
    return morph_identity(spec, [pool.image(faces[i]) for i in spec.faces],
                          [faces[i].landmarks for i in spec.faces])


def _render_one(identity, clip, seed: int, look: tuple[str, float, float, float, float], skin: float) -> list:
    """The frames of one planned clip, as :func:`generate` writes them."""
    import numpy as np

    from merlib.synth.appearance import shading_map
    from merlib.synth.plan import key_rng
    from merlib.synth.render import CAMERAS, render_clip, sample_nuisance

    appearance, strength, head_motion, blink_rate, flicker = look
    rec = clip.record
    key = (clip.dataset, rec.subject, rec.sample)
    # Appearance and nuisances draw from streams of their own: without them, a clip
    # renders the same bytes as before they existed.
    shading = (shading_map(identity.image.shape[:2], identity.landmarks, clip.expression, strength,
                           skin, key_rng(seed, "appearance", *key))
               if appearance == "facs" else None)
    nuisance = (sample_nuisance(len(rec.frames), identity.iod, head_motion, blink_rate,
                                key_rng(seed, "nuisance", *key), flicker=flicker)
                if len(rec.frames) > 1 else None)
    return render_clip(identity, CAMERAS[clip.dataset], clip.expression.displacement,
                       np.asarray(clip.intensities), key_rng(seed, "render", *key), shading=shading,
                       nuisance=nuisance)


def _render_clips(pool_root: str, out: str, seed: int, spec, clips,
                  look: tuple[str, float, float, float, float] = ("none", 1.0, 0.0, 0.0, 0.0)) -> int:
    """Worker: render and write clips of one identity -> number of frames written.

    Each clip draws from its own keyed generator, so the bytes do not depend on which
    worker renders it or in which order.
    """
    import cv2

    from merlib.data.layouts import frame_path
    from merlib.synth.appearance import skin_factor
    from merlib.synth.plan import key_rng

    identity = _identity(pool_root, spec)
    skin = skin_factor(key_rng(seed, "skin", spec.key))
    written = 0
    for clip in clips:
        rec = clip.record
        images = _render_one(identity, clip, seed, look, skin)
        for number, image in zip(rec.frames, images):
            path = frame_path(clip.dataset, Path(out), rec, number)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), image):
                raise MerlibError(f"cannot write frame {path}")
            written += 1
    return written


def render_samples(cfg: SynthConfig, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple]:
    """Render a few clips of the root ``cfg`` would generate, without writing a root.

    Parameters
    ----------
    cfg : SynthConfig
    keys : list of (dataset, subject, sample)
        Samples of ``cfg``'s plan (e.g. rows of its ``SYNTHME_composite.csv``).

    Returns
    -------
    dict
        key -> (frames, clip plan): the same frames :func:`generate` writes for that
        sample (uint8, BGR or grey), and its :class:`~merlib.synth.plan.ClipPlan` (truth:
        onset, apex, AUs, amplitude).

    Raises
    ------
    SynthConfigError
        A key that ``cfg`` does not plan.
    """
    from merlib.synth.appearance import skin_factor
    from merlib.synth.neutral import expressiveness
    from merlib.synth.plan import key_rng, make_plan
    from merlib.synth.sources import clarity, fetch_faces

    cfg = cfg.validate()
    pool = fetch_faces(cfg.faces_dir)
    closed = _closed_mouths(pool) if cfg.neutral_faces else None
    plan = make_plan(cfg, [f.id for f in pool.faces], [f.yaw for f in pool.faces], closed,
                     [clarity(f) for f in pool.faces], [expressiveness(f.landmarks) for f in pool.faces])
    clips = {(c.dataset, c.record.subject, c.record.sample): c for c in plan.clips}
    specs = {s.key: s for s in plan.identities}
    out = {}
    for key in keys:
        if tuple(key) not in clips:
            raise SynthConfigError(f"keys: {key} is not a sample of this configuration's plan")
        clip = clips[tuple(key)]
        spec = specs[clip.identity]
        identity = _identity(str(pool.root), spec)
        frames = _render_one(identity, clip, cfg.seed, cfg.look(), skin_factor(key_rng(cfg.seed, "skin", spec.key)))
        out[tuple(key)] = (frames, clip)
    return out


def _jobs(plan, max_frames: int = 160) -> list[tuple]:
    """``(identity spec, clips)`` chunks of at most ~``max_frames`` frames, in plan order
    (consecutive chunks share an identity, so a worker's cached morph is reused)."""
    specs = {s.key: s for s in plan.identities}
    jobs: list[tuple] = []
    for clip in plan.clips:
        spec = specs[clip.identity]
        if jobs and jobs[-1][0] is spec and sum(len(c.record.frames) for c in jobs[-1][1]) \
                + len(clip.record.frames) <= max_frames:
            jobs[-1][1].append(clip)
        else:
            jobs.append((spec, [clip]))
    return jobs


def _counts(plan) -> dict:
    counts: dict[str, dict] = {}
    for clip in plan.clips:
        c = counts.setdefault(clip.dataset, {"subjects": set(), "samples": 0, "frames": 0,
                                             "negative": 0, "positive": 0, "surprise": 0,
                                             "unlabelled": 0})
        c["subjects"].add(clip.record.subject)
        c["samples"] += 1
        c["frames"] += len(clip.record.frames)
        c[clip.label or "unlabelled"] += 1
    for c in counts.values():
        c["subjects"] = len(c["subjects"])
    return counts


def _truth_csv(plan) -> str:
    sources = {s.key: "+".join(s.faces) for s in plan.identities}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRUTH_COLUMNS)
    for c in plan.clips:
        writer.writerow([
            c.dataset, c.record.subject, c.record.sample, c.label or "",
            c.record.emotion or "", c.expression.au_code(),
            f"{c.expression.amplitude_iod:.5f}", sources[c.identity],
            "" if c.apex_frame is None else c.apex_frame,
            "" if c.onset_frame is None else c.onset_frame,
            "" if c.offset_frame is None else c.offset_frame,
        ])
    return buf.getvalue()


def _composite_rows(plan) -> list[tuple[str, str, str, str]]:
    """The plan's clips that are MEGC2019 composite samples, in the list's order."""
    from merlib.data.composite import load_composite_list

    planned = {(c.dataset, c.record.subject, c.record.sample) for c in plan.clips}
    listed = load_composite_list()
    return [(r.dataset, r.subject, r.sample, r.label) for r in listed.itertuples()
            if (r.dataset, r.subject, r.sample) in planned]


def _composite_csv(plan) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COMPOSITE_COLUMNS)
    writer.writerows(_composite_rows(plan))
    return buf.getvalue()


def _marker(cfg: SynthConfig, pool, plan, complete: bool) -> str:
    from merlib import __version__
    from merlib.synth.render import CAMERAS

    used = sorted({f for s in plan.identities for f in s.faces})
    doc = {
        "simulated": True,
        "generator": "merlib synth",
        "merlib_version": __version__,
        "complete": complete,
        **cfg.record(),
        "counts": _counts(plan),
        "composite": {"file": COMPOSITE, "samples": len(_composite_rows(plan)),
                      "of": "the MEGC2019 composite (442 samples)"},
        "face_pool": {"digest": pool.digest, "cache_key": pool.manifest["cache_key"],
                      "n_faces": len(pool), "faces_used": used},
        # Which faces make each subject: what source-overlap measures read.
        "identities": {s.key: {"faces": list(s.faces), "weights": list(s.weights),
                               "mouth_weights": list(s.mouth_weights or s.weights),
                               "flip": s.flip} for s in plan.identities},
        "cameras": {d: {"width": c.width, "height": c.height, "colour": c.colour,
                        "iod_px": c.iod_px, "note": c.note} for d, c in CAMERAS.items()},
        "note": ("Simulated data. Each subject is a landmark-aligned morph of two or more "
                 "real photographs (see the face pool manifest); expressions are "
                 "landmark warps along action-unit directions"
                 + (", with the skin's appearance changes of each action unit drawn "
                    "procedurally." if cfg.appearance == "facs" else ".")),
    }
    return json.dumps(doc, indent=1, sort_keys=False) + "\n"


def generate(out: Path | str, cfg: SynthConfig | None = None, progress: bool = True,
             workers: int | None = None) -> Path:
    """Write a SynthME data root.

    Parameters
    ----------
    out : path
        Data root to create. Must be missing, empty, or a previous SynthME root (which is
        cleared first).
    cfg : SynthConfig, optional
        Default ``SynthConfig()``.
    progress : bool
        Show a tqdm progress bar (clips).
    workers : int, optional
        Processes rendering in parallel (default: the CPU count). The output does not
        depend on it.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    SynthConfigError
        A parameter is out of range.
    SynthOutputError
        ``out`` is a file, or a non-empty folder that is not a SynthME root.
    FacePoolError
        The face pool is missing and cannot be fetched.
    """
    from tqdm import tqdm

    from merlib.data.layouts import write_annotations
    from merlib.data.schema import DATASETS
    from merlib.synth.plan import make_plan
    from merlib.synth.neutral import expressiveness
    from merlib.synth.sources import clarity, fetch_faces

    cfg = (cfg or SynthConfig()).validate()
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SynthConfigError(f"workers must be a positive integer; got {workers!r}")
    out = Path(out)
    stale = _check_output(out)  # before the (possibly slow) pool fetch: fail fast
    pool = fetch_faces(cfg.faces_dir)
    closed = _closed_mouths(pool) if cfg.neutral_faces else None
    plan = make_plan(cfg, [f.id for f in pool.faces], [f.yaw for f in pool.faces], closed,
                     [clarity(f) for f in pool.faces],
                     [expressiveness(f.landmarks) for f in pool.faces])
    _clear(stale)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(_marker(cfg, pool, plan, complete=False))

    jobs = [(str(pool.root), str(out), cfg.seed, spec, clips, cfg.look()) for spec, clips in _jobs(plan)]
    n_workers = min(workers or os.cpu_count() or 1, len(jobs))
    bar = tqdm(total=len(plan.clips), unit="clip", desc="SynthME", disable=not progress)
    try:
        if n_workers == 1:
            for job in jobs:
                _render_clips(*job)
                bar.update(len(job[4]))
        else:
            # fork: workers start at once and inherit the imports; spawn elsewhere.
            method = "fork" if "fork" in get_all_start_methods() else "spawn"
            with ProcessPoolExecutor(n_workers, mp_context=get_context(method)) as ex:
                futures = {ex.submit(_render_clips, *job): len(job[4]) for job in jobs}
                for fut in as_completed(futures):
                    fut.result()
                    bar.update(futures[fut])
    finally:
        bar.close()

    for dataset in DATASETS:
        records = [c.record for c in plan.clips if c.dataset == dataset]
        if records:
            write_annotations(dataset, out, records)
    (out / TRUTH).write_text(_truth_csv(plan))
    (out / COMPOSITE).write_text(_composite_csv(plan))
    (out / MARKER).write_text(_marker(cfg, pool, plan, complete=True))
    return out
