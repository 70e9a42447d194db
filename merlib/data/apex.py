"""Estimate a clip's apex frame from its pixels, where the annotation gives no usable one.

The owners' sheets have holes: CASME II writes ``/`` where no apex was coded, and SAMM's
shipped sheet has apex frames outside their clip's onset..offset range (typing errors;
the frames on disk run from onset to offset, so such an apex has no file). The readers
never stop on such a cell: they estimate the apex here and flag the row
(:data:`FLAGS`), and the flag travels with the sample to every output.

Method ``"motion"`` (the default): the frame of peak facial motion relative to the onset.

1. The face box is found once, on the onset frame, with dlib's HOG detector
   (:func:`merlib.faces.pipeline.detect_boxes`), widened by :data:`BOX_MARGIN` per side;
   the whole frame is used when no face is found (``ApexEstimate.box`` is then None).
2. Every frame is cut to that box and shrunk (area averaging) so its longer side is at
   most :data:`FLOW_SIDE` pixels: micro-expression motion stays above a pixel, and
   the flow costs a few milliseconds per frame.
3. Dense optical flow from the onset crop to each later crop: OpenCV's Farneback
   algorithm (:func:`cv2.calcOpticalFlowFarneback`, parameters :data:`FARNEBACK`).
   The median flow vector of each frame (the head's translation, a slow drift in
   high-speed recordings) is subtracted, so only motion *of* the face remains.
4. A micro-expression moves a small part of the face (brows, mouth corners). The score
   of a frame is the mean flow magnitude over the :data:`TOP_SHARE` of box pixels that
   move most over the whole clip; averaging only there keeps the still cheeks and
   background from diluting the signal with noise.
5. The apex is the frame of the highest score (the earliest one on a tie). A clip in
   which nothing moves (every score below :data:`MIN_MOTION`) has no peak to find: the
   middle frame is taken instead, and the estimate says so (method ``"middle"``).

Method ``"middle"``: the middle frame between the onset and the last frame, the paper's
rule for SMIC (no apex annotation).

Validated on SynthME, whose true apex per clip is known (``SYNTHME_truth.csv``); see
:func:`validate_on_truth` and the data chapter of the book for the measured shares.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np
import pandas as pd

from merlib.errors import ConfigError, DataLayoutError

#: Apex estimation methods, the readers' ``apex_fallback`` choices.
APEX_METHODS: tuple[str, ...] = ("motion", "middle")
#: The flag a row gets when its apex was estimated, per method.
FLAGS: dict[str, str] = {m: f"apex_estimated:{m}" for m in APEX_METHODS}
#: Longest side of the face crop the flow is computed on, pixels.
FLOW_SIDE = 128
#: The detector's face box is widened by this fraction of its size on each side (the
#: brows and chin sit at the box's edges).
BOX_MARGIN = 0.10
#: Share of the crop's pixels (those that move most over the clip) a frame's score averages.
TOP_SHARE = 0.10
#: Scores below this (pixels of the shrunk crop) are no motion: identical frames give
#: ~1e-6, sensor noise alone ~0.05 and a micro-expression 0.3-1.
MIN_MOTION = 0.01
#: :func:`cv2.calcOpticalFlowFarneback` parameters: a 3-level pyramid halving each time,
#: 15-pixel averaging windows, 3 iterations, 5-pixel polynomial neighbourhoods.
FARNEBACK: dict[str, float | int] = {
    "pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5,
    "poly_sigma": 1.2, "flags": 0,
}

#: A frame given by its file, or already in memory: uint8 (H, W) grey or (H, W, 3) BGR.
Frame = Union[str, "os.PathLike[str]", np.ndarray]


@dataclass(frozen=True)
class ApexEstimate:
    """Where a clip peaks.

    Attributes
    ----------
    index : int
        Position of the apex in the frame sequence given (0-based).
    frame : int
        Its frame number: ``frame_numbers[index]`` when frame numbers were given, else
        ``index``.
    scores : ndarray of shape (n_frames,), float64
        Motion score per frame (mean flow magnitude in pixels of the shrunk crop); NaN
        before the onset, and everywhere for method ``"middle"``.
    method : {"motion", "middle"}
        How the apex was found: ``"middle"`` also when ``"motion"`` was asked for and
        nothing moved (:data:`MIN_MOTION`).
    box : tuple of int or None
        Face box ``x1, y1, x2, y2`` (frame pixels, margin included) the motion was
        measured in; None when the whole frame was used.
    """

    index: int
    frame: int
    scores: np.ndarray
    method: str
    box: tuple[int, int, int, int] | None

    @property
    def flag(self) -> str:
        """The flag of a sample whose apex is this estimate (:data:`FLAGS`)."""
        return FLAGS[self.method]


def check_method(method: str, name: str = "apex_fallback") -> str:
    """Return ``method`` if it is one of :data:`APEX_METHODS`, else raise ConfigError."""
    if method not in APEX_METHODS:
        raise ConfigError(f"{name}: expected one of {list(APEX_METHODS)}, got {method!r}")
    return method


def _as_grey(frame: Frame, position: int) -> np.ndarray:
    if isinstance(frame, np.ndarray):
        image = frame
        if image.dtype != np.uint8:
            raise ConfigError(f"frames[{position}]: expected uint8 pixels, got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 3:
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if image.ndim != 2:
            raise ConfigError(
                f"frames[{position}]: expected shape (H, W) or (H, W, 3), got {image.shape}"
            )
        return image
    # Lazily: merlib.faces imports merlib.data, not the other way round.
    from merlib.faces.pipeline import read_grey

    return read_grey(frame)


def _grey_frames(frames: Iterable[Frame], start: int = 0) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames, start=start):
        yield _as_grey(frame, i)


def face_box(grey: np.ndarray, margin: float = BOX_MARGIN) -> tuple[int, int, int, int] | None:
    """The largest dlib face box in ``grey``, widened by ``margin``; None when no face.

    Detection runs on a copy shrunk to 640 pixels, then with one upsampling if that
    found nothing (small faces).
    """
    from merlib.faces.pipeline import detect_boxes

    boxes = np.empty((0, 4), np.int64)
    for upsample in (0, 1):
        boxes = detect_boxes(grey, upsample, max_side=640)
        if len(boxes):
            break
    if not len(boxes):
        return None
    x1, y1, x2, y2 = (int(v) for v in max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])))
    h, w = grey.shape
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    x1, y1 = max(0, int(round(x1 - dx))), max(0, int(round(y1 - dy)))
    x2, y2 = min(w, int(round(x2 + dx))), min(h, int(round(y2 + dy)))
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None  # a sliver at the frame's edge: not a face to measure motion in
    return x1, y1, x2, y2


def _crop(grey: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    if box is not None:
        x1, y1, x2, y2 = box
        grey = grey[y1:y2, x1:x2]
    h, w = grey.shape
    f = FLOW_SIDE / max(h, w)
    if f >= 1.0:
        return np.ascontiguousarray(grey)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def motion_scores(crops: Sequence[np.ndarray], top_share: float = TOP_SHARE) -> np.ndarray:
    """Motion of each crop relative to the first one (steps 3-4 of the module docstring).

    Parameters
    ----------
    crops : sequence of ndarray of shape (h, w), uint8
        Face crops, the onset first, all the same shape.
    top_share : float, default=TOP_SHARE
        Share of the pixels, those moving most over the clip, averaged per frame.

    Returns
    -------
    ndarray of shape (len(crops),), float64
        0 for the onset crop; mean translation-free flow magnitude, pixels, for the rest.
    """
    if not 0.0 < top_share <= 1.0:
        raise ConfigError(f"top_share: expected a number in (0, 1], got {top_share!r}")
    onset = crops[0]
    mags = np.zeros((len(crops),) + onset.shape, np.float32)
    for i, crop in enumerate(crops[1:], start=1):
        if np.array_equal(crop, onset):
            continue  # the same picture: no motion (Farneback's estimate is not exactly 0)
        flow = cv2.calcOpticalFlowFarneback(onset, crop, None, **FARNEBACK)
        flow -= np.median(flow.reshape(-1, 2), axis=0)  # the head's translation
        mags[i] = np.hypot(flow[..., 0], flow[..., 1])
    if len(crops) == 1:
        return np.zeros(1)
    energy = mags[1:].mean(axis=0)
    moving = energy >= np.quantile(energy, 1.0 - top_share)
    return mags[:, moving].mean(axis=1).astype(np.float64)


def estimate_apex(
    frames: Sequence[Frame] | np.ndarray,
    onset_index: int = 0,
    method: str = "motion",
    *,
    frame_numbers: Sequence[int] | None = None,
    box: tuple[int, int, int, int] | None | str = "detect",
) -> ApexEstimate:
    """The apex of a clip: its frame of peak facial motion after ``onset_index``.

    Parameters
    ----------
    frames : sequence of path or ndarray, or ndarray of shape (n_frames, H, W[, 3])
        The clip in temporal order: frame files (read grey), or uint8 grey (H, W) or BGR
        (H, W, 3) images, all the same size. Files are read one at a time and only a
        small face crop of each is kept, so long videos fit in memory.
    onset_index : int, default=0
        Position of the onset (neutral reference) frame; the apex is searched at or
        after it.
    method : {"motion", "middle"}, default="motion"
        ``motion``: peak of the optical-flow motion score (see the module docstring).
        ``middle``: the middle frame between the onset and the last frame (no pixels
        are read).
    frame_numbers : sequence of int, optional
        Frame number of each frame, to fill :attr:`ApexEstimate.frame`.
    box : "detect", tuple of int or None, default="detect"
        Where to measure motion: ``"detect"`` finds the face on the onset frame with
        dlib; a tuple ``x1, y1, x2, y2`` is used as given; None uses the whole frame.

    Returns
    -------
    ApexEstimate

    Raises
    ------
    ConfigError
        Unknown method, ``onset_index`` outside the clip, ``frame_numbers`` of another
        length, frames that differ in size or are not uint8 images.
    FrameReadError
        A frame file is missing or unreadable (names it).

    Examples
    --------
    A textured square that slides right by 0, 1, 2, 3, 2, 1 pixels, then back to rest:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> still = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    >>> clip = np.repeat(still[None], 7, axis=0)
    >>> for i, dx in enumerate([0, 1, 2, 3, 2, 1, 0]):
    ...     clip[i, 16:48, 16:48] = np.roll(still, dx, axis=1)[16:48, 16:48]
    >>> est = estimate_apex(clip, box=None, frame_numbers=range(100, 107))
    >>> est.index, est.frame, est.flag
    (3, 103, 'apex_estimated:motion')
    >>> estimate_apex(clip, method="middle").index
    3
    """
    check_method(method, "method")
    n = len(frames)
    if n == 0:
        raise ConfigError("frames: expected at least one frame, got none")
    if isinstance(onset_index, bool) or not isinstance(onset_index, (int, np.integer)) \
            or not 0 <= onset_index < n:
        raise ConfigError(f"onset_index: expected an integer in 0..{n - 1}, got {onset_index!r}")
    onset_index = int(onset_index)
    if frame_numbers is not None and len(frame_numbers) != n:
        raise ConfigError(
            f"frame_numbers: expected {n} numbers (one per frame), got {len(frame_numbers)}"
        )

    def result(index: int, scores: np.ndarray, used_box, how: str = method) -> ApexEstimate:
        frame = int(frame_numbers[index]) if frame_numbers is not None else index
        return ApexEstimate(index, frame, scores, how, used_box)

    middle = onset_index + (n - 1 - onset_index) // 2
    if method == "middle":
        return result(middle, np.full(n, np.nan), None)

    greys = _grey_frames(frames[onset_index:], start=onset_index)
    first = next(greys)
    used_box = face_box(first) if isinstance(box, str) and box == "detect" else box
    if isinstance(used_box, str):
        raise ConfigError(f"box: expected 'detect', (x1, y1, x2, y2) or None, got {box!r}")
    crops = [_crop(first, used_box)]
    for i, grey in enumerate(greys, start=onset_index + 1):
        if grey.shape != first.shape:
            raise ConfigError(
                f"frames[{i}]: size {grey.shape} differs from the onset frame's {first.shape}"
            )
        crops.append(_crop(grey, used_box))
    scores = np.full(n, np.nan)
    scores[onset_index:] = motion_scores(crops)
    if not np.nanmax(scores) >= MIN_MOTION:
        return result(middle, scores, used_box, "middle")  # a still clip: no peak to find
    return result(onset_index + int(np.argmax(scores[onset_index:])), scores, used_box)


def estimate_clip_apex(
    frames: Sequence[tuple[int, Path]], onset: int, offset: int, method: str = "motion"
) -> ApexEstimate:
    """Estimate the apex of an annotated clip from its frames on disk.

    Parameters
    ----------
    frames : sequence of (int, Path)
        The clip folder's frames, sorted by number (:func:`merlib.data.frames.list_frames`).
    onset, offset : int
        Coded onset and offset frames. The frames within onset..offset are used; all of
        them when none lies there (the coded range itself is then off).
    method : {"motion", "middle"}

    Returns
    -------
    ApexEstimate
        ``frame`` is a frame number that has a file.
    """
    inside = [(n, p) for n, p in frames if onset <= n <= offset]
    used = inside or list(frames)
    return estimate_apex([p for _, p in used], 0, method, frame_numbers=[n for n, _ in used])


@dataclass(frozen=True)
class ApexValidation:
    """The estimator against a simulated dataset's true apexes.

    Attributes
    ----------
    clips : DataFrame
        One row per clip: dataset, subject, sample, n_frames, true_apex, estimated_apex,
        error (estimated - true, frames).
    tolerance : int
        Frames either side of the truth that count as a hit.
    method : str
    """

    clips: pd.DataFrame
    tolerance: int
    method: str

    def shares(self) -> pd.DataFrame:
        """Per dataset: clips, hits within the tolerance, their share, median |error|."""
        c = self.clips.assign(hit=self.clips["error"].abs() <= self.tolerance,
                              abs_error=self.clips["error"].abs())
        out = c.groupby("dataset", sort=False).agg(
            clips=("hit", "size"), within=("hit", "sum"), median_abs_error=("abs_error", "median"))
        out["share"] = out["within"] / out["clips"]
        return out[["clips", "within", "share", "median_abs_error"]]


def validate_on_truth(
    data_root: Path | str,
    datasets: Sequence[str] = ("casme2",),
    *,
    method: str = "motion",
    tolerance: int = 2,
    max_clips: int | None = None,
    seed: int = 0,
) -> ApexValidation:
    """Run :func:`estimate_clip_apex` on SynthME clips and compare with the true apex.

    Parameters
    ----------
    data_root : path
        A SynthME root (holds ``SYNTHME_truth.csv``).
    datasets : sequence of str, default=("casme2",)
        Datasets whose clips are checked (those with frames: not JAFFE).
    method : {"motion", "middle"}, default="motion"
    tolerance : int, default=2
        An estimate within +-``tolerance`` frames of the truth is a hit.
    max_clips : int, optional
        Check at most this many clips per dataset, drawn with ``seed`` (all by default).
    seed : int, default=0

    Returns
    -------
    ApexValidation

    Raises
    ------
    DataLayoutError
        ``data_root`` has no ``SYNTHME_truth.csv`` (real data has no known apex).
    """
    from merlib.data.frames import list_frames
    from merlib.data.index import frame_pattern, index_datasets
    from merlib.data.synth import TRUTH

    check_method(method, "method")
    root = Path(data_root)
    truth_file = root / TRUTH
    if not truth_file.is_file():
        raise DataLayoutError(f"{root}: no {TRUTH}; the apex can only be validated on SynthME")
    truth = pd.read_csv(truth_file, dtype={"subject": "string", "sample": "string"})
    truth = truth.dropna(subset=["apex_frame"])
    index = index_datasets(root, list(datasets))
    key = ["dataset", "subject", "sample"]
    clips = index.merge(truth[key + ["apex_frame"]].rename(columns={"apex_frame": "true_apex"}),
                        on=key, how="inner")
    # SMIC films each clip with several cameras; SynthME renders the high-speed one.
    clips = clips[(clips["dataset"] != "smic") | (clips["part"] == "HS")]
    if max_clips is not None:
        clips = pd.concat([g.sample(n=min(len(g), max_clips), random_state=seed)
                           for _, g in clips.groupby("dataset", sort=False)])
    rows = []
    for rec in clips.to_dict("records"):
        frames = list_frames(root / rec["clip_dir"], frame_pattern(rec["dataset"], rec["part"]))
        est = estimate_clip_apex(frames, int(rec["onset_frame"]), int(rec["offset_frame"]), method)
        rows.append({k: rec[k] for k in key} | {
            "n_frames": len(frames), "true_apex": int(rec["true_apex"]),
            "estimated_apex": est.frame, "error": est.frame - int(rec["true_apex"])})
    table = pd.DataFrame(rows, columns=key + ["n_frames", "true_apex", "estimated_apex", "error"])
    return ApexValidation(table, tolerance, method)


def _cell_text(cell: object) -> str:
    text = str(cell).strip()
    # Flags are ';'-separated: keep a stray ';' in a cell from splitting one.
    return text.replace(";", ",") if text else "empty"


def apex_from_cell(
    cell: object,
    onset: int,
    offset: int,
    frames: Sequence[tuple[int, Path]],
    method: str = "motion",
) -> tuple[int, list[str]]:
    """The apex of an annotated clip: the coded one when usable, else an estimate.

    Parameters
    ----------
    cell : object
        The sheet's apex cell as read (``46``, ``46.0``, ``"46"``, ``"/"``, ``""`` ...).
    onset, offset : int
        The row's coded onset and offset frames.
    frames : sequence of (int, Path)
        The clip folder's frames, sorted by number.
    method : {"motion", "middle"}, default="motion"
        How to estimate an unusable apex (:func:`estimate_clip_apex`).

    Returns
    -------
    apex : int
        The coded frame (whether or not it has a file: the reader reports that), or the
        estimate (a frame with a file).
    flags : list of str
        Empty for a usable coded apex. Otherwise why the cell was not used,
        ``apex_uncoded:<cell as written>`` (``/``, ``empty``, text) or
        ``apex_outside_clip:<frame>`` (a number outside onset..offset), then the
        estimate's flag (:data:`FLAGS`).
    """
    text = str(cell).strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if math.isfinite(number) and number == int(number):
        apex = int(number)
        if onset <= apex <= offset:
            return apex, []
        reason = f"apex_outside_clip:{apex}"
    else:
        reason = f"apex_uncoded:{_cell_text(cell)}"
    est = estimate_clip_apex(frames, onset, offset, method)
    return est.frame, [reason, est.flag]
