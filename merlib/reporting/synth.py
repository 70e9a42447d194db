"""Figures of the simulated data itself: what one generator's expression looks like beside
another's, on the same subjects and samples."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["generator_comparison"]


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _aligned_pair(frames: list[np.ndarray], onset: int, apex: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and apex crops with one transform (the apex frame's landmarks), eyes shown."""
    from merlib.faces.config import AlignConfig
    from merlib.faces.pipeline import align, find_landmarks

    cfg = AlignConfig(crop_size=size, mask_eyes=False)
    on, ap = _grey(frames[onset]), _grey(frames[apex])
    det = find_landmarks(ap, cfg)
    if det.points is None:
        det = find_landmarks(on, cfg)
    if det.points is None:
        raise ValueError("frames: no face found in the onset or apex frame")
    return align(on, det.points, cfg).crop, align(ap, det.points, cfg).crop


def generator_comparison(configs: Mapping[str, Any], keys: Sequence[tuple[str, str, str]], provenance: Any,
                         *, size: int = 128, gain: float = 4.0, title: str | None = None):
    """Onset, apex and their difference for a few samples, one generator per column group.

    Parameters
    ----------
    configs : mapping of str -> SynthConfig
        Column-group title -> generator settings (e.g. the old generator and the new one,
        the same seed and subjects).
    keys : sequence of (dataset, subject, sample)
        One row each, samples every configuration plans (e.g. one per class).
    provenance : Provenance
        Stamped on the figure.
    size : int, default=128
        Side of the aligned crops (the apex frame's landmarks align both frames).
    gain : float, default=4
        The difference ``apex - onset`` is drawn as ``128 + gain * difference``.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        ``len(keys)`` rows, ``3 * len(configs)`` columns.
    """
    import matplotlib.pyplot as plt

    from merlib.synth import render_samples

    rendered = {name: render_samples(cfg, list(keys)) for name, cfg in configs.items()}
    n_rows, n_cols = len(keys), 3 * len(configs)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.55 * n_cols, 1.75 * n_rows + 0.6), squeeze=False)
    for r, key in enumerate(keys):
        for g, (name, samples) in enumerate(rendered.items()):
            frames, clip = samples[tuple(key)]
            numbers = list(clip.record.frames)
            on_i = numbers.index(clip.onset_frame) if clip.onset_frame in numbers else 0
            ap_i = numbers.index(clip.apex_frame) if clip.apex_frame in numbers else len(numbers) // 2
            onset, apex = _aligned_pair(frames, on_i, ap_i, size)
            diff = np.clip(128.0 + gain * (apex.astype(np.float64) - onset.astype(np.float64)), 0, 255)
            panels = (onset, apex, diff.astype(np.uint8))
            heads = ("onset", "apex", f"apex - onset (x{gain:g})")
            for k, (image, head) in enumerate(zip(panels, heads)):
                ax = axes[r, 3 * g + k]
                ax.imshow(image, cmap="gray", vmin=0, vmax=255)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"{name}\n{head}" if k == 1 else head, fontsize=8)
            # Each generator draws its own AUs and amplitude for the sample.
            axes[r, 3 * g + 1].set_xlabel(f"AU {clip.expression.au_code()}, {clip.expression.amplitude_iod:.3f} IOD",
                                          fontsize=7)
            if g == 0:
                axes[r, 0].set_ylabel(f"{clip.label}\n{key[0]} {key[2]}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    provenance.stamp(fig)
    return fig
