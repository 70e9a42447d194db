"""Spotting micro-expression intervals in a clip from facial motion.

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
fraction of the apex's. This module finds *where* movements are in an unannotated clip;
:mod:`merlib.data.apex` (optical flow from a known onset) then places each interval's
apex more precisely (:meth:`merlib.inference.predict.Predictor.predict_clip`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from merlib.faces.align import crop_transform, target_eye_centres


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
