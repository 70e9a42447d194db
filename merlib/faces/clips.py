"""Aligned onset..offset clips for the spatio-temporal baselines (LBP-TOP, HOOF).

The apex-frame pipeline (:mod:`merlib.faces.pipeline`) aligns one frame per sample. The
MEGC2019 baselines read the whole expression, so every frame from onset to offset must
be cut out *with one transform*: landmarks are found once (on the apex frame by default,
as the apex crop is) and the same rotation and crop are applied to every frame. Fitting
landmarks per frame would add the detector's frame-to-frame jitter, which at micro
amplitude is as large as the expression itself.

A clip comes out at a small size (64 px by default: LBP-TOP's 5 x 5 blocks are then 12-13
px) and is resampled in time to a fixed number of frames (linear interpolation), so clips
of 7 (SMIC at 100 fps) and 35 frames (CASME II at 200 fps) give descriptors of the same
length and the same temporal support. The aligned onset and apex frames are kept
unresampled for optical flow.

Clips are cached on disk (one ``.npz`` per sample) keyed by the sample, every setting
that changes the output and the names and contents (SHA-256) of the frame files read,
so a book chapter computes them once and a regenerated or replaced data root is not
mistaken for the old one. Sizes would not do: an uncompressed frame (SMIC's BMP) has the
same size whatever it shows.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merlib.data.frames import list_frames
from merlib.errors import ConfigError, DataLayoutError, MerlibError
from merlib.faces.align import ImageFormatError
from merlib.faces.cache import file_sha256
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import FRAME_NUMBER, FrameReadError, align, find_landmarks, read_grey

#: Bump when a change of code changes the clips for the same settings (part of the key).
#: 2: the key hashes the frames' contents (1 had their sizes, and served a regenerated
#: root's BMP clips from the old root's entries).
CLIP_VERSION = 2

#: Columns of a sample row that :func:`align_clip` reads (canonical table names).
ROW_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "clip_dir", "apex_path",
                                "onset_frame", "apex_frame", "offset_frame")


class ClipError(MerlibError, ValueError):
    """A clip cannot be aligned (no usable face, too few frames); names the sample."""


@dataclass(frozen=True)
class ClipConfig:
    """How a sample's frames become an aligned clip.

    Parameters
    ----------
    size : int, default=64
        Side of the square clip frames, pixels.
    n_frames : int, default=10
        Frames after linear resampling of onset..offset in time (at least 3: LBP on the
        XT and YT planes needs a neighbour on both sides in time).
    landmark_frame : {"apex", "onset"}, default="apex"
        Which frame's landmarks define the transform (the apex crop's frame by default,
        so the clip and the apex crop share the alignment).
    """

    size: int = 64
    n_frames: int = 10
    landmark_frame: str = "apex"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 16:
            raise ConfigError(f"size: expected an integer >= 16, got {self.size!r}")
        if not isinstance(self.n_frames, int) or self.n_frames < 3:
            raise ConfigError(f"n_frames: expected an integer >= 3, got {self.n_frames!r}")
        if self.landmark_frame not in ("apex", "onset"):
            raise ConfigError(f"landmark_frame: expected 'apex' or 'onset', got {self.landmark_frame!r}")


@dataclass(frozen=True)
class AlignedClip:
    """One sample's aligned clip.

    Attributes
    ----------
    frames : ndarray of shape (T, S, S), uint8
        Onset..offset, aligned with one transform, resampled to ``T`` frames.
    key_frames : ndarray of shape (2, S, S), uint8
        The aligned onset and apex frames as recorded (not resampled).
    points : ndarray of shape (68, 2), float32
        The landmarks used, in clip coordinates.
    landmark_source : str
        File name of the frame whose landmarks define the transform.
    n_source_frames : int
        Frames read between onset and offset.
    """

    frames: np.ndarray
    key_frames: np.ndarray
    points: np.ndarray
    landmark_source: str
    n_source_frames: int


def _sample_name(row: dict[str, Any]) -> str:
    return f"{row.get('dataset')}/{row.get('subject')}/{row.get('sample')}"


def clip_frame_paths(row: dict[str, Any] | pd.Series, data_root: str | os.PathLike) -> list[tuple[int, Path]]:
    """The ``(frame number, path)`` of a sample's frames from onset to offset.

    Parameters
    ----------
    row : mapping
        A canonical sample row (:data:`ROW_COLUMNS`); a missing onset or offset means the
        clip's first or last frame.
    data_root : path

    Raises
    ------
    DataLayoutError
        The clip folder is missing or holds fewer than two frames in the range.
    """
    row = dict(row)
    missing = [c for c in ROW_COLUMNS if c not in row]
    if missing:
        raise ConfigError(f"row: missing columns {missing}; expected the canonical sample columns")
    folder = Path(data_root) / str(row["clip_dir"])
    frames = list_frames(folder, FRAME_NUMBER)
    lo = frames[0][0] if pd.isna(row["onset_frame"]) else int(row["onset_frame"])
    hi = frames[-1][0] if pd.isna(row["offset_frame"]) else int(row["offset_frame"])
    inside = [(n, p) for n, p in frames if lo <= n <= hi]
    if len(inside) < 2:
        raise DataLayoutError(f"{_sample_name(row)}: {folder} holds {len(inside)} frame(s) between "
                              f"onset {lo} and offset {hi}; a clip needs at least 2")
    return inside


def _apex_position(row: dict[str, Any], numbers: list[int]) -> int:
    """Index in ``numbers`` of the annotated apex, or of the nearest frame (a faulty
    annotation may put the apex outside onset..offset); the middle frame when absent."""
    apex = int(row["apex_frame"]) if not pd.isna(row["apex_frame"]) else numbers[(len(numbers) - 1) // 2]
    return int(np.argmin([abs(n - apex) for n in numbers]))


def key_frame_paths(row: dict[str, Any] | pd.Series, data_root: str | os.PathLike) -> tuple[Path, Path]:
    """The onset and apex frame files of a sample, as :func:`align_clip` picks them for
    :attr:`AlignedClip.key_frames`."""
    row = dict(row)
    frames = clip_frame_paths(row, data_root)
    return frames[0][1], frames[_apex_position(row, [n for n, _ in frames])][1]


def resample_time(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Linear interpolation of (L, H, W) frames to (n_frames, H, W), uint8, ends kept.

    Output frame ``k`` sits at source position ``k * (L - 1) / (n_frames - 1)``.
    """
    f = np.asarray(frames, dtype=np.float32)
    pos = np.linspace(0.0, len(f) - 1, n_frames)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, len(f) - 1)
    w = (pos - i0)[:, None, None].astype(np.float32)
    return np.clip(np.rint((1 - w) * f[i0] + w * f[i1]), 0, 255).astype(np.uint8)


def align_clip(row: dict[str, Any] | pd.Series, data_root: str | os.PathLike,
               align_cfg: AlignConfig = AlignConfig(), clip_cfg: ClipConfig = ClipConfig()) -> AlignedClip:
    """Align every frame of a sample with the transform of one frame's landmarks.

    Landmarks come from the apex (or onset) frame; when it holds no usable face, the
    nearest frames of the clip are tried, up to ``align_cfg.neighbour_frames`` away (the
    fallback of the apex pipeline). Eyes are masked when ``align_cfg.mask_eyes``.

    Parameters
    ----------
    row : mapping
        A canonical sample row (:data:`ROW_COLUMNS`).
    data_root : path
    align_cfg : AlignConfig
        The apex crop's settings; ``crop_size`` is replaced by ``clip_cfg.size``.
    clip_cfg : ClipConfig

    Returns
    -------
    AlignedClip

    Raises
    ------
    ClipError
        No usable face in the landmark frame or its neighbours (names the sample).
    DataLayoutError, FrameReadError, ImageFormatError
        Missing clip folder or unreadable frame.
    """
    row = dict(row)
    frames = clip_frame_paths(row, data_root)
    numbers = [n for n, _ in frames]
    apex_pos = _apex_position(row, numbers)
    key_pos = 0 if clip_cfg.landmark_frame == "onset" else apex_pos
    order = sorted(range(len(frames)), key=lambda i: (abs(i - key_pos), i))
    order = [i for i in order if abs(i - key_pos) <= align_cfg.neighbour_frames]
    greys: dict[int, np.ndarray] = {}
    points = None
    source = ""
    reasons = []
    for i in order:
        greys[i] = read_grey(frames[i][1])
        det = find_landmarks(greys[i], align_cfg)
        if det.points is not None:
            points, source = det.points, frames[i][1].name
            break
        reasons.append(f"{frames[i][1].name}: {det.reason}")
    if points is None:
        raise ClipError(f"{_sample_name(row)}: no usable face near the {clip_cfg.landmark_frame} frame "
                        f"({'; '.join(reasons[:3])})")
    small = replace(align_cfg, crop_size=clip_cfg.size)
    aligned = []
    crop_points = None
    for i, (_, path) in enumerate(frames):
        grey = greys[i] if i in greys else read_grey(path)
        a = align(grey, points, small)
        aligned.append(a.crop)
        crop_points = a.points
    stack = np.stack(aligned)
    return AlignedClip(frames=resample_time(stack, clip_cfg.n_frames),
                       key_frames=np.stack([stack[0], stack[apex_pos]]),
                       points=np.asarray(crop_points, np.float32), landmark_source=source,
                       n_source_frames=len(frames))


def clip_key(row: dict[str, Any] | pd.Series, data_root: str | os.PathLike,
             align_cfg: AlignConfig, clip_cfg: ClipConfig) -> str:
    """Cache key: the sample, every setting, and the names and SHA-256 digests of its
    frame files (a few ms per sample; the alignment it saves takes seconds)."""
    row = dict(row)
    files = [(p.name, file_sha256(p)) for _, p in clip_frame_paths(row, data_root)]
    text = json.dumps({"version": CLIP_VERSION, "sample": _sample_name(row),
                       "align": align_cfg.crop_key(), "clip": asdict(clip_cfg), "files": files},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _read_entry(path: Path) -> AlignedClip | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return AlignedClip(z["frames"], z["key_frames"], z["points"], meta["landmark_source"],
                               int(meta["n_source_frames"]))
    except (FileNotFoundError, KeyError, ValueError, OSError):
        # A missing or damaged entry (e.g. from an interrupted write) is recomputed.
        return None


def _write_entry(path: Path, clip: AlignedClip) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    meta = {"landmark_source": clip.landmark_source, "n_source_frames": clip.n_source_frames}
    np.savez(tmp, frames=clip.frames, key_frames=clip.key_frames, points=clip.points,
             meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)


def default_clip_dir() -> Path:
    """``work_dir()/clips`` (:func:`merlib.paths.work_dir`)."""
    from merlib.paths import work_dir

    return work_dir() / "clips"


@dataclass(frozen=True)
class ClipSet:
    """Aligned clips of many samples.

    Attributes
    ----------
    X : ndarray of shape (n_samples, T, S, S), uint8
    key_frames : ndarray of shape (n_samples, 2, S, S), uint8
        Aligned onset and apex frames.
    meta : DataFrame
        The input rows that were aligned, in order (index reset), plus
        ``landmark_source`` and ``n_source_frames``.
    report : DataFrame
        The rows that failed: dataset, subject, sample, reason (nothing is dropped
        silently).
    stats : dict
        ``cached``, ``computed``, ``failed``, ``seconds``.
    """

    X: np.ndarray
    key_frames: np.ndarray
    meta: pd.DataFrame
    report: pd.DataFrame
    stats: dict[str, Any]


def load_clips(table: pd.DataFrame, data_root: str | os.PathLike,
               align_cfg: AlignConfig = AlignConfig(), clip_cfg: ClipConfig = ClipConfig(), *,
               cache_dir: str | os.PathLike | None = None, progress: bool = False) -> ClipSet:
    """Aligned clips of every row of a canonical sample table, through the cache.

    Parameters
    ----------
    table : DataFrame
        Canonical rows (:data:`ROW_COLUMNS`), e.g. the MEGC2019 composite.
    data_root : path
    align_cfg, clip_cfg
    cache_dir : path, optional
        Default :func:`default_clip_dir`; one ``<key>.npz`` per sample.
    progress : bool

    Returns
    -------
    ClipSet
        Rows whose clip cannot be aligned are in ``report`` with the reason.
    """
    missing = [c for c in ROW_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"table: missing columns {missing}; expected the canonical sample columns")
    t0 = time.perf_counter()
    cache = Path(cache_dir) if cache_dir is not None else default_clip_dir()
    rows = table.reset_index(drop=True).to_dict("records")
    clips, kept, failed = [], [], []
    cached = computed = 0
    iterator = rows
    if progress:
        from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

        iterator = tqdm(rows, desc="aligned clips")
    for i, row in enumerate(iterator):
        try:
            path = cache / f"{clip_key(row, data_root, align_cfg, clip_cfg)}.npz"
            clip = _read_entry(path)
            if clip is None:
                clip = align_clip(row, data_root, align_cfg, clip_cfg)
                _write_entry(path, clip)
                computed += 1
            else:
                cached += 1
        except (ClipError, DataLayoutError, FrameReadError, ImageFormatError) as err:
            failed.append({"dataset": row["dataset"], "subject": row["subject"], "sample": row["sample"],
                           "reason": str(err)})
            continue
        clips.append(clip)
        kept.append(i)
    meta = table.reset_index(drop=True).iloc[kept].reset_index(drop=True).copy()
    meta["landmark_source"] = [c.landmark_source for c in clips]
    meta["n_source_frames"] = [c.n_source_frames for c in clips]
    s, t = clip_cfg.size, clip_cfg.n_frames
    X = np.stack([c.frames for c in clips]) if clips else np.zeros((0, t, s, s), np.uint8)
    K = np.stack([c.key_frames for c in clips]) if clips else np.zeros((0, 2, s, s), np.uint8)
    report = pd.DataFrame(failed, columns=["dataset", "subject", "sample", "reason"])
    return ClipSet(X, K, meta, report, {"cached": cached, "computed": computed, "failed": len(failed),
                                        "seconds": time.perf_counter() - t0})


def composite_clips(crops_meta: pd.DataFrame, data_root: str | os.PathLike,
                    align_cfg: AlignConfig = AlignConfig(), clip_cfg: ClipConfig = ClipConfig(), *,
                    cache_dir: str | os.PathLike | None = None, progress: bool = False) -> ClipSet:
    """Clips of the composite samples of a crop set, in the crop set's order.

    Parameters
    ----------
    crops_meta : DataFrame
        ``CropSet.meta`` of the composite (dataset, subject, sample).
    data_root : path
        The root the crops came from (its MEGC2019 composite gives onset, apex, offset).

    Raises
    ------
    ConfigError
        A crop's sample is not in the composite of ``data_root``.
    """
    return load_clips(composite_rows(crops_meta, data_root), data_root, align_cfg, clip_cfg,
                      cache_dir=cache_dir, progress=progress)


def composite_rows(crops_meta: pd.DataFrame, data_root: str | os.PathLike) -> pd.DataFrame:
    """The canonical composite rows (:data:`ROW_COLUMNS`) of a crop set's samples, in the
    crop set's order.

    Raises
    ------
    ConfigError
        A crop's sample is not in the composite of ``data_root``.
    """
    from merlib.data.composite import megc2019_composite

    table = megc2019_composite(data_root, allow_missing=True).table
    key = ["dataset", "subject", "sample"]
    want = crops_meta[key].astype(str).reset_index(drop=True)
    have = table.assign(**{k: table[k].astype(str) for k in key})
    merged = want.merge(have, on=key, how="left", indicator=True, sort=False)
    absent = merged["_merge"] == "left_only"
    if absent.any():
        r = merged[absent].iloc[0]
        raise ConfigError(f"crops_meta: {r['dataset']}/{r['subject']}/{r['sample']} is not in the "
                          f"MEGC2019 composite of {data_root}; {int(absent.sum())} crop(s) unmatched")
    return merged.drop(columns="_merge")
