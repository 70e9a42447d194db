"""Accuracy against expression amplitude: the same LOSO pipeline on SynthME roots that differ
only in ``amplitude_scale``.

SynthME knows each sample's true apex amplitude (``amplitude_iod`` of
``SYNTHME_truth.csv``: the largest landmark displacement at the apex, in inter-ocular
distances, after ``amplitude_scale``). Roots generated with the same seed and subject
counts hold the same identities, clips and labels; only the amplitude differs
(:func:`check_same_clips` verifies it). Running the unchanged leak-free LOSO protocol on
each answers how large an expression must be before the method sees it.

Amplitudes are given two ways:

* in inter-ocular fractions (the generator's unit, independent of any camera);
* in pixels at the model's input: the aligned crop is ``side_iod`` inter-ocular distances
  wide (:class:`merlib.faces.config.AlignConfig`, 2.5), so at an input of ``S`` pixels
  one IOD is ``S / side_iod`` pixels (:func:`amplitude_pixels`).

Landmark jitter (:func:`landmark_jitter`) is measured on the frames of a clip before its
onset, where the face does not move except for the camera's slow head drift (a
translation per frame, :class:`merlib.synth.render.Shot`): the generator does not
write its true landmarks, so the jitter is the spread of dlib's detections around each
landmark's clip mean after removing each frame's mean translation, in the same units.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merlib.config import FinetuneConfig
from merlib.errors import ConfigError, DataLayoutError

#: The largest ``amplitude_scale`` :class:`merlib.synth.SynthConfig` accepts (at 5 the
#: micro range 0.02-0.04 IOD becomes the macro range 0.10-0.20).
AMPLITUDE_MAX: float = 5.0

#: Settings that must agree for a stored root to be reused (the ``SYNTHME.json`` keys).
_ROOT_KEYS: tuple[str, ...] = ("seed", "micro_subjects", "macro_subjects", "amplitude_scale",
                               "micro_amplitude_iod", "macro_amplitude_iod", "faces_per_identity",
                               "neutral_faces", "distinct_sources")

#: Micro-expression parts of the composite (their amplitudes are the micro range).
MICRO_DATASETS: tuple[str, ...] = ("casme2", "samm", "smic")


def root_name(amplitude: float, *, seed: int = 0, micro_subjects: int = 24, macro_subjects: int = 16) -> str:
    """Folder name of a study root, e.g. ``seed0_micro24_macro16_amp3``."""
    return f"seed{seed}_micro{micro_subjects}_macro{macro_subjects}_amp{float(amplitude):g}"


def _matches(marker: Path, want: dict, realism: dict | None = None) -> bool:
    from merlib.synth import realism_of

    try:
        rec = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if rec.get("complete") is not True:
        return False
    if realism is not None and realism_of(rec) != realism:
        return False
    for key, value in want.items():
        got = rec.get(key)
        if isinstance(value, tuple):
            got = tuple(got) if isinstance(got, list) else got
        if isinstance(value, float) and isinstance(got, (int, float)):
            if abs(float(got) - value) > 1e-9:
                return False
        elif got != value:
            return False
    return True


def synth_root(base: str | os.PathLike, amplitude: float, *, seed: int = 0, micro_subjects: int = 24,
               macro_subjects: int = 16, reuse: Sequence[str | os.PathLike] = (),
               workers: int | None = None, generator: dict | None = None) -> Path:
    """A complete SynthME root at ``amplitude``, generated once and reused.

    Parameters
    ----------
    base : path
        Folder of the study roots; the root is ``base / root_name(...)``.
    amplitude : float
        ``amplitude_scale``, in (0, :data:`AMPLITUDE_MAX`].
    seed, micro_subjects, macro_subjects
        As ``merlib synth``; equal values give the same identities and clips.
    reuse : sequence of path
        Existing roots to use instead when their ``SYNTHME.json`` is complete and records
        the same settings (e.g. the book's own ``data/synthme`` at amplitude 1).
    workers : int, optional
        Rendering processes.
    generator : dict, optional
        The generator's settings beyond the subjects and the amplitude scale: its realism
        options and amplitude ranges (:func:`merlib.synth.generator_settings` of the data
        root's record), so that a study root differs from the
        data root in its amplitude only; None: the generator's defaults.

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        ``amplitude`` out of range.
    """
    from merlib.synth import MARKER, SynthConfig, generate, generator_settings, realism_of

    if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float)) or not 0 < amplitude <= AMPLITUDE_MAX:
        raise ConfigError(f"amplitude: expected a number in (0, {AMPLITUDE_MAX:g}] (the generator's "
                          f"amplitude_scale), got {amplitude!r}")
    cfg = SynthConfig(seed=seed, micro_subjects=micro_subjects, macro_subjects=macro_subjects,
                      amplitude_scale=float(amplitude), **(generator or {})).validate()
    want = {k: v for k, v in cfg.record().items() if k in _ROOT_KEYS}
    # An absent realism field is its default: compare the filled-in values.
    want_realism = realism_of(cfg.record())
    for candidate in reuse:
        if _matches(Path(candidate) / MARKER, want, want_realism):
            return Path(candidate)
    name = root_name(amplitude, seed=seed, micro_subjects=micro_subjects, macro_subjects=macro_subjects)
    # Generator settings other than the defaults (realism, amplitude ranges) get a folder of
    # their own, named by their digest.
    settings = generator_settings(cfg.record())
    if settings != generator_settings({}):
        from merlib.paths import settings_digest

        name += f"_{settings_digest(settings, 6)}"
    out = Path(base) / name
    if not _matches(out / MARKER, want, want_realism):
        # An incomplete or different root in our own folder is regenerated (generate()
        # clears a previous SynthME root first).
        generate(out, cfg, progress=False, workers=workers)
    return out


def run_folder(base: str | os.PathLike, name: str, cfg: FinetuneConfig) -> Path:
    """``base / "<name>_<digest of cfg>"``: a run with other settings (after an update of
    a default, say) gets its own folder instead of being refused by the one it would
    overwrite, and the same run finds its finished folds again."""
    from merlib.paths import settings_digest

    return Path(base) / f"{name}_{settings_digest(cfg.as_dict())}"


def read_truth(root: str | os.PathLike) -> pd.DataFrame:
    """``SYNTHME_truth.csv`` of ``root``.

    Raises
    ------
    DataLayoutError
        No truth file (not a SynthME root).
    """
    from merlib.synth import TRUTH

    path = Path(root) / TRUTH
    if not path.is_file():
        raise DataLayoutError(f"{path}: missing; amplitudes are known only for SynthME roots")
    return pd.read_csv(path, dtype={"subject": str, "sample": str})


def check_same_clips(roots: dict[float, str | os.PathLike]) -> pd.DataFrame:
    """Verify that the roots differ only in amplitude; their truth side by side.

    Parameters
    ----------
    roots : dict of float -> path
        ``amplitude_scale`` -> root.

    Returns
    -------
    DataFrame
        The truth rows of the first root without ``amplitude_iod``, plus one column
        ``amp_<scale>`` per root (its ``amplitude_iod``).

    Raises
    ------
    DataLayoutError
        Roots with other samples, labels, frames or sources, or amplitudes not in the
        ratio of their scales (to the truth file's 5 decimals); names the root and row.
    """
    if not roots:
        raise ConfigError("roots: expected at least one root")
    scales = sorted(roots)
    base = read_truth(roots[scales[0]])
    fixed = [c for c in base.columns if c != "amplitude_iod"]
    out = base[fixed].copy()
    ref = base["amplitude_iod"].to_numpy(np.float64)
    for s in scales:
        t = read_truth(roots[s])
        if len(t) != len(base) or list(t.columns) != list(base.columns):
            raise DataLayoutError(f"{roots[s]}: truth has {len(t)} rows / columns {list(t.columns)}, "
                                  f"expected {len(base)} like {roots[scales[0]]}")
        a, b = base[fixed].fillna("").astype(str), t[fixed].fillna("").astype(str)
        diff = (a != b).any(axis=1).to_numpy()
        if diff.any():
            i = int(np.flatnonzero(diff)[0])
            raise DataLayoutError(f"{roots[s]}: truth row {i} ({t['sample'].iloc[i]}) differs from "
                                  f"{roots[scales[0]]} beyond the amplitude")
        amp = t["amplitude_iod"].to_numpy(np.float64)
        expected = ref * (s / scales[0])
        # Written with 5 decimals: allow half a unit of rounding on each side, scaled.
        tol = 0.5e-5 * (1 + s / scales[0]) + 1e-9
        bad = np.abs(amp - expected) > tol
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataLayoutError(f"{roots[s]}: truth row {i} ({t['sample'].iloc[i]}): amplitude "
                                  f"{amp[i]} is not {s:g}/{scales[0]:g} x {ref[i]}")
        out[f"amp_{s:g}"] = amp
    return out


def amplitude_pixels(amplitude_iod: float | np.ndarray, image_size: int,
                     side_iod: float | None = None) -> float | np.ndarray:
    """An amplitude in inter-ocular distances as pixels at a model input of ``image_size``.

    The aligned crop is ``side_iod`` IODs wide (default: :class:`AlignConfig`'s 2.5), so
    one IOD is ``image_size / side_iod`` pixels: 0.03 IOD is 0.77 px at 64 px.
    """
    from merlib.faces.config import AlignConfig

    side = AlignConfig().side_iod if side_iod is None else side_iod
    if not isinstance(image_size, (int, np.integer)) or image_size < 1 or side <= 0:
        raise ConfigError(f"image_size, side_iod: expected a positive int and a positive number, "
                          f"got {image_size!r}, {side!r}")
    return np.asarray(amplitude_iod, np.float64) * image_size / side if np.ndim(amplitude_iod) else \
        float(amplitude_iod) * image_size / side


def composite_amplitudes(truth: pd.DataFrame, crops_meta: pd.DataFrame) -> np.ndarray:
    """The true amplitude (IOD) of each composite crop, in the crops' row order.

    Raises
    ------
    DataLayoutError
        A crop with no truth row (names it).
    """
    key = ["dataset", "subject", "sample"]
    t = truth.assign(**{k: truth[k].astype(str) for k in key}).drop_duplicates(key).set_index(key)
    idx = pd.MultiIndex.from_frame(crops_meta[key].astype(str))
    missing = ~idx.isin(t.index)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataLayoutError(f"crops row {i} ({'/'.join(idx[i])}): no row in the truth file")
    return t.loc[idx, "amplitude_iod"].to_numpy(np.float64)


def study_table(predictions: pd.DataFrame, amplitude: float, amplitude_iod: np.ndarray, image_size: int,
                *, method: str = "pred_svm", references: Sequence[str] = ("pred_majority",),
                n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Composite UF1 / UAR with subject-bootstrap intervals of each column at one amplitude,
    and the method's paired difference from the majority class.

    Parameters
    ----------
    predictions : DataFrame
        LOSO predictions (dataset, subject, label, ``method`` and ``references``
        columns), one row per composite crop.
    amplitude : float
        The root's ``amplitude_scale``.
    amplitude_iod : ndarray of shape (n_samples,)
        True amplitudes of the rows (:func:`composite_amplitudes`).
    image_size : int
        The model's input side, for the pixel amplitude.

    Returns
    -------
    DataFrame
        One row per column: ``scale``, ``classifier``, ``image_size``, ``amp_iod``
        (median true amplitude), ``amp_px`` (the same at ``image_size``), ``uf1``,
        ``uf1_lo``, ``uf1_hi``, ``uar``..., and for the method ``d_uf1``, ``d_uf1_lo``,
        ``d_uf1_hi`` (minus the majority class, paired) and ``beats_majority`` (its
        interval excludes 0 on the positive side); for every other reference,
        ``m_uf1``, ``m_uf1_lo``, ``m_uf1_hi``: the method *minus* that reference, paired
        (the same resampled subjects), so :func:`versus_reference` can say whether the
        method trails it beyond noise.
    """
    from merlib.evaluation.bootstrap import bootstrap_table, paired_table

    cols = [method, *references]
    table = bootstrap_table(predictions, cols, n_resamples=n_resamples, seed=seed)
    table = table[table["part"] == "composite"].drop(columns="part").reset_index(drop=True)
    med = float(np.nanmedian(np.asarray(amplitude_iod, np.float64)))
    table.insert(0, "scale", float(amplitude))
    table.insert(2, "image_size", int(image_size))
    table.insert(3, "amp_iod", med)
    table.insert(4, "amp_px", amplitude_pixels(med, image_size))
    if "pred_majority" in predictions.columns and method != "pred_majority":
        d = paired_table(predictions, method, ["pred_majority"], n_resamples=n_resamples, seed=seed)
        d = d[d["part"] == "composite"].iloc[0]
        # paired_table gives "others minus reference": majority minus method; flip it.
        row = table["classifier"] == method.removeprefix("pred_")
        table.loc[row, "d_uf1"] = -d["d_uf1"]
        table.loc[row, "d_uf1_lo"] = -d["d_uf1_hi"]
        table.loc[row, "d_uf1_hi"] = -d["d_uf1_lo"]
        table["beats_majority"] = table["d_uf1_lo"] > 0
    others = [c for c in references if c not in ("pred_majority", method)]
    if others:
        d = paired_table(predictions, method, others, n_resamples=n_resamples, seed=seed)
        d = d[d["part"] == "composite"]
        for r in d.itertuples(index=False):
            # paired_table: reference minus method; flipped to method minus reference.
            row = table["classifier"] == r.classifier
            table.loc[row, "m_uf1"] = -r.d_uf1
            table.loc[row, "m_uf1_lo"] = -r.d_uf1_hi
            table.loc[row, "m_uf1_hi"] = -r.d_uf1_lo
    return table


def head_views(predictions: pd.DataFrame, kind: str) -> list[tuple[str, pd.DataFrame, list[str]]]:
    """The SVM heads of one LOSO run, each as the ``pred_svm`` of its own view.

    Parameters
    ----------
    predictions : DataFrame
        :func:`~merlib.evaluation.protocol.evaluate_loso` predictions.
    kind : str
        The run's input (``"apex"``, ``"difference"``).

    Returns
    -------
    list of (input label, predictions, extra reference columns)
        A plain run: one view, ``(kind, predictions, ["pred_softmax"])``. A run with
        ``svm_early_grid`` > 0 (it has ``pred_svm_pooled``): first the paper's head,
        ``(kind, predictions with pred_svm = pred_svm_pooled, ["pred_softmax"])``, then
        the grid head, ``(kind + "+grid", predictions, ["pred_svm_pooled"])``, whose
        ``svm_pooled`` row of :func:`study_table` holds the paired difference of the two
        SVM inputs on the same networks.
    """
    if "pred_svm_pooled" not in predictions.columns:
        return [(kind, predictions, ["pred_softmax"])]
    pooled = predictions.assign(pred_svm=predictions["pred_svm_pooled"]).drop(columns="pred_svm_pooled")
    return [(kind, pooled, ["pred_softmax"]), (f"{kind}+grid", predictions, ["pred_svm_pooled"])]


def versus_reference(m_uf1_lo: float, m_uf1_hi: float) -> str:
    """``"beats"``, ``"trails"`` or ``"matches"`` the reference: whether the paired
    interval of the method minus the reference lies above 0, below 0, or holds 0."""
    if m_uf1_lo > 0:
        return "beats"
    if m_uf1_hi < 0:
        return "trails"
    return "matches"


def threshold(table: pd.DataFrame, classifier: str = "svm", *, by: str = "image_size") -> pd.DataFrame:
    """Per ``by`` value, the smallest amplitude at which ``classifier`` beats the majority
    class with a paired interval that excludes 0 (NaN when no amplitude does).

    Returns
    -------
    DataFrame
        ``by``, ``scale``, ``amp_iod``, ``amp_px``, ``uf1``, ``uf1_lo``, ``uf1_hi``.
    """
    need = {by, "scale", "classifier", "beats_majority", "amp_iod", "amp_px", "uf1"}
    if missing := sorted(need - set(table.columns)):
        raise ConfigError(f"table: missing columns {missing}")
    rows = []
    for value, sub in table[table["classifier"] == classifier].groupby(by, sort=True):
        hit = sub[sub["beats_majority"].astype(bool)].sort_values("scale")
        if len(hit):
            r = hit.iloc[0]
            rows.append({by: value, "scale": r["scale"], "amp_iod": r["amp_iod"], "amp_px": r["amp_px"],
                         "uf1": r["uf1"], "uf1_lo": r["uf1_lo"], "uf1_hi": r["uf1_hi"]})
        else:
            rows.append({by: value, "scale": np.nan, "amp_iod": np.nan, "amp_px": np.nan,
                         "uf1": np.nan, "uf1_lo": np.nan, "uf1_hi": np.nan})
    return pd.DataFrame(rows)


def expression_weight(frame: np.ndarray, onset: int, apex: int, offset: int) -> np.ndarray:
    """SynthME's micro-clip expression curve at frame numbers ``frame``: a raised cosine
    from 0 at ``onset`` to 1 at ``apex`` and back to 0 at ``offset``
    (:mod:`merlib.synth.plan`)."""
    f = np.asarray(frame, np.float64)
    up = (f - onset) / max(apex - onset, 1)
    down = 1.0 - (f - apex) / max(offset - apex, 1)
    x = np.clip(np.where(f <= apex, up, down), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def landmark_jitter(root: str | os.PathLike, crops_meta: pd.DataFrame, *, n_clips: int | None = 12,
                    frames: int = 6, max_weight: float = 0.02, seed: int = 0) -> pd.DataFrame:
    """dlib's landmark jitter on a clip's still frames, in inter-ocular distances.

    SynthME does not write its true landmarks, so jitter is measured where the truth
    says the face does not move: the frames of a micro clip whose expression weight
    (:func:`expression_weight`, from the truth file's onset, apex and offset) is at most
    ``max_weight`` -- the first and last few frames, where the expression moves the
    landmarks by at most ``max_weight`` x the amplitude (0.0008 IOD at amplitude 1).
    Those frames differ by the camera's head drift (a translation per frame,
    :class:`merlib.synth.render.Shot`), sensor noise and flicker. Each frame's
    detected landmarks (:func:`merlib.faces.pipeline.find_landmarks`) are shifted by
    their mean translation from the clip mean; the jitter is the root-mean-square
    distance of the landmarks from their clip means, divided by the clip's inter-ocular
    distance.

    Parameters
    ----------
    root : path
        A SynthME root.
    crops_meta : DataFrame
        ``meta`` of the composite :class:`~merlib.training.crops.CropSet` (its
        ``frame_path`` gives each clip's folder, ``part`` the frame-name pattern).
    n_clips : int or None
        Clips drawn (seeded) from the crops with a known onset and offset; None: all.
    frames : int
        At most this many still frames per clip (spread over the still ones).
    max_weight : float
        Largest expression weight of a frame counted as still.

    Returns
    -------
    DataFrame
        One row per clip: ``dataset``, ``subject``, ``sample``, ``n_frames`` (still frames
        detected; the jitter is NaN below 3), ``iod_px`` (frame pixels), ``jitter_iod``
        (RMS over all 68 landmarks), ``jitter_mouth_iod`` and ``jitter_brows_iod``
        (landmarks 48-67 and 17-26).
    """
    from merlib.data.frames import list_frames
    from merlib.data.index import frame_pattern
    from merlib.faces.landmarks import LEFT_EYE, RIGHT_EYE
    from merlib.faces.pipeline import find_landmarks, read_grey

    if frames < 3:
        raise ConfigError(f"frames: expected at least 3, got {frames}")
    key = ["dataset", "subject", "sample"]
    truth = read_truth(root)
    truth = truth.assign(**{k: truth[k].astype(str) for k in key})
    meta = crops_meta.assign(**{k: crops_meta[k].astype(str) for k in key})
    cols = [*key, "onset_frame", "apex_frame", "offset_frame"]
    t = meta.merge(truth[cols].dropna(), on=key, how="inner")
    if not len(t):
        raise DataLayoutError(f"{root}: no crop with onset, apex and offset frames in the truth file")
    if n_clips is not None and n_clips < len(t):
        t = t.sample(n=n_clips, random_state=seed).sort_index()
    rows = []
    for r in t.itertuples(index=False):
        folder = (Path(root) / r.frame_path).parent
        part = None if str(r.part) in ("", "nan") else str(r.part)
        listed = list_frames(folder, frame_pattern(r.dataset, part))
        numbers = np.array([n for n, _ in listed])
        still = np.flatnonzero(expression_weight(numbers, int(r.onset_frame), int(r.apex_frame),
                                                 int(r.offset_frame)) <= max_weight)
        if len(still) > frames:
            still = still[np.round(np.linspace(0, len(still) - 1, frames)).astype(int)]
        dets = [find_landmarks(read_grey(listed[i][1])) for i in still]
        pts = [d.points for d in dets if d.points is not None]
        row = {"dataset": r.dataset, "subject": r.subject, "sample": r.sample, "n_frames": len(pts),
               "iod_px": np.nan, "jitter_iod": np.nan, "jitter_mouth_iod": np.nan, "jitter_brows_iod": np.nan}
        if len(pts) >= 3:
            P = np.stack(pts).astype(np.float64)  # (F, 68, 2)
            P -= P.mean(1, keepdims=True)  # each frame's translation (head drift) removed
            mean_pts = P.mean(0)
            d2 = ((P - mean_pts) ** 2).sum(-1)  # (F, 68) squared distances from the clip mean
            iod = float(np.linalg.norm(mean_pts[RIGHT_EYE].mean(0) - mean_pts[LEFT_EYE].mean(0)))
            row.update(iod_px=iod, jitter_iod=float(np.sqrt(d2.mean())) / iod,
                       jitter_mouth_iod=float(np.sqrt(d2[:, 48:68].mean())) / iod,
                       jitter_brows_iod=float(np.sqrt(d2[:, 17:27].mean())) / iod)
        rows.append(row)
    return pd.DataFrame(rows)


def chance_uf1(labels: Sequence[str] | np.ndarray) -> float:
    """Expected UF1 of guessing each class with probability 1/3, on ``labels``.

    For uniform guessing, class ``c`` with ``n_c`` of ``N`` samples gets ``n_c / 3``
    expected true positives and ``N / 3`` expected predictions, so its F1 is
    ``2 (n_c / 3) / (n_c + N / 3)`` (the ratio of expectations, exact to O(1/N)).
    """
    from merlib.data.schema import LABELS

    y = pd.Series(np.asarray(labels)).astype(str)
    if not len(y):
        raise ConfigError("labels: expected at least one label")
    n, k = len(y), len(LABELS)
    counts = y.value_counts().reindex(list(LABELS), fill_value=0).to_numpy(np.float64)
    f1 = np.where(counts > 0, 2 * (counts / k) / (counts + n / k), 0.0)
    return float(f1.mean())


#: ``grid="full"`` of :meth:`AmplitudeSettings.from_parameters`: amplitudes 1-5, 64 and
#: 128 px, with and without transfer, both inputs and every reference.
FULL_GRID: dict[str, tuple] = {"amplitudes": (1.0, 2.0, 3.0, 4.0, 5.0), "image_sizes": (64, 128),
                               "transfer": (False, True), "inputs": ("apex", "difference"),
                               "references": ("majority", "pixels_lr", "hog_svm")}

#: Network inputs the study knows (:func:`run_amplitude_study`).
INPUTS: tuple[str, ...] = ("apex", "difference")


@dataclass(frozen=True)
class AmplitudeSettings:
    """The amplitude study's settings, with ``grid`` applied (the chapter's parameters).

    Attributes
    ----------
    grid : str
        ``"given"`` (the sequences below as passed) or ``"full"`` (:data:`FULL_GRID`).
    amplitudes : tuple of float
        ``amplitude_scale`` of each root.
    image_sizes : tuple of int
        Model input sides, pixels.
    transfer : tuple of bool
        Runs with (True) and/or without (False) the macro-trained weights.
    inputs : tuple of str
        Network inputs, of :data:`INPUTS`.
    references : tuple of str
        ``"majority"`` and/or names of :data:`merlib.evaluation.handcrafted.REFERENCES`.
    profile, device : str
        :func:`merlib.config.get_profile`'s arguments.
    seed : int
    micro_epochs : int or None
        Fine-tuning epochs; None (or 0): the profile's.
    early_grid : int
        ``svm_early_grid`` of the difference-input runs (0: none).
    workers : int or None
        LOSO tasks in parallel (1: in this process).
    """

    grid: str
    amplitudes: tuple[float, ...]
    image_sizes: tuple[int, ...]
    transfer: tuple[bool, ...]
    inputs: tuple[str, ...]
    references: tuple[str, ...]
    profile: str = "smoke"
    device: str = "cpu"
    seed: int = 0
    micro_epochs: int | None = None
    early_grid: int = 0
    workers: int | None = 1

    @classmethod
    def from_parameters(cls, grid: str, *, amplitudes: Sequence[float], image_sizes: Sequence[int],
                        transfer: Sequence[bool], inputs: Sequence[str], references: Sequence[str],
                        profile: str = "smoke", device: str = "cpu", seed: int = 0,
                        micro_epochs: int | None = None, early_grid: int = 0,
                        workers: int | None = 1) -> AmplitudeSettings:
        """The settings of the chapter's parameters: ``grid="full"`` replaces the
        amplitudes, sizes, transfer, inputs and references by :data:`FULL_GRID`.

        The profile and device are not checked here (:func:`merlib.config.get_profile`
        does, when the study runs).

        Raises
        ------
        ValueError
            ``grid`` other than ``"given"`` or ``"full"``; an input not in :data:`INPUTS`
            (names the unknown ones).
        """
        if grid == "full":
            amplitudes, image_sizes, transfer, inputs, references = (
                FULL_GRID[k] for k in ("amplitudes", "image_sizes", "transfer", "inputs", "references"))
        elif grid != "given":
            raise ValueError(f"grid: expected 'given' or 'full', got {grid!r}")
        if unknown := sorted(set(inputs) - set(INPUTS)):
            raise ValueError(f"inputs: expected 'apex' and/or 'difference', got {unknown}")
        return cls(grid, tuple(amplitudes), tuple(image_sizes), tuple(transfer), tuple(inputs), tuple(references),
                   profile=profile, device=device, seed=seed, micro_epochs=micro_epochs, early_grid=early_grid,
                   workers=workers)

    def provenance_params(self) -> dict[str, Any]:
        """The parameters a figure's :class:`~merlib.provenance.Provenance` records
        (sequences as lists, as the chapter's parameters are written)."""
        return dict(profile=self.profile, device=self.device, seed=self.seed, grid=self.grid,
                    amplitudes=list(self.amplitudes), image_sizes=list(self.image_sizes),
                    transfer=list(self.transfer), inputs=list(self.inputs), micro_epochs=self.micro_epochs,
                    early_grid=self.early_grid)


def synthme_record(root: str | os.PathLike) -> dict[str, Any]:
    """The ``SYNTHME.json`` record of ``root``.

    Raises
    ------
    ValueError
        ``root`` has no record (not a SynthME root: the study needs known truth).
    """
    from merlib.synth import MARKER

    path = Path(root) / MARKER
    if not path.is_file():
        raise ValueError(f"data_root: {root} is not a SynthME root; the amplitude study needs simulated data "
                         "whose truth is known")
    return json.loads(path.read_text())


def study_roots(base: str | os.PathLike, own_root: str | os.PathLike, record: Mapping[str, Any],
                amplitudes: Sequence[float], *, micro_subjects: int | None = None,
                macro_subjects: int | None = None) -> dict[float, Path]:
    """One SynthME root per amplitude, with ``own_root``'s seed and subject counts
    (:func:`synth_root`).

    Parameters
    ----------
    base : path
        Folder of the generated roots.
    own_root : path
        The data root; reused for the amplitude it was generated at.
    record : mapping
        ``own_root``'s ``SYNTHME.json`` (:func:`synthme_record`).
    amplitudes : sequence of float
    micro_subjects, macro_subjects : int, optional
        Subjects of the generated roots; None: ``record``'s.

    Returns
    -------
    dict of float -> Path
        ``amplitude_scale`` -> root, in the order of ``amplitudes``.
    """
    from merlib.synth import generator_settings

    counts = dict(seed=record["seed"], micro_subjects=micro_subjects or record["micro_subjects"],
                  macro_subjects=macro_subjects or record["macro_subjects"])
    return {float(a): synth_root(base, float(a), reuse=[own_root], generator=generator_settings(record), **counts)
            for a in amplitudes}


@dataclass(frozen=True)
class AmplitudeStudy:
    """The runs of :func:`run_amplitude_study`.

    Attributes
    ----------
    table : DataFrame
        :func:`study_table` rows of every run and head view, plus ``transfer``,
        ``input`` (the view: ``"apex"``, ``"difference"``, ``"difference+grid"``) and
        ``chance_uf1`` (:func:`chance_uf1` of the run's labels).
    runs : dict of (float, int, bool, str) -> LosoResult
        (amplitude, image size, transfer, input) -> the LOSO run.
    composites : dict of float -> CropSet
        Amplitude -> the composite's apex crops.
    left_out : dict of (float, int) -> DataFrame
        (amplitude, image size) -> the samples the difference input left out (dataset,
        subject, sample, reason), only where there were any.
    lines : tuple of str
        The progress lines, in order.
    """

    table: pd.DataFrame
    runs: dict[tuple[float, int, bool, str], Any]
    composites: dict[float, Any]
    left_out: dict[tuple[float, int], pd.DataFrame]
    lines: tuple[str, ...]


def run_amplitude_study(roots: Mapping[float, str | os.PathLike], settings: AmplitudeSettings, *,
                        own_root: str | os.PathLike, echo: Callable[[str], None] | None = None,
                        show: Callable[[pd.DataFrame], None] | None = None) -> AmplitudeStudy:
    """The same leak-free LOSO pipeline on each root, with references on the same folds.

    Per root: the composite's crops (and the macro set's, for transfer or for
    ``own_root``, whose pre-processing manifest other chapters read), then per image
    size and input: the difference crops (input ``"difference"``), the references of
    ``settings.references`` on that input, the macro-trained weights (transfer), and
    :func:`~merlib.evaluation.protocol.evaluate_loso` in ``<results>/amplitude/<name>_<digest>``
    (:func:`run_folder`; a finished run is read back). Each run's heads
    (:func:`head_views`) are scored by :func:`study_table`.

    Parameters
    ----------
    roots : mapping of float -> path
        ``amplitude_scale`` -> SynthME root (:func:`study_roots`).
    settings : AmplitudeSettings
    own_root : path
        The book's data root (its crops keep the macro set too).
    echo : callable, optional
        Called with each progress line as it happens (e.g. ``print``).
    show : callable, optional
        Called with each table of left-out samples (e.g. IPython's ``display``).

    Returns
    -------
    AmplitudeStudy
    """
    from merlib.config import get_profile
    from merlib.evaluation.baselines import majority_class_predictions
    from merlib.evaluation.handcrafted import merge_predictions, reference_predictions
    from merlib.evaluation.protocol import evaluate_loso
    from merlib.evaluation.splits import loso_folds
    from merlib.paths import results_dir
    from merlib.provenance import Provenance
    from merlib.training.crops import prepare_crop_sets
    from merlib.training.difference import difference_crops
    from merlib.training.transfer import train_macro

    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if echo is not None:
            echo(line)

    s = settings
    prof = get_profile(s.profile, s.device)
    # The chapter's own names: the loop below is its run loop, call for call.
    seed, profile, device, micro_epochs, transfer = s.seed, s.profile, s.device, s.micro_epochs, s.transfer
    rows, runs, comps, left = [], {}, {}, {}
    key = ["dataset", "subject", "sample", "label"]
    others = [n for n in s.references if n != "majority"]
    for a, r in roots.items():
        prov_a = Provenance.for_data(r, profile=profile, device=device, seed=seed)
        # The book's own root keeps both sets in its pre-processing manifest (other chapters read the macro set).
        sets = ["composite", "macro"] if any(transfer) or Path(r) == Path(own_root) else ["composite"]
        crops = prepare_crop_sets(r, sets=sets, seed=seed, allow_missing=True, provenance=prov_a)
        comps[a] = crops["composite"]
        truth_a = read_truth(r)
        work = results_dir(r, profile, fingerprint=prov_a.data_fingerprint)
        for size in s.image_sizes:
            cfg = prof.micro.replace(seed=seed, image_size=size,
                                     **({"epochs": micro_epochs} if micro_epochs else {}))
            for kind in s.inputs:
                comp = crops["composite"]
                if kind == "difference":
                    comp, left_out = difference_crops(comp, r, size=size, cache_dir=work / "clips")
                    if len(left_out):
                        left[(a, size)] = left_out
                        say(f"amplitude x{a:g}: {len(left_out)} sample(s) without an aligned onset/apex pair, "
                            "left out:")
                        if show is not None:
                            show(left_out)
                refs = (reference_predictions(comp, others, folds=loso_folds(comp.groups),
                                              cache_dir=work / "references") if others else None)
                for use_transfer in transfer:
                    if use_transfer and kind == "difference":
                        continue  # the macro set has no onset frames for JAFFE: no macro counterpart of this input
                    weights = None
                    if use_transfer:
                        macro_cfg = prof.macro.replace(seed=seed, image_size=size)
                        weights = train_macro(crops["macro"], macro_cfg,
                                              work / "amplitude" / f"transfer_{size}px").out_dir
                    name = (f"loso_{size}px_{'transfer' if use_transfer else 'scratch'}"
                            f"{'' if kind == 'apex' else '_' + kind}")
                    cfg_k = cfg.replace(svm_early_grid=s.early_grid) if kind == "difference" else cfg
                    res = evaluate_loso(comp, cfg_k, run_folder(work / "amplitude", name, cfg_k), transfer=weights,
                                        n_workers=s.workers)
                    preds = res.predictions.copy()
                    preds["pred_majority"] = majority_class_predictions(preds).astype(object).to_numpy()
                    if refs is not None:
                        preds = merge_predictions(preds, refs[[*key, "fold", *[f"pred_{n}" for n in others]]])
                    cols = ["pred_majority", *[f"pred_{n}" for n in others]]
                    for view, p, extra in head_views(preds, kind):
                        t = study_table(p, a, composite_amplitudes(truth_a, comp.meta), size,
                                        method="pred_svm", references=[*extra, *cols], seed=seed)
                        t["transfer"] = use_transfer
                        t["input"] = view
                        t["chance_uf1"] = chance_uf1(preds["label"])
                        rows.append(t)
                    runs[(a, size, use_transfer, kind)] = res
                    say(f"amplitude x{a:g}, {size} px, transfer={use_transfer}, input={kind}: {res.seconds:.0f} s "
                        f"({res.tasks['reused']} of {res.tasks['total']} folds read back)")
    return AmplitudeStudy(pd.concat(rows, ignore_index=True), runs, comps, left, tuple(lines))
