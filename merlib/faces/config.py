"""The settings of the face pre-processing, with the paper's values as defaults."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

from merlib.errors import ConfigError

#: Bump when a change of code changes the landmarks or crops for the same settings:
#: it is part of every cache key, so old entries are then recomputed, never reused.
PIPELINE_VERSION = 3
# 2: strict decoding (a truncated frame fails instead of giving landmarks of its
#    decoded part), unreadable frames get a landmark entry, the crop quality check.
# 3: the EXIF orientation of a JPEG or TIFF frame is applied.

#: Fields that change which face and landmarks are found (the landmark cache key).
DETECT_FIELDS: tuple[str, ...] = ("upsample", "retry_upsample", "detect_side", "min_face")


@dataclass(frozen=True)
class AlignConfig:
    """How an apex frame becomes an aligned face crop.

    Parameters
    ----------
    crop_size : int, default=256
        Side of the square output crop, pixels (paper: 256 x 256).
    rotate : bool, default=True
        Level the eye line (paper: yes, Figure 2 D).
    mask_eyes : bool, default=True
        Black out the eyes (paper: yes, Figure 2 E).
    mask_dilation : float, default=0.15
        Eye-hull dilation, fraction of the inter-ocular distance (IOD). Not given in the
        paper; 0.15 IOD covers the lids as well as the eye opening.
    side_iod : float, default=2.5
        Crop side in IODs (the paper crops "the facial region"; 2.5 IOD holds brows to
        chin and jaw to jaw on a frontal face).
    eye_row : float, default=0.24
        Height of the eye line in the crop, fraction of ``crop_size`` from the top.
    upsample : int, default=0
        dlib detector pyramid upsampling on the first attempt. The paper does not say;
        0 on a copy shrunk to ``detect_side`` finds faces of at least 80 / 480 of the
        frame's longer side (dlib's smallest window), smaller than any face of the seven
        datasets, at a quarter of the cost of 1 (measured: bench/preprocess.py).
    retry_upsample : int, default=1
        Upsampling of the retries when the first attempt finds no face: first on the
        same shrunk copy, then (when the frame was shrunk) at full resolution. HOG
        detection is sensitive to scale: a face missed at one pyramid step is usually
        found at another.
    detect_side : int or None, default=480
        Detection runs on a copy shrunk so its longer side is at most this many pixels
        (HOG cost grows with the area); landmarks are always fitted at full resolution.
        None: detect at full resolution.
    min_face : int, default=40
        A face box narrower than this (source pixels) fails the sample as too small.
    neighbour_frames : int, default=3
        When a frame has no usable face, look this many frames either side in the same
        clip and reuse the nearest one's landmarks (0: fail instead).
    min_face_std : float, default=4.0
        Quality check of every crop: the standard deviation of the grey levels inside
        the face region (the hull of the 68 landmarks in the crop, leaving out the
        masked eyes and the zero padding beyond the frame's edges) must reach this many
        grey levels, or the sample fails as a flat crop. It catches a blank or faceless
        frame that borrowed a neighbour's landmarks (a flat grey crop has a deviation
        below 1, JPEG noise included), and keeps every face measured so far: 17.9 (Oulu)
        to 41.3 (MUG) on the tiny SynthME root, 33 to 61 on the test photograph
        (tests/faces/test_run.py, test_pipeline.py). 0 turns the check off.
    """

    crop_size: int = 256
    rotate: bool = True
    mask_eyes: bool = True
    mask_dilation: float = 0.15
    side_iod: float = 2.5
    eye_row: float = 0.24
    upsample: int = 0
    retry_upsample: int = 1
    detect_side: int | None = 480
    min_face: int = 40
    neighbour_frames: int = 3
    min_face_std: float = 4.0

    def __post_init__(self) -> None:
        for name in ("crop_size", "upsample", "retry_upsample", "min_face", "neighbour_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{name}: expected an integer, got {value!r}")
        if self.detect_side is not None and (not isinstance(self.detect_side, int)
                                             or isinstance(self.detect_side, bool)):
            raise ConfigError(f"detect_side: expected an integer or None, got {self.detect_side!r}")
        for name in ("mask_dilation", "side_iod", "eye_row", "min_face_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
                raise ConfigError(f"{name}: expected a number, got {value!r}")
        checks = {
            "crop_size": self.crop_size >= 8,
            "mask_dilation": self.mask_dilation >= 0,
            "side_iod": self.side_iod > 0,
            "eye_row": 0 < self.eye_row < 1,
            "upsample": 0 <= self.upsample <= 4,
            "retry_upsample": 0 <= self.retry_upsample <= 4,
            "detect_side": self.detect_side is None or self.detect_side >= 80,
            "min_face": self.min_face >= 0,
            "neighbour_frames": self.neighbour_frames >= 0,
            "min_face_std": 0 <= self.min_face_std < 128,
        }
        expected = {
            "crop_size": ">= 8", "mask_dilation": ">= 0", "side_iod": "> 0",
            "eye_row": "in (0, 1)", "upsample": "in 0..4", "retry_upsample": "in 0..4",
            "detect_side": "None or >= 80 (dlib's smallest face window)",
            "min_face": ">= 0", "neighbour_frames": ">= 0",
            "min_face_std": "in [0, 128) grey levels",
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"{name}: expected {expected[name]}, got {getattr(self, name)!r}")
        for name in ("rotate", "mask_eyes"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: expected a bool, got {getattr(self, name)!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AlignConfig:
        """Build from a dict (e.g. papermill parameters); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"AlignConfig: unknown settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    def detect_key(self) -> str:
        """Hash of the settings that change the landmarks (plus the pipeline version)."""
        return _keys(self)[0]

    def crop_key(self) -> str:
        """Hash of every setting (plus the pipeline version): changes the crop."""
        return _keys(self)[1]


def _digest(values: dict[str, Any]) -> str:
    text = json.dumps({"version": PIPELINE_VERSION, **values}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@lru_cache(maxsize=32)
def _keys(cfg: AlignConfig) -> tuple[str, str]:
    # Memoised: a run asks for the keys once per frame, and a config is immutable.
    values = cfg.as_dict()
    return _digest({k: values[k] for k in DETECT_FIELDS}), _digest(values)
