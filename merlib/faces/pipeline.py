"""Apex frame -> aligned face crop + landmarks + a report entry, with documented fallbacks.

The steps of the paper (Figure 2): read the apex frame (A), grey it (B), find the face
and its 68 landmarks, cut the face square (C), level the eyes (D), mask the eyes (E).
Each step is a function of :mod:`merlib.faces.align` or of this module; :func:`process_frame`
composes them with the cache and never raises for a problem of the data: it returns a
status and a reason instead, which end up in the run report.

Fallbacks, in the order tried (each one named in the report's ``fallback`` column):

1. no face on the first attempt (a copy shrunk to ``detect_side``, ``upsample``):
   retry with ``retry_upsample``, on that copy then at full resolution
   (:func:`detection_attempts`);
2. several faces: keep the largest box;
3. still no usable face (none, or narrower than ``min_face``): reuse the landmarks of
   the nearest frame of the same clip, up to ``neighbour_frames`` away (the head
   barely moves between neighbouring frames of a 30-200 fps clip);
4. otherwise the sample fails (status ``failed``); a missing, empty, cut-short
   (:func:`truncation`) or undecodable frame fails at once.

Every crop then passes a quality check (:func:`merlib.faces.align.face_std` at least
``min_face_std``): a flat crop, such as a blank frame aligned with a neighbour's
landmarks, fails with its reason instead of becoming a training sample.
"""
from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from merlib.data.frames import list_frames
from merlib.errors import DataLayoutError, MerlibError
from merlib.faces import landmarks as lm
from merlib.faces.align import Aligned, ImageFormatError, align_face, face_std, to_grey
from merlib.faces.cache import FaceStore, file_sha256
from merlib.faces.config import AlignConfig

#: Any owners' frame name ends with its number (img46.jpg, 006_05562.jpg, image000001.bmp,
#: S005_001_00000011.png, 000.jpeg, img_0000.jpg); used to find a frame's neighbours.
FRAME_NUMBER = r".*?(\d+)\.(?:jpe?g|png|bmp|tiff?)"

STATUSES: tuple[str, ...] = ("ok", "fallback", "failed")


class FrameReadError(MerlibError, OSError):
    """A frame file is missing or cannot be decoded (the message names it)."""


#: Leading bytes of the image formats the datasets ship, and their names.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"BM", "BMP"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)


def image_format(data: bytes) -> str | None:
    """``"JPEG"``, ``"PNG"``, ``"BMP"`` or ``"TIFF"`` from a file's leading bytes; None
    for anything else (which OpenCV may still read, e.g. WebP)."""
    for magic, name in SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def truncation(data: bytes, fmt: str | None) -> str:
    """Why an image file's bytes are cut short ('' when they look whole).

    Checked from the file's structure, without decoding: a JPEG must hold the
    end-of-image marker after its last start-of-scan (entropy-coded data holds no other
    markers than RSTn, since a 0xFF byte there is stuffed as FF 00), a PNG its IEND
    chunk, an uncompressed BMP the pixel rows its header announces. OpenCV decodes a
    cut-short JPEG into a partly grey image and only prints "Premature end of JPEG file"
    on stderr; the other two fail with a message that names no file. TIFF (an offset
    table anywhere in the file) is left to the decoder, which fails on a cut-short one.

    Parameters
    ----------
    data : bytes
        The whole file.
    fmt : str or None
        From :func:`image_format`.
    """
    n = len(data)
    if fmt == "JPEG":
        sos = data.rfind(b"\xff\xda")
        if sos < 0:
            return f"truncated JPEG: no image data (no start-of-scan marker in {n} bytes)"
        if data.find(b"\xff\xd9", sos + 2) < 0:
            return f"truncated JPEG: no end-of-image marker after the image data ({n} bytes; file cut short?)"
    elif fmt == "PNG":
        if data.rfind(b"IEND\xaeB`\x82") < 0:
            return f"truncated PNG: no IEND chunk ({n} bytes; file cut short?)"
    elif fmt == "BMP":
        if n < 26:
            return f"truncated BMP: {n} bytes, shorter than its headers"
        offset, dib = struct.unpack_from("<II", data, 10)
        if dib == 12:  # OS/2 core header: 16-bit sizes, never compressed
            w, h, _, bpp = struct.unpack_from("<HHHH", data, 18)
            compression, size_image = 0, 0
        elif dib >= 40 and n >= 54:
            w, h, _, bpp, compression, size_image = struct.unpack_from("<iiHHII", data, 18)
        else:
            return f"truncated BMP: {n} bytes, shorter than its {dib}-byte header"
        if compression in (0, 3, 6):  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS: plain rows
            need = offset + (abs(w) * bpp + 31) // 32 * 4 * abs(h)
        else:  # run-length or embedded JPEG/PNG: the header's byte count, when given
            need = offset + size_image
        if n < need:
            return f"truncated BMP: {n} bytes, its header announces {need} (file cut short?)"
    return ""


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """A frame as stored: uint8 of shape (H, W) or (H, W, 3|4) (BGR order).

    Decoded strictly: an empty or cut-short file (:func:`truncation`) is an error, not
    the partial image a lenient decoder makes of it. An EXIF orientation is applied
    (:func:`exif_orientation`), so the frame is upright as a viewer shows it.

    Raises
    ------
    FrameReadError
        The file is missing, empty, cut short or not a decodable image.
    ImageFormatError
        The image is not 8-bit (e.g. a 16-bit PNG).
    """
    path = Path(path)
    if path.is_dir():
        raise FrameReadError(f"{path}: a folder, not an image file")
    if not path.is_file():
        raise FrameReadError(f"{path}: frame file not found")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FrameReadError(f"{path}: cannot read file ({err.strerror or err})") from None
    if not data:
        raise FrameReadError(f"{path}: empty file (0 bytes)")
    fmt = image_format(data)
    problem = truncation(data, fmt)
    if problem:
        raise FrameReadError(f"{path}: {problem}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        what = f"{fmt} data that cannot be decoded" if fmt else "not JPEG, PNG, BMP or TIFF data"
        raise FrameReadError(f"{path}: not a readable image ({what})")
    if image.dtype != np.uint8:
        raise ImageFormatError(f"{path}: expected an 8-bit image, got dtype {image.dtype}")
    return orient(image, exif_orientation(data, fmt))


def exif_orientation(data: bytes, fmt: str | None) -> int:
    """The EXIF orientation tag (1-8) of a JPEG or TIFF file; 1 (as stored) without one.

    ``cv2.IMREAD_UNCHANGED`` ignores the tag, so a frame a camera stored sideways would
    reach the detector sideways (and fail as "no face found") although every viewer
    shows it upright. Read with Pillow, which parses only the headers here.
    """
    if fmt not in ("JPEG", "TIFF") or (fmt == "JPEG" and b"Exif\x00\x00" not in data[:65536]):
        return 1
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            value = im.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return 1  # unreadable metadata: the pixels as stored
    return int(value) if value in range(1, 9) else 1


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (H, W[, C]) turned the way EXIF ``orientation`` (1-8) says it is shown."""
    if orientation in (5, 6, 7, 8):  # stored with rows and columns swapped
        image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE if orientation in (5, 6)
                           else cv2.ROTATE_90_COUNTERCLOCKWISE)
        return cv2.flip(image, 1) if orientation in (5, 7) else image
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation in (2, 4):
        return cv2.flip(image, 1 if orientation == 2 else 0)
    return image


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """:func:`read_frame` then :func:`~merlib.faces.align.to_grey`: uint8 (H, W)."""
    return to_grey(read_frame(path), source=str(path))


@dataclass(frozen=True)
class Detection:
    """The face found in one frame.

    Attributes
    ----------
    status : {"ok", "fallback", "failed"}
    points : ndarray of shape (68, 2), float32, or None
        Landmarks in the frame's pixels; None when failed.
    box : ndarray of shape (4,), int64, or None
        ``x1, y1, x2, y2`` of the face used.
    n_faces : int
        Faces the detector returned on the attempt that found any.
    reason : str
        Why the frame is not plainly ``ok`` ('' when it is).
    fallback : str
        What was done instead ('' when nothing).
    """

    status: str
    points: np.ndarray | None
    box: np.ndarray | None
    n_faces: int
    reason: str = ""
    fallback: str = ""


def detection_attempts(shape: tuple[int, int], cfg: AlignConfig) -> list[tuple[int | None, int]]:
    """The detector runs tried in order: ``(max_side or None for full size, upsample)``.

    1. the copy shrunk to ``detect_side`` with ``upsample``;
    2. the same copy with ``retry_upsample`` (when larger);
    3. the full-resolution frame with the larger of the two (when the frame was shrunk).
    """
    shrunk = cfg.detect_side is not None and max(shape) > cfg.detect_side
    side = cfg.detect_side if shrunk else None
    attempts = [(side, cfg.upsample)]
    if cfg.retry_upsample > cfg.upsample:
        attempts.append((side, cfg.retry_upsample))
    if shrunk:
        attempts.append((None, max(cfg.upsample, cfg.retry_upsample)))
    return attempts


def detect_boxes(grey: np.ndarray, upsample: int, max_side: int | None = None) -> np.ndarray:
    """Face boxes, int64 (N, 4) ``x1, y1, x2, y2`` in ``grey``'s pixels.

    Detected on a copy shrunk (area averaging) so its longer side is at most
    ``max_side``; boxes are mapped back to full resolution.
    """
    h, w = grey.shape
    if max_side is None or max(h, w) <= max_side:
        return lm.detect_faces(grey, upsample)
    f = max_side / max(h, w)
    small = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA)
    boxes = lm.detect_faces(small, upsample).astype(np.float64)
    return np.round((boxes + 0.5) / f - 0.5).astype(np.int64).reshape(-1, 4)


def find_landmarks(grey: np.ndarray, cfg: AlignConfig = AlignConfig()) -> Detection:
    """Detect the face of ``grey`` and fit its 68 landmarks.

    Tries :func:`detection_attempts` in order until one finds a face; keeps the largest
    of several faces; fails a face narrower than ``min_face``.

    Parameters
    ----------
    grey : ndarray of shape (H, W), uint8
    cfg : AlignConfig
        Uses ``upsample``, ``retry_upsample``, ``detect_side``, ``min_face``.

    Returns
    -------
    Detection
        Never raises for "no face" or "too small": the status says so.
    """
    notes: list[str] = []
    reasons: list[str] = []
    boxes = np.zeros((0, 4), np.int64)
    for k, (side, up) in enumerate(detection_attempts(grey.shape, cfg)):
        boxes = detect_boxes(grey, up, side)
        if len(boxes):
            if k:
                where = "full resolution" if side is None else f"shrunk to {side} px"
                reasons.append(f"no face on {k} attempt(s)")
                notes.append(f"retry {where}, upsample={up}")
            break
    if len(boxes) == 0:
        return Detection("failed", None, None, 0, reason="no face found")
    if len(boxes) > 1:
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[np.argsort(-area, kind="stable")]
        reasons.append(f"{len(boxes)} faces")
        notes.append("largest face kept")
    box = boxes[0]
    width = int(box[2] - box[0])
    if width < cfg.min_face:
        return Detection("failed", None, box, len(boxes),
                         reason=f"face too small ({width} px < min_face={cfg.min_face})")
    points = lm.landmarks_68(grey, box)
    status = "fallback" if notes else "ok"
    return Detection(status, points, box, len(boxes), "; ".join(reasons), "; ".join(notes))


def neighbour_paths(path: str | os.PathLike, k: int, pattern: str = FRAME_NUMBER) -> list[Path]:
    """Up to ``k`` frames either side of ``path`` in its folder, nearest first.

    Frame numbers come from the file names (``pattern``, one group); on a tie the
    earlier frame comes first. Empty when the folder cannot be listed that way.
    """
    path = Path(path)
    if k <= 0:
        return []
    try:
        frames = list_frames(path.parent, pattern)
    except (DataLayoutError, OSError):
        return []
    numbers = {p.name: n for n, p in frames}
    if path.name not in numbers:
        return []
    here = numbers[path.name]
    near = [(abs(n - here), n, p) for n, p in frames if 0 < abs(n - here) <= k]
    return [p for _, _, p in sorted(near)]


def landmarks_cached(path: str | os.PathLike, sha: str, cfg: AlignConfig, store: FaceStore | None,
                     grey: np.ndarray | None = None) -> Detection:
    """:func:`find_landmarks` for a frame file, through the store's landmark entries.

    A frame that cannot be read is stored as a failure too, marked ``unreadable`` in the
    entry's meta (such a frame fails at once, without borrowing a neighbour's landmarks).
    """
    entry = store.read(store.landmark_path(sha, cfg)) if store is not None else None
    if entry is not None:
        arrays, meta = entry
        return Detection(meta["status"], arrays["points"] if meta["status"] != "failed" else None,
                         arrays["box"] if arrays["box"].size else None, meta["n_faces"],
                         meta["reason"], meta["fallback"])
    unreadable = False
    try:
        det = find_landmarks(grey if grey is not None else read_grey(path), cfg)
    except (FrameReadError, ImageFormatError) as err:
        det = Detection("failed", None, None, 0, reason=_reason(err, Path(path)))
        unreadable = True
    if store is not None:
        store.write(store.landmark_path(sha, cfg), {
            "points": det.points if det.points is not None else np.zeros((0, 2), np.float32),
            "box": det.box if det.box is not None else np.zeros(0, np.int64),
        }, {"status": det.status, "n_faces": det.n_faces, "reason": det.reason,
            "fallback": det.fallback, "unreadable": unreadable})
    return det


def crop_entry(path: str | os.PathLike, sha: str, cfg: AlignConfig, store: FaceStore,
               neighbours: bool = True) -> Path | None:
    """Where the crop of this frame, in its clip, is (or will be) stored, as far as the
    store's landmark entries tell; None when a detection must run first.

    The crop of a frame with a face of its own depends on its bytes and ``cfg`` only;
    one made with a neighbour's landmarks (fallback 3) on that neighbour's bytes too,
    and a failure after trying the neighbours on all of theirs. The context is found
    the way :func:`process_frame` finds it, from landmark entries only (cheap: no image
    is decoded), so a warm run needs no worker.
    """
    own = store.read_meta(store.landmark_path(sha, cfg))
    if own is None:
        return None
    if own["status"] != "failed" or own.get("unreadable") or not neighbours or cfg.neighbour_frames == 0:
        return store.crop_path(sha, cfg)
    tried: list[str] = []
    for other, other_sha in _neighbour_contents(path, cfg):
        near = store.read_meta(store.landmark_path(other_sha, cfg))
        if near is None:
            return None
        if near["status"] != "failed":
            return store.crop_path(sha, cfg, _borrowed(other_sha))
        tried.append(other_sha)
    return store.crop_path(sha, cfg, _none_usable(tried))


def _neighbour_contents(path: str | os.PathLike, cfg: AlignConfig) -> Iterator[tuple[Path, str]]:
    """(path, SHA-256) of each neighbouring frame, nearest first; unreadable ones are
    skipped. :func:`crop_entry` (cache only) and :func:`_compute` walk the same list."""
    for other in neighbour_paths(path, cfg.neighbour_frames):
        try:
            yield other, file_sha256(other)
        except OSError:
            continue


def _borrowed(other_sha: str) -> str:
    return f"landmarks of {other_sha}"


def _none_usable(tried: list[str]) -> str:
    return "no usable neighbour among " + ",".join(tried)


@dataclass(frozen=True)
class FrameResult:
    """One apex frame processed.

    Attributes
    ----------
    crop : ndarray of shape (S, S), uint8, or None when failed
    points : ndarray of shape (68, 2), float32, or None
        Landmarks in crop coordinates.
    meta : dict
        ``status``, ``reason``, ``fallback``, ``landmark_source`` (file name of the
        neighbouring frame whose landmarks were used, ``given`` for landmarks passed in,
        '' for the frame's own),
        ``angle_deg``, ``iod_px``, ``n_faces``, ``face_std`` (:func:`face_std` of the
        crop; NaN when there is none).
    entry : Path or None
        The store's crop entry holding this result (None without a store).
    """

    crop: np.ndarray | None
    points: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)
    entry: Path | None = None


def _reason(err: Exception, path: Path) -> str:
    """An error's message without the leading path: the report names the file in its own
    column, and a cached reason must stay true for the same bytes under another name."""
    text = str(err)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _failed(reason: str, fallback: str = "", n_faces: int = 0) -> FrameResult:
    return FrameResult(None, None, {
        "status": "failed", "reason": reason, "fallback": fallback, "landmark_source": "",
        "angle_deg": float("nan"), "iod_px": float("nan"), "n_faces": n_faces,
        "face_std": float("nan"),
    })


def process_frame(path: str | os.PathLike, cfg: AlignConfig = AlignConfig(), *,
                  store: FaceStore | None = None, sha: str | None = None,
                  points: np.ndarray | None = None, neighbours: bool = True) -> FrameResult:
    """Align one apex frame, through the cache when a ``store`` is given.

    Parameters
    ----------
    path : path
        The apex frame.
    cfg : AlignConfig
    store : FaceStore, optional
        Reused and filled: a crop entry for (content, settings) is returned as is
        (no decoding, no detection); landmark entries are reused per frame.
    sha : str, optional
        The file's SHA-256 if the caller already has it.
    points : ndarray of shape (68, 2), optional
        Landmarks in the frame's pixels: skips detection (and the cache).
    neighbours : bool, default=True
        Whether the frame's folder is one clip (so fallback 3 may look at its
        neighbours); False for folders of unrelated stills such as JAFFE's.

    Returns
    -------
    FrameResult
        Never raises for a missing, unreadable or face-less frame: ``meta["status"]``
        is ``failed`` and ``meta["reason"]`` says why.
    """
    path = Path(path)
    if points is not None:
        try:
            grey = read_grey(path)
        except (FrameReadError, ImageFormatError) as err:
            return _failed(_reason(err, path))
        return _from_points(grey, np.asarray(points, np.float32), cfg,
                            {"status": "ok", "reason": "", "fallback": "",
                             "landmark_source": "given", "n_faces": 0})
    try:
        sha = sha or file_sha256(path)
    except OSError as err:
        return _failed(f"cannot read file ({err.strerror or err})")
    if store is not None:
        known = crop_entry(path, sha, cfg, store, neighbours)
        if known is not None and (entry := store.read(known)) is not None:
            arrays, meta = entry
            ok = meta["status"] != "failed"
            return FrameResult(arrays["crop"] if ok else None, arrays["points"] if ok else None,
                               meta, known)

    result, context = _compute(path, sha, cfg, store, neighbours)
    if store is None:
        return result
    crop_file = store.crop_path(sha, cfg, context)
    store.write(crop_file, {
        "crop": result.crop if result.crop is not None else np.zeros((0, 0), np.uint8),
        "points": result.points if result.points is not None else np.zeros((0, 2), np.float32),
    }, result.meta)
    return replace(result, entry=crop_file)


def process_batch(items: list[tuple[str, str, bool]], cfg: AlignConfig,
                  store_root: str) -> list[dict[str, Any]]:
    """Worker task: :func:`process_frame` on ``(path, sha, neighbours)`` items.

    The crops go to the store; only the small ``meta`` dicts travel back, each with
    ``crop_file``: its crop entry relative to ``store_root`` ('' when failed). Lives here,
    not in :mod:`merlib.faces.run`, so a worker process imports no pandas or dataset readers.
    """
    cv2.setNumThreads(1)  # one process per core already; OpenCV threads would contend
    store = FaceStore(store_root)
    out = []
    for path, sha, nb in items:
        res = process_frame(path, cfg, store=store, sha=sha, neighbours=nb)
        usable = res.meta["status"] != "failed" and res.entry is not None
        out.append({**res.meta, "crop_file": res.entry.relative_to(store.root).as_posix() if usable else ""})
    return out


def _compute(path: Path, sha: str, cfg: AlignConfig, store: FaceStore | None,
             neighbours: bool) -> tuple[FrameResult, str]:
    """The result and its cache context (see :func:`crop_entry`)."""
    try:
        grey = read_grey(path)
    except (FrameReadError, ImageFormatError) as err:
        # Stored as an unreadable frame's landmark entry, so a warm run finds the crop
        # entry of this failure without a worker (crop_entry).
        if store is not None:
            landmarks_cached(path, sha, cfg, store)
        return _failed(_reason(err, path)), ""
    det = landmarks_cached(path, sha, cfg, store, grey)
    source, context = "", ""
    if det.status == "failed" and neighbours and cfg.neighbour_frames > 0:
        tried: list[str] = []
        for other, other_sha in _neighbour_contents(path, cfg):
            near = landmarks_cached(other, other_sha, cfg, store)
            if near.status != "failed":
                fallback = f"landmarks of neighbouring frame {other.name}"
                det = Detection("fallback", near.points, near.box, near.n_faces,
                                det.reason, "; ".join(filter(None, [near.fallback, fallback])))
                source, context = other.name, _borrowed(other_sha)
                break
            tried.append(other_sha)
        else:
            return _failed(det.reason, f"no usable face in {len(tried)} neighbouring frame(s)",
                           det.n_faces), _none_usable(tried)
    if det.status == "failed":
        return _failed(det.reason, n_faces=det.n_faces), ""
    return _from_points(grey, det.points, cfg, {
        "status": det.status, "reason": det.reason, "fallback": det.fallback,
        "landmark_source": source, "n_faces": det.n_faces}), context


def _from_points(grey: np.ndarray, points: np.ndarray, cfg: AlignConfig,
                 meta: dict[str, Any]) -> FrameResult:
    """Align, then check the crop's quality (``cfg.min_face_std``)."""
    aligned = align(grey, points, cfg)
    std = face_std(aligned, grey.shape)
    meta = {**meta, "angle_deg": aligned.angle_deg, "iod_px": aligned.iod_px, "face_std": std}
    if std < cfg.min_face_std:
        flat = (f"flat crop: grey-level std {std:.1f} inside the face region < "
                f"min_face_std={cfg.min_face_std:g} (blank or faceless frame?)")
        return FrameResult(None, None, {**meta, "status": "failed",
                                        "reason": "; ".join(filter(None, [meta["reason"], flat]))})
    return FrameResult(aligned.crop, aligned.points, meta)


def align(grey: np.ndarray, points: np.ndarray, cfg: AlignConfig = AlignConfig()) -> Aligned:
    """:func:`merlib.faces.align.align_face` with the settings of ``cfg``."""
    return align_face(grey, points, size=cfg.crop_size, side_iod=cfg.side_iod,
                      eye_row=cfg.eye_row, rotate=cfg.rotate, mask_eyes=cfg.mask_eyes,
                      mask_dilation=cfg.mask_dilation)


def figure2_stages(path: str | os.PathLike, cfg: AlignConfig = AlignConfig()) -> dict[str, Any]:
    """The panels of the paper's Figure 2 for one frame.

    Returns
    -------
    dict
        ``A`` the frame as stored (BGR or grey, uint8), ``B`` grey (H, W), ``C`` the face
        square cut out unrotated, ``D`` levelled, ``E`` levelled with the eyes masked
        (each (S, S) uint8); ``points_C``, ``points_D`` the landmarks in those crops
        (68, 2); ``detection`` the :class:`Detection`; ``angle_deg`` the roll removed.

    Raises
    ------
    FrameReadError, ImageFormatError, MerlibError
        When the frame cannot be read or holds no face: a figure needs a face.
    """
    original = read_frame(path)
    grey = to_grey(original, source=str(path))
    det = find_landmarks(grey, cfg)
    if det.points is None:
        raise MerlibError(f"{path}: {det.reason}; pick another frame for the figure")
    c = align_face(grey, det.points, size=cfg.crop_size, side_iod=cfg.side_iod,
                   eye_row=cfg.eye_row, rotate=False, mask_eyes=False)
    d = align_face(grey, det.points, size=cfg.crop_size, side_iod=cfg.side_iod,
                   eye_row=cfg.eye_row, rotate=True, mask_eyes=False)
    e = align(grey, det.points, replace(cfg, rotate=True, mask_eyes=True))
    return {"A": original, "B": grey, "C": c.crop, "D": d.crop, "E": e.crop,
            "points_C": c.points, "points_D": d.points, "detection": det,
            "angle_deg": d.angle_deg}
