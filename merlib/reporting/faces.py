"""Figures of the pre-processing chapter: the paper's Figure 2 (and the frame it shows),
a QC gallery, the balancing strip."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from merlib.faces.cache import FaceStore
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import figure2_stages
from merlib.provenance import Provenance

#: Figure 2's panel letters and the paper's captions.
FIGURE2_PANELS: dict[str, str] = {
    "A": "original", "B": "grey scale", "C": "face region cropped",
    "D": "rotated: eyes level", "E": "eyes masked",
}


class Figure2Example(NamedTuple):
    """The frame :func:`pick_figure2_example` chose, and the frames it passed over.

    Attributes
    ----------
    row : Series
        The chosen frame's row of the jobs table (``dataset``, ``sample``,
        ``frame_path``, ...).
    stages : dict
        :func:`merlib.faces.pipeline.figure2_stages` of that frame (panels A-E,
        landmarks, ``angle_deg``).
    skipped : list of str
        One line per candidate without a usable face: ``'<frame_path>: <reason>'``.
    """

    row: pd.Series
    stages: dict[str, Any]
    skipped: list[str]


def pick_figure2_example(jobs_table: pd.DataFrame, data_root: str | os.PathLike, cfg: AlignConfig, *,
                         candidates: int = 12) -> Figure2Example:
    """The most tilted of the first few CASME II apex frames, for :func:`figure2`.

    The paper shows a CASME II subject; of a few of its frames, the one with the largest
    eye-line roll shows the rotation best. Without CASME II rows, the first rows of the
    table stand in.

    Parameters
    ----------
    jobs_table : DataFrame
        :attr:`merlib.faces.run.Jobs.table`: one row per image, with ``dataset`` and
        ``frame_path`` (relative to ``data_root``).
    data_root : path
    cfg : AlignConfig
        The alignment settings the figure illustrates.
    candidates : int, default=12
        How many of the first rows to try (each is aligned once).

    Returns
    -------
    Figure2Example
        The chosen row, its stages, and a line for each candidate that was skipped.

    Raises
    ------
    ValueError
        When ``jobs_table`` is empty or none of its candidate frames holds a face.
    """
    casme2 = jobs_table[jobs_table["dataset"] == "casme2"]
    pool = (casme2 if len(casme2) else jobs_table).head(candidates)
    tilts, skipped = {}, []
    for rec in pool.itertuples():
        try:
            tilts[rec.Index] = figure2_stages(Path(data_root) / rec.frame_path, cfg)
        except Exception as err:  # a frame without a face cannot illustrate the figure
            skipped.append(f"{rec.frame_path}: {err}")
    if not tilts:
        raise ValueError(f"jobs_table: none of the {len(pool)} candidate frame(s) holds a face "
                         f"({'; '.join(skipped) or 'no rows'})")
    pick = max(tilts, key=lambda i: abs(tilts[i]["angle_deg"]))
    return Figure2Example(jobs_table.loc[pick], tilts[pick], skipped)


def _keep_extent(ax: plt.Axes, image: np.ndarray) -> None:
    """Landmarks beyond the crop (the jaw of a wide face) must not widen the axes."""
    h, w = image.shape[:2]
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)


def figure2(stages: dict[str, Any], provenance: Provenance, *,
            title: str = "Pre-processing (the paper's Figure 2)") -> plt.Figure:
    """Panels A-E from :func:`merlib.faces.pipeline.figure2_stages`, in one row.

    Panels C and D show the landmarks used (dots) and the eye line (through the two
    eye centres), so the levelling is visible.
    """
    fig, axes = plt.subplots(1, 5, figsize=(12, 3.1))
    for ax, (key, name) in zip(axes, FIGURE2_PANELS.items()):
        image = stages[key]
        if image.ndim == 3:
            ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        else:
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        pts = stages.get(f"points_{key}")
        if pts is not None:
            ax.scatter(pts[:, 0], pts[:, 1], s=2, c="#00c8ff")
            eyes = np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])
            ax.plot(eyes[:, 0], eyes[:, 1], "-", c="#ff4060", lw=1)
            _keep_extent(ax, image)
        ax.set_title(f"({key}) {name}", fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    axes[2].set_xlabel(f"roll {stages['angle_deg']:+.1f} deg", fontsize=7)
    axes[3].set_xlabel("roll 0.0 deg", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return provenance.stamp(fig)


def qc_gallery(manifest: pd.DataFrame, store_dir: str | os.PathLike, provenance: Provenance, *,
               per_dataset: int = 6, seed: int = 0, landmarks: bool = True,
               title: str = "Aligned crops per dataset") -> plt.Figure:
    """A grid of aligned crops: one row per dataset, ``per_dataset`` seeded picks each.

    Fallback rows are preferred in the pick (they are the ones worth a look) and titled
    in orange; landmarks in crop coordinates are overlaid as dots.
    """
    usable = manifest[manifest["status"].isin(["ok", "fallback"])]
    datasets = list(dict.fromkeys(usable["dataset"]))
    if not datasets:
        raise ValueError("manifest: no usable crops to show")
    store = FaceStore(store_dir)
    fig, axes = plt.subplots(len(datasets), per_dataset,
                             figsize=(1.6 * per_dataset, 1.75 * len(datasets) + 0.5), squeeze=False)
    for ax_row, ds in zip(axes, datasets):
        rows = usable[usable["dataset"] == ds]
        rank = rows.assign(_fb=(rows["status"] != "fallback").astype(int),
                           _r=np.random.default_rng(seed).random(len(rows)))
        picks = rank.sort_values(["_fb", "_r"]).head(per_dataset)
        for ax in ax_row:
            ax.set_xticks([]), ax.set_yticks([])
            ax.axis("off")
        for ax, rec in zip(ax_row, picks.to_dict("records")):
            arrays, _ = store.read(store.root / rec["crop_file"])
            ax.axis("on")
            ax.imshow(arrays["crop"], cmap="gray", vmin=0, vmax=255)
            if landmarks:
                pts = arrays["points"]
                ax.scatter(pts[:, 0], pts[:, 1], s=0.6, c="#00c8ff")
                _keep_extent(ax, arrays["crop"])
            colour = "#d06000" if rec["status"] == "fallback" else "black"
            ax.set_title(f"{rec['sample']} ({rec['label']})", fontsize=5.5, color=colour)
        ax_row[0].set_ylabel(ds, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return provenance.stamp(fig)


def augmentation_strip(X: np.ndarray, origin: np.ndarray, op: np.ndarray, X_source: np.ndarray,
                       provenance: Provenance, *, n: int = 5,
                       title: str = "Balancing: source crop (top) and its new copy (bottom)") -> plt.Figure:
    """The first ``n`` new (augmented) samples under the crops they were made from."""
    new = np.flatnonzero(op != "")[:n]
    fig, axes = plt.subplots(2, max(1, len(new)), figsize=(1.7 * max(1, len(new)), 4.0), squeeze=False)
    for j, i in enumerate(new):
        axes[0, j].imshow(X_source[origin[i]], cmap="gray", vmin=0, vmax=255)
        axes[1, j].imshow(X[i], cmap="gray", vmin=0, vmax=255)
        axes[1, j].set_xlabel(op[i], fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return provenance.stamp(fig)
