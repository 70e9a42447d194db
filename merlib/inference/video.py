"""Frame sources (a video file, a folder of frames) and a face tracker for clips.

A *frame source* yields :class:`Frame` objects in order and knows its frame rate. Two
are here:

- :class:`CaptureSource`: anything OpenCV's ``cv2.VideoCapture`` opens. Built from a
  file path it reads a video file; the same class takes a camera index
  (``CaptureSource(0)``), which only changes what ``VideoCapture`` is given. Camera
  capture is not tested anywhere in merlib (no camera on the machines it is built on).
- :class:`FolderSource`: the frame files of a folder, sorted by the number in their
  names (the datasets' layout), at a frame rate the caller states.

:func:`open_source` picks one for a path. Each source can be iterated more than once
(the predictor reads a clip once to spot and classify, and again to annotate).

:class:`FaceTracker` finds the face with dlib's HOG detector only every
``detect_every`` frames (the costly step, ~8-15 ms on a 640x480 frame) and in between
fits the 68 landmarks (~3 ms) in the previous frame's box, moved with the face.

:func:`render_sample_video` writes a dataset sample's frames as a video file (lossless
FFV1 by default, or MJPG as a camera would give them), with still frames before and
after: the input of the end-to-end tests and of the timing chapter.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from merlib.data.frames import list_frames
from merlib.errors import MerlibError
from merlib.faces import landmarks as lm
from merlib.faces.align import to_grey
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import FRAME_NUMBER, detect_boxes, read_frame

#: File suffixes read as a video file; anything else that is a file is tried as an image.
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class VideoReadError(MerlibError, OSError):
    """A video or frame folder cannot be opened or decoded (the message names it)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes
    ----------
    index : int
        0-based position in the source.
    time_s : float
        ``index / fps``.
    image : ndarray of shape (H, W) or (H, W, 3), uint8
        As decoded (BGR for colour).
    """

    index: int
    time_s: float
    image: np.ndarray


class CaptureSource:
    """Frames from ``cv2.VideoCapture``: a video file, or a camera index (untested here).

    Parameters
    ----------
    target : path or int
        A video file, or a camera index.
    fps : float, optional
        Overrides the rate the container reports (a camera or a file with a broken
        header may report 0).

    Raises
    ------
    VideoReadError
        The file is missing, OpenCV cannot open it, or it yields no frame.
    """

    def __init__(self, target: str | os.PathLike | int, fps: float | None = None) -> None:
        self.target = target if isinstance(target, int) else Path(target)
        self.name = f"camera {target}" if isinstance(target, int) else str(self.target)
        if not isinstance(target, int) and not self.target.is_file():
            raise VideoReadError(f"{self.name}: video file not found")
        cap = self._open()
        reported = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, _ = cap.read()
        cap.release()
        if not ok:
            raise VideoReadError(f"{self.name}: no frame could be decoded (not a video OpenCV can read)")
        if fps is None and not reported > 0:
            raise VideoReadError(f"{self.name}: reports no frame rate; pass fps")
        self.fps = float(fps if fps is not None else reported)
        self.n_frames: int | None = count if count > 0 and not isinstance(target, int) else None

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.target if isinstance(self.target, int) else str(self.target))
        if not cap.isOpened():
            raise VideoReadError(f"{self.name}: OpenCV cannot open it")
        return cap

    def __iter__(self) -> Iterator[Frame]:
        cap = self._open()
        try:
            i = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                yield Frame(i, i / self.fps, image)
                i += 1
        finally:
            cap.release()


class FolderSource:
    """The frame files of one folder, in frame-number order, taken as a clip.

    Parameters
    ----------
    folder : path
    fps : float, default=30.0
        The clip's frame rate (a folder of files does not record one).
    pattern : str
        Regular expression with one group, the frame number (default: any name ending
        in a number and an image suffix, as every dataset names its frames).

    Raises
    ------
    VideoReadError
        The folder holds no frame file.
    """

    def __init__(self, folder: str | os.PathLike, fps: float = 30.0, pattern: str = FRAME_NUMBER) -> None:
        self.folder = Path(folder)
        self.name = str(self.folder)
        if not fps > 0:
            raise VideoReadError(f"{self.name}: fps must be > 0, got {fps}")
        try:
            self.paths = [p for _, p in list_frames(self.folder, pattern)]
        except MerlibError as err:
            raise VideoReadError(f"{self.name}: no frame files ({err})") from err
        self.fps = float(fps)
        self.n_frames: int | None = len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            try:
                image = read_frame(path)
            except MerlibError as err:
                raise VideoReadError(str(err)) from err
            yield Frame(i, i / self.fps, image)


def open_source(path: str | os.PathLike, fps: float | None = None) -> CaptureSource | FolderSource:
    """A frame source for a video file or a folder of frames.

    Parameters
    ----------
    path : path
    fps : float, optional
        Frame rate of a folder (default 30) or an override for a video file.
    """
    p = Path(path)
    if p.is_dir():
        return FolderSource(p, fps if fps is not None else 30.0)
    if not p.exists():
        raise VideoReadError(f"{p}: no such file or folder")
    return CaptureSource(p, fps)


@dataclass(frozen=True)
class TrackedFace:
    """The face in one frame.

    Attributes
    ----------
    box : ndarray of shape (4,), int64
        ``x1, y1, x2, y2``.
    points : ndarray of shape (68, 2), float32
        Landmarks, frame pixels.
    detected : bool
        Whether the detector ran on this frame (else the box was carried over).
    """

    box: np.ndarray
    points: np.ndarray
    detected: bool


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, float(w)) * max(0.0, float(h))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Detect every ``detect_every`` frames, fit landmarks in a carried box in between.

    Parameters
    ----------
    cfg : AlignConfig
        Detection settings (``upsample``, ``retry_upsample``, ``detect_side``,
        ``min_face``).
    detect_every : int, default=15
        Frames between detector runs while the face is tracked.
    max_jump : float, default=0.25
        If the landmarks' centre moves more than this fraction of the box width in one
        frame, the track is distrusted and the detector runs on the next frame.
    keep_iou : float, default=0.5
        A detection overlapping the carried box by at least this (intersection over
        union) confirms it; a lower one replaces it.
    """

    def __init__(self, cfg: AlignConfig = AlignConfig(), detect_every: int = 15, max_jump: float = 0.25,
                 keep_iou: float = 0.5) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every: expected >= 1, got {detect_every}")
        self.cfg, self.detect_every, self.max_jump, self.keep_iou = cfg, detect_every, max_jump, keep_iou
        self.box: np.ndarray | None = None
        self._since = 0
        self._bias = np.zeros(2)
        self._misses = 0

    def _detect(self, grey: np.ndarray) -> np.ndarray | None:
        cfg = self.cfg
        side = cfg.detect_side if cfg.detect_side is not None and max(grey.shape) > cfg.detect_side else None
        for up in dict.fromkeys((cfg.upsample, cfg.retry_upsample)):
            boxes = detect_boxes(grey, up, side)
            if len(boxes):
                area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                box = boxes[int(np.argmax(area))]
                return box if box[2] - box[0] >= cfg.min_face else None
        return None

    def update(self, grey: np.ndarray) -> TrackedFace | None:
        """The face of the next frame (``grey`` (H, W) uint8), or None when there is none."""
        detected = False
        if self.box is None or self._since >= self.detect_every:
            box = self._detect(grey)
            self._since = 0
            if box is None and self.box is not None:
                self._misses += 1
                if self._misses >= 2:
                    # Two scheduled detections in a row found nothing: the face has
                    # left (or turned away); stop fitting landmarks to an empty box.
                    self.box, self._misses = None, 0
                    return None
            if box is not None:
                detected, self._misses = True, 0
                # The detector's box of a still face wobbles by a tenth of its size, and
                # the landmark fit follows the box: keep the carried box while the
                # detection confirms it, so re-detection adds no motion of its own.
                if self.box is None or box_iou(box, self.box) < self.keep_iou:
                    self.box = box
            elif self.box is None:
                return None  # nothing found and nothing to carry over
        self._since += 1
        points = lm.landmarks_68(grey, self.box)
        box_centre = np.array([self.box[0] + self.box[2], self.box[1] + self.box[3]]) / 2.0
        centre = points.mean(0).astype(np.float64)
        tracked = TrackedFace(self.box.copy(), points, detected)
        if detected:
            # Where the landmarks sit inside a detector box; kept to place carried boxes.
            self._bias = centre - box_centre
        else:
            # Move the box with the landmarks (its size stays the detector's scale).
            shift = centre - self._bias - box_centre
            if np.hypot(*shift) > self.max_jump * float(self.box[2] - self.box[0]):
                self._since = self.detect_every  # distrust the fit: detect on the next frame
            self.box = np.round(self.box + np.tile(shift, 2)).astype(np.int64)
        return tracked


def grey_of(frame: Frame) -> np.ndarray:
    """The frame as uint8 (H, W) grey (the conversion the pre-processing uses)."""
    return to_grey(frame.image, source=f"frame {frame.index}")


def draw_annotation(image: np.ndarray, face: TrackedFace | None, lines: list[str],
                    active: bool) -> np.ndarray:
    """A BGR copy of ``image`` with the face box (red while inside a spotted interval,
    green otherwise) and text lines at the top left."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    if face is not None:
        x1, y1, x2, y2 = (int(v) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255) if active else (0, 200, 0), 2)
    for k, text in enumerate(lines):
        y = 22 + 22 * k
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


@dataclass(frozen=True)
class RenderedClip:
    """A dataset sample's frames written as a video file, and where its truth lies.

    Attributes
    ----------
    path : Path
        The video file.
    fps : float
    start, apex, end : int
        The annotated onset, apex and offset as 0-based frames of the video.
    n_frames : int
    apex_path : Path
        The sample's apex frame file in the data root (the crop LOSO sees).
    """

    path: Path
    fps: float
    start: int
    apex: int
    end: int
    n_frames: int
    apex_path: Path


#: Lossless (FFV1): the decoded frames are the frame files' pixels, so an apex frame of
#: the video is aligned exactly as pre-processing aligns the file. ``MJPG`` gives a
#: lossy copy, as a camera or a phone would.
LOSSLESS_FOURCC = "FFV1"


def render_sample_video(data_root: str | os.PathLike, dataset: str, subject: str, sample: str,
                        out: str | os.PathLike, *, fps: float = 60.0, pad: int = 20,
                        fourcc: str = LOSSLESS_FOURCC) -> RenderedClip:
    """Write a sample's onset-to-offset frames as a video, padded with still frames.

    The first frame is repeated ``pad`` times before the clip and the last ``pad`` times
    after it, so the movement starts and ends inside the video (a spotter needs neutral
    frames on both sides).

    Parameters
    ----------
    data_root : path
    dataset, subject, sample : str
        A row of the dataset's canonical table (:func:`merlib.data.index.read_dataset`).
    out : path
        The video file (``.avi`` suits both FFV1 and MJPG).
    fps : float, default=60
        At 60 fps a 29-frame SynthME clip lasts about 0.5 s, as a micro-expression does.
    pad : int, default=20
    fourcc : str, default="FFV1"

    Returns
    -------
    RenderedClip

    Raises
    ------
    VideoReadError
        The sample is not in the dataset's table, its frames are missing, or OpenCV
        cannot write ``out`` with ``fourcc``.
    """
    from merlib.data.index import read_dataset

    root = Path(data_root)
    table = read_dataset(root, dataset)
    row = table[(table["subject"] == subject) & (table["sample"] == sample)]
    if row.empty:
        raise VideoReadError(f"{dataset} under {root}: no sample {subject}/{sample}")
    row = row.iloc[0]
    frames = dict(list_frames(root / str(row["clip_dir"]), FRAME_NUMBER))
    onset, apex, offset = int(row["onset_frame"]), int(row["apex_frame"]), int(row["offset_frame"])
    missing = [n for n in range(onset, offset + 1) if n not in frames]
    if missing:
        raise VideoReadError(f"{root / str(row['clip_dir'])}: frames {missing[:5]} of {onset}-{offset} are missing")
    images = [read_frame(frames[n]) for n in range(onset, offset + 1)]
    seq = [images[0]] * pad + images + [images[-1]] * pad
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), images[0].ndim == 3)
    if not writer.isOpened():
        raise VideoReadError(f"{path}: OpenCV cannot write a {fourcc} video here")
    try:
        for image in seq:
            writer.write(image)
    finally:
        writer.release()
    return RenderedClip(path, float(fps), pad, pad + apex - onset, pad + offset - onset, len(seq),
                        root / str(row["apex_path"]))
