"""The apex-minus-onset difference image: a network input that carries the expression
and not the face.

The paper feeds the network the apex frame. On a few dozen subjects that frame is
mostly identity: the network learns who each face is, and a new subject's expression
is then read through the wrong features (chapter 07 of the book measures it). The
difference between the apex and the onset frame of the same sample, aligned with one
transform, cancels what the two frames share (the face, its lighting) and keeps what
moved. Optical-flow methods of the MEGC2019 era (STSTNet, OFF-ApexNet) start from the
same onset/apex pair; here it stays a plain grey image, so the same networks, training
and SVM run on it unchanged, with the apex input's settings.

The settings are the paper's, dropout 0.5 included. A dropout of 0.2 was used for this
input for a while: chosen on a development root whose clip cache held stale frames (the
cache keyed frames by size; see :data:`merlib.faces.clips.CLIP_VERSION`). Measured again
with fresh clips and three training seeds (``bench/difference_probe.py``: SynthME seed 1,
12 micro subjects, 64 px, 3 epochs, SVM-head UF1 at amplitudes x1, x3, x5), 0.2 scored
+0.007 (standard error 0.019) above 0.5 and 0 scored +0.020 (0.017), paired by amplitude
and seed: nothing a separate setting could rest on.

This is a deviation from the paper, offered as an option and measured beside it, never
substituted for it: the macro-expression set has no onset frames for JAFFE, so the
paper's transfer step has no counterpart on this input.

The difference is stored as ``128 + gain * (apex - onset)``, clipped to uint8. A
micro-expression changes a few grey levels at the mouth corners and brows; ``gain`` 4
spreads a +-32 grey-level change over the whole range. The eyes are masked in both
frames (:class:`~merlib.faces.clips.ClipConfig` uses the apex pipeline's alignment
settings), so they difference to the neutral 128.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from merlib.errors import ConfigError
from merlib.faces.clips import ClipConfig, composite_clips
from merlib.faces.config import AlignConfig
from merlib.training.crops import CropSet

#: Default gain of :func:`difference_image`.
DIFFERENCE_GAIN = 4.0


def difference_image(onset: np.ndarray, apex: np.ndarray, gain: float = DIFFERENCE_GAIN) -> np.ndarray:
    """``128 + gain * (apex - onset)`` clipped to uint8.

    Parameters
    ----------
    onset, apex : ndarray of shape (..., S, S), uint8
        Frames aligned with the same transform.
    gain : float, default=4.0

    Returns
    -------
    ndarray of shape (..., S, S), uint8
    """
    if not (isinstance(gain, (int, float)) and np.isfinite(gain) and gain > 0):
        raise ConfigError(f"gain: expected a positive number, got {gain!r}")
    onset, apex = np.asarray(onset), np.asarray(apex)
    if onset.shape != apex.shape:
        raise ConfigError(f"onset, apex: expected the same shape, got {onset.shape} and {apex.shape}")
    diff = 128.0 + gain * (apex.astype(np.float32) - onset.astype(np.float32))
    return np.clip(np.rint(diff), 0, 255).astype(np.uint8)


def difference_crops(crops: CropSet, data_root: str | os.PathLike, *, size: int = 64,
                     gain: float = DIFFERENCE_GAIN, align_cfg: AlignConfig = AlignConfig(),
                     cache_dir: str | os.PathLike | None = None) -> tuple[CropSet, pd.DataFrame]:
    """The difference images of the composite samples of ``crops``.

    Parameters
    ----------
    crops : CropSet
        Apex crops of MEGC2019 composite samples of ``data_root`` (their onset and apex
        frames are read from there).
    data_root : path
    size : int, default=64
        Side of the difference images, pixels (the model's input size avoids a resize).
    gain : float, default=4.0
    align_cfg : AlignConfig
    cache_dir : path, optional
        The aligned clips' cache (:func:`~merlib.faces.clips.load_clips`); the LBP-TOP
        baseline's clips at the same size are the same entries.

    Returns
    -------
    difference : CropSet
        One image per sample whose onset and apex could be aligned, in the order of
        ``crops``, with the same ``meta`` rows.
    report : DataFrame
        dataset, subject, sample, reason: the samples left out (none is dropped silently).
    """
    clips = composite_clips(crops.meta, data_root, align_cfg, ClipConfig(size=size), cache_dir=cache_dir)
    key = ["dataset", "subject", "sample"]
    kept = clips.meta[key].astype(str).merge(
        crops.meta[key].astype(str).reset_index(names="row"), on=key, how="left")["row"].to_numpy()
    X = difference_image(clips.key_frames[:, 0], clips.key_frames[:, 1], gain)
    meta = crops.meta.iloc[kept].reset_index(drop=True)
    return CropSet(X, meta, f"{crops.source} (apex - onset, gain {gain:g})", crops.data_kind), clips.report
