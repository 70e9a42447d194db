"""Figures of the data chapter: apex frames of micro- and macro-expressions side by side."""
from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from merlib.data.frames import list_frames
from merlib.data.schema import LABELS
from merlib.errors import DataLayoutError
from merlib.provenance import Provenance

#: Every owners' layout ends a frame's file name with its number: img46.jpg,
#: 006_05562.jpg, image000001.bmp, S005_001_00000011.png, 000.jpeg, img_0000.jpg.
_ANY_FRAME = r".*?(\d+)\.(?:jpe?g|png|bmp|tiff?)"


def read_grey(path: str | Path) -> np.ndarray:
    """A frame as uint8 grey, shape (H, W); the error names the file it could not read."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataLayoutError(f"cannot read image {path}")
    return image


def onset_apex(row: pd.Series, data_root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The onset and apex frames of one sample (canonical table row), grey uint8."""
    root = Path(data_root)
    frames = dict(list_frames(root / row["clip_dir"], _ANY_FRAME))
    onset = frames.get(int(row["onset_frame"])) if pd.notna(row["onset_frame"]) else None
    if onset is None:
        raise DataLayoutError(f"{row['clip_dir']}: onset frame {row['onset_frame']} not found")
    return read_grey(onset), read_grey(root / row["apex_path"])


def pick_examples(table: pd.DataFrame, datasets: tuple[str, ...], seed: int = 0) -> pd.DataFrame:
    """One labelled clip per class from ``datasets`` (seeded choice), in class order."""
    pool = table[table["dataset"].isin(datasets) & table["label"].notna() & table["onset_frame"].notna()]
    pool = pool[pool["onset_frame"] != pool["apex_frame"]]
    picks = [
        grp.sample(1, random_state=seed)
        for label in LABELS
        if len(grp := pool[pool["label"] == label])
    ]
    return pd.concat(picks) if picks else pool.head(0)


def apex_montage(
    examples: pd.DataFrame,
    data_root: str | Path,
    provenance: Provenance,
    *,
    gain: float = 4.0,
    title: str = "Onset, apex and their difference",
) -> plt.Figure:
    """One row per sample: onset frame, apex frame, ``gain`` x |apex - onset|.

    The same ``gain`` is used for every row, so the difference images compare motion
    amplitude across rows (micro vs macro). Each row is titled with dataset, sample,
    label and the mean absolute difference in grey levels.
    """
    n = len(examples)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.3 * n + 0.6), squeeze=False)
    for ax_row, (_, row) in zip(axes, examples.iterrows()):
        onset, apex = onset_apex(row, data_root)
        diff = np.abs(apex.astype(np.float32) - onset.astype(np.float32))
        panels = [onset, apex, np.clip(diff * gain, 0, 255).astype(np.uint8)]
        names = ["onset", "apex", f"|apex - onset| x{gain:g} (mean {diff.mean():.2f})"]
        for ax, image, name in zip(ax_row, panels, names):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(name, fontsize=7)
        ax_row[0].set_ylabel(f"{row['dataset']}\n{row['sample']}\n{row['label']}", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return provenance.stamp(fig)
