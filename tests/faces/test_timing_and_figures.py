"""Timing helpers and the chapter's figures (smoke tests on a real face)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from merlib.training.balance import balance_training_set
from merlib.faces.cache import file_sha256
from merlib.faces.pipeline import figure2_stages
from merlib.faces.run import JOB_COLUMNS, load_crops, preprocess
from merlib.faces.timing import STEPS, replicate_frames, step_timings
from merlib.reporting.faces import augmentation_strip, figure2, qc_gallery
from merlib.provenance import Provenance
from tests.faces.conftest import face_frame, write


@pytest.fixture
def frames(astronaut_bgr, tmp_path):
    root = tmp_path / "data"
    for i, roll in enumerate((-6, 0, 9)):
        write(root / "CK+" / f"f{i}.png", face_frame(astronaut_bgr, roll))
    jobs = pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(3)], "set": "macro", "dataset": "ckplus", "part": "",
        "subject": "S1", "sample": [f"s{i}" for i in range(3)], "label": ["negative", "positive", "positive"],
        "frame": [1, 2, 3], "frame_path": [f"CK+/f{i}.png" for i in range(3)], "flags": "",
    }).astype(JOB_COLUMNS)
    return root, jobs


def test_step_timings_cover_every_step(frames):
    root, jobs = frames
    table = step_timings([root / p for p in jobs["frame_path"]])
    assert list(table.index) == [*STEPS, "sum of steps"]
    assert (table.loc[list(STEPS), "frames"] == 3).all() and (table["ms_per_frame"] > 0).all()


def test_replicated_frames_are_distinct_bytes_same_image(frames, tmp_path):
    root, jobs = frames
    reps = replicate_frames(jobs, root, tmp_path / "reps", 7)
    assert len(reps) == 7 and reps["sample_id"].is_unique
    shas = {file_sha256(tmp_path / "reps" / p) for p in reps["frame_path"]}
    assert len(shas) == 7
    import cv2

    a = cv2.imread(str(tmp_path / "reps" / reps["frame_path"][0]))
    b = cv2.imread(str(tmp_path / "reps" / reps["frame_path"][3]))
    assert np.array_equal(a, b)


def test_figures_draw_and_carry_the_provenance(frames, tmp_path):
    root, jobs = frames
    prov = Provenance.for_data(root)
    fig = figure2(figure2_stages(root / jobs["frame_path"][2]), prov)
    assert len(fig.axes) == 5 and prov.caption() in [t.get_text() for t in fig.texts]
    res = preprocess(jobs, root, tmp_path / "store", workers=1, progress=False)
    fig = qc_gallery(res.manifest, res.store, prov, per_dataset=2)
    assert len(fig.axes) == 2
    X, _, rows = load_crops(res.manifest, res.store)
    bal = balance_training_set(X, rows["label"].to_numpy(), np.arange(3), seed=0)
    fig = augmentation_strip(bal.X, bal.origin, bal.op, X, prov, n=3)
    assert len(fig.axes) == 2
