"""The apex finder against SynthME's known apexes.

A real sheet's apex is what a coder chose; a SynthME root records each clip's true apex
(``SYNTHME_truth.csv``), so there the estimator of :mod:`merlib.faces.apex` can be scored:
the share of clips whose estimate lies within a tolerance of the truth, per dataset.
The finder itself knows nothing of SynthME; this study does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from merlib.data.apex import check_method
from merlib.data.frames import list_frames
from merlib.data.index import frame_pattern, index_datasets
from merlib.data.simulated import TRUTH
from merlib.errors import DataLayoutError
from merlib.faces.apex import estimate_clip_apex

__all__ = ["ApexValidation", "validate_on_truth"]


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
