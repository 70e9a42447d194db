"""Timing of the pre-processing, per step and per run (used by bench/ and the book).

Per-step times are measured in this process, one frame at a time, on the frames given;
run times by :func:`merlib.faces.run.preprocess` itself (wall clock, worker start-up
included). :func:`replicate_frames` makes a larger input set from a small one by
copying frames with a distinct trailing tag (image decoders ignore bytes after the
image), so every copy costs the full work and none is a cache hit.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from merlib.faces import landmarks as lm
from merlib.faces.align import apply_mask, crop_transform, eye_mask, to_grey, transform_points, warp_to_crop
from merlib.faces.cache import FaceStore, file_sha256
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import detect_boxes, detection_attempts, read_frame

STEPS: tuple[str, ...] = ("hash", "read", "grey", "detect", "landmarks", "rotate+crop+resize",
                          "mask", "cache write")


def _fps(seconds: float, frames: int) -> float:
    return frames / seconds if seconds > 0 else float("inf")


def step_timings(paths: Sequence[str | os.PathLike], cfg: AlignConfig = AlignConfig()) -> pd.DataFrame:
    """Mean time of each step of the pipeline, one frame at a time, in this process.

    ``detect`` is the first detection attempt only (what most frames need); frames with
    no face there are left out of the later steps.

    Returns
    -------
    DataFrame
        Index :data:`STEPS`; columns ``frames``, ``ms_per_frame``, ``fps``.
    """
    lm.detect_faces(np.zeros((100, 100), np.uint8))  # load the models outside the clock
    lm.landmarks_68(np.zeros((100, 100), np.uint8), (10, 10, 90, 90))
    total = {s: 0.0 for s in STEPS}
    count = {s: 0 for s in STEPS}

    def tick(step: str, t0: float) -> float:
        now = time.perf_counter()
        total[step] += now - t0
        count[step] += 1
        return now

    with tempfile.TemporaryDirectory() as tmp:
        store = FaceStore(tmp)
        for i, path in enumerate(paths):
            t = time.perf_counter()
            file_sha256(path)
            t = tick("hash", t)
            image = read_frame(path)
            t = tick("read", t)
            grey = to_grey(image, source=str(path))
            t = tick("grey", t)
            side, up = detection_attempts(grey.shape, cfg)[0]
            boxes = detect_boxes(grey, up, side)
            t = tick("detect", t)
            if not len(boxes):
                continue
            points = lm.landmarks_68(grey, boxes[0])
            t = tick("landmarks", t)
            m = crop_transform(points, cfg.crop_size, side_iod=cfg.side_iod, eye_row=cfg.eye_row,
                               rotate=cfg.rotate)
            crop = warp_to_crop(grey, m, cfg.crop_size)
            crop_pts = transform_points(m, points)
            t = tick("rotate+crop+resize", t)
            mask = eye_mask(crop_pts, crop.shape, cfg.mask_dilation * cfg.crop_size / cfg.side_iod)
            crop = apply_mask(crop, mask)
            t = tick("mask", t)
            store.write(Path(tmp) / f"{i}.npz", {"crop": crop, "points": crop_pts}, {"status": "ok"})
            tick("cache write", t)
    rows = {s: {"frames": count[s], "ms_per_frame": 1000 * total[s] / max(1, count[s]),
                "fps": _fps(total[s], count[s])} for s in STEPS}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["sum of steps"] = [count["detect"], table["ms_per_frame"].sum(),
                                 1000 / table["ms_per_frame"].sum()]
    return table


def replicate_frames(jobs: pd.DataFrame, data_root: str | os.PathLike, out_root: str | os.PathLike,
                     n: int) -> pd.DataFrame:
    """``n`` jobs made by repeating ``jobs`` with distinct copies of their frames.

    Copy ``k`` of a frame goes to ``out_root/copy<k>/<frame_path>`` with the bytes
    ``MERLIB-BENCH-COPY-<k>`` appended (decoders stop at the image's end), so its content
    hash differs while the decoded image, and hence the work, is the same. Copy 0 is a
    plain copy. The returned table's ``frame_path`` is relative to ``out_root``.
    """
    if n < 1 or jobs.empty:
        raise ValueError(f"n: expected >= 1 and a non-empty jobs table, got n={n}, {len(jobs)} jobs")
    src, dst = Path(data_root), Path(out_root)
    reps = -(-n // len(jobs))
    rows = []
    for k in range(reps):
        part = jobs.copy()
        paths = []
        for rel in jobs["frame_path"]:
            target = dst / f"copy{k}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if k == 0:
                shutil.copyfile(src / rel, target)
            else:
                target.write_bytes((src / rel).read_bytes() + f"MERLIB-BENCH-COPY-{k}".encode())
            paths.append(f"copy{k}/{rel}")
        part["frame_path"] = paths
        part["sample_id"] = part["sample_id"] + f"@{k}"
        rows.append(part)
    return pd.concat(rows, ignore_index=True).head(n).astype(jobs.dtypes.to_dict())
