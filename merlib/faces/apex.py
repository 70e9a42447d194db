"""Where a clip peaks: its apex frame, from the motion of the face (pre-processing).

One module answers "which frame is the apex?" for every caller:

- the readers, where an annotation gives no usable apex (CASME II's ``/``, SAMM's typing
  errors outside onset..offset): :func:`clip_apex` is the ``"motion"`` estimator that
  :mod:`merlib.data.apex` applies to such a cell (the package root wires it in, so that
  the readers need no face detector);
- ``merlib predict`` on a video, where nothing is annotated: :func:`spot` finds *where*
  movements are, then :func:`estimate_apex` places each interval's apex from its start.

Apex from a known onset (:func:`estimate_apex`)
-----------------------------------------------

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

Checked against SynthME's known apexes by :func:`merlib.studies.apex.validate_on_truth`
(the data chapter of the book shows the measured shares).

Spotting in an unannotated clip (:func:`spot`)
----------------------------------------------

Each frame's face is resampled into a small grey crop (:class:`MotionCropper`): aligned
on *smoothed* landmarks (dlib's frame-to-frame landmark jitter is as large as a
micro-expression's motion), blurred, with a fixed mask over the eyes (blinks are larger
than any micro-expression and are not one).

The motion signal is a feature difference in a sliding window (after Moilanen, Zhao &
Pietikainen 2014, ICPR, "Spotting rapid facial movements from videos using appearance
features"): frame ``t`` is compared with the frames ``k`` before and ``k`` after it, the
window's ends, taken as the neutral reference. A movement shorter than ``2k`` frames
that returns to neutral gives a peak at its apex; a slow change of pose or lighting,
present at both ends, does not. The crop is cut into blocks and a difference is the mean
absolute difference of the blocks that moved most (a micro-expression is local: a mouth
corner, a brow). The signal is the smallest of three differences: from the mean of the
two ends (a steady drift cancels in it) and from each end alone. Moilanen et al. use the
mean only; it leaves a side lobe about half the apex's height ``k`` frames either side
of a movement, where one end sits on the apex and the frame itself is neutral, and a
movement longer than ``k`` frames raises that lobe to most of the apex's height. On 32
SynthME clips of one expression each (60 fps, 100 neutral frames either side), the mean
alone spotted a second, false interval on 10; the three-way minimum on none (one clip
still has a spurious interval in its first frames, where the tracker settles).

Peaks above a threshold (a fraction of the way from the clip's median to its maximum,
and a floor above the median) are apexes. Each apex's interval is where the face departs from a
neutral reference taken ``k`` frames before (for the start) and after (for the end):
the first frames either side whose difference from that reference falls below a
fraction of the apex's. :func:`spot` finds *where* movements are; :func:`estimate_apex` (optical flow from
the interval's start) then places each interval's apex more precisely
(:meth:`merlib.inference.predict.Predictor.predict_clip`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from merlib.data.apex import APEX_METHODS, FLAGS, check_method, frames_in_clip
from merlib.errors import ConfigError
from merlib.faces.align import crop_transform, target_eye_centres
from merlib.faces.pipeline import detect_boxes, read_grey

__all__ = ["APEX_METHODS", "ApexEstimate", "estimate_apex", "estimate_clip_apex", "clip_apex",
           "motion_scores", "face_box", "SpotConfig", "MotionCropper", "Interval", "spot",
           "motion_signal", "block_difference"]

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
    return read_grey(frame)


def _grey_frames(frames: Iterable[Frame], start: int = 0) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames, start=start):
        yield _as_grey(frame, i)


def face_box(grey: np.ndarray, margin: float = BOX_MARGIN) -> tuple[int, int, int, int] | None:
    """The largest dlib face box in ``grey``, widened by ``margin``; None when no face.

    Detection runs on a copy shrunk to 640 pixels, then with one upsampling if that
    found nothing (small faces).
    """
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
    used = frames_in_clip(frames, onset, offset)
    return estimate_apex([p for _, p in used], 0, method, frame_numbers=[n for n, _ in used])


def clip_apex(frames: Sequence[tuple[int, Path]], onset: int, offset: int) -> tuple[int, str]:
    """The ``"motion"`` estimator of :mod:`merlib.data.apex`: (apex frame number, flag).

    :func:`estimate_clip_apex` with method ``"motion"``; the flag is
    ``apex_estimated:motion``, or ``apex_estimated:middle`` for a clip in which nothing
    moved.
    """
    est = estimate_clip_apex(frames, onset, offset, "motion")
    return est.frame, est.flag



# --- Spotting in an unannotated clip --------------------------------------------

@dataclass(frozen=True)
class SpotConfig:
    """Settings of the motion crop and of the spotting.

    Parameters
    ----------
    crop_size : int, default=64
        Side of the motion crop, pixels.
    side_iod : float, default=2.5
        Crop side in inter-ocular distances (as the classifier's crop).
    blur_sigma : float, default=1.0
        Gaussian blur of the motion crop, pixels (sensor and codec noise).
    smooth : float, default=0.3
        Weight of the newest landmarks in their exponential moving average.
    blocks : int, default=6
        The crop is cut into ``blocks x blocks`` cells.
    top_fraction : float, default=1/6
        Fraction of cells, those with the largest difference, averaged.
    temporal_frames : int, default=5
        The crops are averaged over this many consecutive frames first: sensor noise
        is independent from frame to frame, a movement is not (its rise takes several
        frames even at 30 fps).
    half_window_s : float, default=0.25
        ``k`` in seconds: half the longest movement spotted (micro-expressions last
        under 0.5 s).
    min_window : int, default=3
        ``k`` in frames is at least this.
    peak_fraction : float, default=0.3
        A peak must rise this fraction of the way from the clip's median to its maximum.
    min_rise : float, default=0.25
        ...and at least this many grey levels above the median (a clip without any
        movement has a flat, low signal: its largest wiggle is not an expression).
    edge_fraction : float, default=0.2
        The interval's ends: the difference from the neutral reference falls below
        this fraction of the apex's.
    margin_s : float, default=0.1
        No apex is reported in the first or last ``margin_s`` seconds of a clip (at
        least one frame, less than ``k``): there the window is cut off on one side, and
        the tracker is still settling (seen: the first frame of an MJPG video decoded a
        few grey levels away from the identical frames after it, and the smoothed
        landmarks then took about ten frames to settle; a spurious interval at frame 1).
    """

    crop_size: int = 64
    side_iod: float = 2.5
    blur_sigma: float = 1.0
    smooth: float = 0.3
    blocks: int = 6
    top_fraction: float = 1 / 6
    temporal_frames: int = 5
    half_window_s: float = 0.25
    min_window: int = 3
    peak_fraction: float = 0.3
    min_rise: float = 0.25
    edge_fraction: float = 0.2
    margin_s: float = 0.1

    def window(self, fps: float) -> int:
        """``k`` in frames at ``fps``."""
        return max(self.min_window, int(round(self.half_window_s * fps)))


class MotionCropper:
    """Landmarks of successive frames -> small aligned crops for the motion signal.

    Parameters
    ----------
    cfg : SpotConfig
    """

    def __init__(self, cfg: SpotConfig = SpotConfig()) -> None:
        self.cfg = cfg
        self._points: np.ndarray | None = None
        s = cfg.crop_size
        # A fixed mask (the same pixels in every frame): a mask moving with each frame's
        # landmarks would itself be motion. Ellipses over the eyes' target places.
        self.mask = np.ones((s, s), np.float32)
        iod = s / cfg.side_iod
        for x, y in target_eye_centres(s, cfg.side_iod, 0.24):
            cv2.ellipse(self.mask, (int(round(x)), int(round(y))), (int(round(0.35 * iod)), int(round(0.22 * iod))),
                        0, 0, 360, 0.0, -1)

    def reset(self) -> None:
        """Forget the smoothed landmarks (a new face or a new clip)."""
        self._points = None

    def __call__(self, grey: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The motion crop of one frame: float32 (crop_size, crop_size), eyes zeroed.

        Parameters
        ----------
        grey : ndarray of shape (H, W), uint8
        points : ndarray of shape (68, 2)
            This frame's landmarks.
        """
        pts = np.asarray(points, np.float64)
        a = self.cfg.smooth
        self._points = pts if self._points is None else a * pts + (1 - a) * self._points
        s = self.cfg.crop_size
        m = crop_transform(self._points, s, side_iod=self.cfg.side_iod, eye_row=0.24)
        crop = cv2.warpAffine(grey, m, (s, s), flags=cv2.INTER_AREA if m[0, 0] < 1 else cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        if self.cfg.blur_sigma > 0:
            crop = cv2.GaussianBlur(crop, (0, 0), self.cfg.blur_sigma)
        # Zero-mean over the face: a global brightness change (lighting flicker, auto
        # exposure) moves every pixel alike and is not facial motion.
        crop -= float((crop * self.mask).sum() / self.mask.sum())
        return crop * self.mask


def block_difference(a: np.ndarray, b: np.ndarray, cfg: SpotConfig = SpotConfig()) -> np.ndarray:
    """Mean over the most-moved cells of ``|a - b|``, grey levels.

    Parameters
    ----------
    a, b : ndarray of shape (..., S, S)
        Motion crops; leading axes broadcast.

    Returns
    -------
    ndarray of shape (...)
    """
    diff = np.abs(a - b)
    n, s = cfg.blocks, diff.shape[-1]
    cut = s - s % n
    cells = diff[..., :cut, :cut].reshape(*diff.shape[:-2], n, cut // n, n, cut // n).mean(axis=(-3, -1))
    cells = cells.reshape(*diff.shape[:-2], n * n)
    top = max(1, int(round(cfg.top_fraction * n * n)))
    return np.sort(cells, axis=-1)[..., -top:].mean(-1)


def motion_signal(crops: np.ndarray, k: int, cfg: SpotConfig = SpotConfig()) -> np.ndarray:
    """Difference of each frame from its window's ends (see the module docstring).

    Parameters
    ----------
    crops : ndarray of shape (n_frames, S, S), float32
    k : int
        Half window, frames; indices beyond the clip are clamped to its ends.

    Returns
    -------
    ndarray of shape (n_frames,), float64
        ``min(d(t, mean of ends), d(t, t - k), d(t, t + k))`` with ``d`` the
        :func:`block_difference`.
    """
    n = len(crops)
    t = np.arange(n)
    before, after = crops[np.clip(t - k, 0, n - 1)], crops[np.clip(t + k, 0, n - 1)]
    # Each end alone: a side lobe's frame is neutral like one of its ends, so one of
    # these is near zero there, while a true apex differs from both.
    signal = np.minimum.reduce([block_difference(crops, (before + after) / 2.0, cfg),
                                block_difference(crops, before, cfg), block_difference(crops, after, cfg)])
    return signal.astype(np.float64)


@dataclass(frozen=True)
class Interval:
    """One spotted movement, frame indices of the clip (0-based, inclusive).

    Attributes
    ----------
    start, apex, end : int
    score : float
        The motion signal at the apex.
    """

    start: int
    apex: int
    end: int
    score: float


def spot(crops: np.ndarray, fps: float, cfg: SpotConfig = SpotConfig(),
         valid: np.ndarray | None = None) -> tuple[list[Interval], np.ndarray]:
    """Spot the movements of a clip.

    Parameters
    ----------
    crops : ndarray of shape (n_frames, S, S), float32
        :class:`MotionCropper` output, one per frame.
    fps : float
    cfg : SpotConfig
    valid : ndarray of shape (n_frames,), bool, optional
        Frames with a face; an apex is never put on a frame without one.

    Returns
    -------
    intervals : list of Interval
        In time order; empty when nothing rose above the threshold.
    signal : ndarray of shape (n_frames,)
        The motion signal (:func:`motion_signal`).
    """
    n = len(crops)
    if n < 3:
        return [], np.zeros(n)
    k = min(cfg.window(fps), max(1, (n - 1) // 2))
    if cfg.temporal_frames > 1:
        crops = uniform_filter1d(crops, cfg.temporal_frames, axis=0, mode="nearest")
    signal = motion_signal(crops, k, cfg)
    base = float(np.median(signal))
    top = float(signal.max())
    threshold = max(base + cfg.peak_fraction * (top - base), base + cfg.min_rise)
    if top <= threshold:
        return [], signal
    # Peaks at least 2k apart: the side lobes a movement leaves k frames either side of
    # its apex (where one window end sits on the apex) are lower than the apex and closer.
    peaks, _ = find_peaks(np.concatenate([[-np.inf], signal, [-np.inf]]), height=threshold, distance=2 * k)
    peaks = peaks - 1
    margin = max(1, min(k - 1, int(round(cfg.margin_s * fps))))
    intervals = []
    for apex in peaks:
        if valid is not None and not valid[apex]:
            continue
        if apex < margin or apex > n - 1 - margin:
            continue  # at a clip's ends: see SpotConfig.margin_s
        start = _edge(crops, apex, -1, k, cfg)
        end = _edge(crops, apex, +1, k, cfg)
        intervals.append(Interval(int(start), int(apex), int(end), float(signal[apex])))
    return intervals, signal


def _edge(crops: np.ndarray, apex: int, step: int, k: int, cfg: SpotConfig) -> int:
    """The last frame from ``apex`` towards ``step`` still clearly away from neutral."""
    n = len(crops)
    ref_i = int(np.clip(apex + step * k, 0, n - 1))
    lo, hi = sorted((apex, ref_i))
    d = block_difference(crops[lo:hi + 1], crops[ref_i], cfg)
    d_apex = d[apex - lo]
    if d_apex <= 0:
        return apex
    i = apex
    while 0 <= i + step < n and (i + step - lo) in range(len(d)) and d[i + step - lo] > cfg.edge_fraction * d_apex:
        i += step
    return i
