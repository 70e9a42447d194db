"""Whole runs on the simulated data root: manifest, report, cache reuse, Dask, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from merlib.cli import main
from merlib.data.composite import megc2019_composite
from merlib.faces import landmarks as lm
from merlib.faces import run as run_mod
from merlib.faces.align import eye_angle, eye_centres, target_eye_centres
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import STATUSES
from merlib.faces.run import build_jobs, load_crops, preprocess, summary, write_outputs


def _boom(*args, **kwargs):
    raise AssertionError("the detector must not run")


@pytest.fixture(scope="module")
def jobs(synth_root):
    return build_jobs(synth_root, allow_missing=True)


@pytest.fixture(scope="module")
def first_run(jobs, synth_root, tmp_path_factory):
    store = tmp_path_factory.mktemp("faces-store")
    return preprocess(jobs, synth_root, store, workers=1, progress=False)


def test_a_simulated_root_needs_no_allow_missing_for_its_subset(synth_root):
    jobs = build_jobs(synth_root, ["composite"])
    expected = megc2019_composite(synth_root).n_expected
    assert len(jobs.table) == expected < 442 and jobs.missing.empty


def test_jobs_cover_both_sets_and_the_composite_adds_up(jobs, synth_root):
    t = jobs.table
    assert set(t["set"]) == {"composite", "macro"}
    assert t["sample_id"].is_unique
    assert (t["set"] == "composite").sum() + len(jobs.missing) == megc2019_composite(synth_root).n_expected
    assert set(t.loc[t["set"] == "macro", "dataset"]) <= {"ckplus", "oulu", "jaffe", "mug"}


def test_every_job_is_in_the_manifest_and_every_problem_in_the_report(first_run, jobs, synth_root):
    m, rep = first_run.manifest, first_run.report
    assert len(m) == len(jobs.table)
    assert (m["sample_id"].to_numpy() == jobs.table["sample_id"].to_numpy()).all()
    assert set(m["status"]) <= set(STATUSES)
    assert (m.loc[m["status"] == "failed", "crop_file"] == "").all()
    assert (m.loc[m["status"] != "failed", "crop_file"].str.len() > 0).all()
    notable = m["flags"].str.split(";").map(lambda fs: bool(set(fs) - {"", *run_mod.CONVENTION_FLAGS}))
    not_ok = set(m.loc[(m["status"] != "ok") | notable, "sample_id"])
    assert not_ok == set(rep.loc[rep["status"] != "missing", "sample_id"])
    assert (rep["status"] == "missing").sum() == len(jobs.missing)
    counts = summary(first_run)
    assert counts.loc["composite", "Total"] == megc2019_composite(synth_root).n_expected
    assert counts.loc["Total", "Total"] == len(m) + len(jobs.missing)
    assert first_run.stats["computed"] > 0 and first_run.stats["cached"] == 0


def test_no_simulated_crop_fails_the_quality_check(first_run):
    m = first_run.manifest
    assert (m["status"] != "failed").all(), m.loc[m["status"] == "failed", ["sample_id", "reason"]]
    # Measured on the tiny root: 17.9 (Oulu) to 41.3 (MUG), far above the 4.0 threshold.
    assert m["face_std"].min() > 3 * AlignConfig().min_face_std


def test_simulated_crops_are_level_with_eyes_in_place(first_run, synth_root, tmp_path):
    # Re-detect on unmasked crops of a few frames of every dataset.
    sample = first_run.manifest.groupby("dataset").head(2)
    res = preprocess(sample[list(run_mod.JOB_COLUMNS)], synth_root, tmp_path, AlignConfig(mask_eyes=False),
                     workers=1, progress=False)
    crops, _, rows = load_crops(res.manifest, tmp_path)
    target = target_eye_centres(256, 2.5, 0.24)
    for crop, ds, s in zip(crops, rows["dataset"], rows["set"]):
        boxes = lm.detect_faces(crop, 1)
        assert len(boxes) == 1, ds
        pts = lm.landmarks_68(crop, boxes[0])
        assert abs(eye_angle(pts)) < 2.0, ds
        if s == "composite":  # near-neutral faces; macro apexes squint (AU6), eyes move
            # dlib's landmark jitter grows when a small face (SMIC) is upsampled to the
            # crop, so the tolerance is relative: 5% of the crop's inter-ocular distance.
            iod = np.linalg.norm(target[1] - target[0])
            assert np.abs(eye_centres(pts) - target).max() < 0.05 * iod, ds


def test_warm_rerun_does_no_detection_and_starts_no_worker(first_run, jobs, synth_root, monkeypatch):
    monkeypatch.setattr(lm, "detect_faces", _boom)
    monkeypatch.setattr(lm, "landmarks_68", _boom)
    monkeypatch.setattr(run_mod, "_run_dask", _boom)
    again = preprocess(jobs, synth_root, first_run.store, workers=2, progress=False)
    assert again.stats["computed"] == 0 and again.stats["cached"] == len(jobs.table)
    pd.testing.assert_frame_equal(again.manifest, first_run.manifest)


def test_changed_mask_recomputes_crops_but_not_landmarks(first_run, jobs, synth_root, monkeypatch):
    monkeypatch.setattr(lm, "detect_faces", _boom)
    monkeypatch.setattr(lm, "landmarks_68", _boom)
    sub = jobs.table.head(5)
    res = preprocess(sub, synth_root, first_run.store, AlignConfig(mask_dilation=0.05),
                     workers=1, progress=False)
    assert res.stats["computed"] == 5
    assert (res.manifest["crop_file"] != first_run.manifest["crop_file"].head(5)).all()


def test_dask_workers_give_the_same_bytes_as_one_process(first_run, jobs, synth_root, tmp_path):
    sub = jobs.table.groupby("dataset").head(1)
    res = preprocess(sub, synth_root, tmp_path, workers=2, progress=False)
    assert res.stats["workers"] == 2 and res.stats["computed"] == len(sub)
    a, _, _ = load_crops(res.manifest, tmp_path)
    ref = first_run.manifest.set_index("sample_id").loc[res.manifest["sample_id"]].reset_index()
    b, _, _ = load_crops(ref, first_run.store)
    assert a.tobytes() == b.tobytes()


def test_missing_and_unreadable_frames_are_failed_rows(jobs, synth_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    sub = jobs.table.head(3).copy()
    good = root / sub.loc[2, "frame_path"]
    good.parent.mkdir(parents=True)
    shutil.copy(synth_root / sub.loc[2, "frame_path"], good)
    (root / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    sub.loc[0, "frame_path"] = "CASME2/nowhere/img1.jpg"
    sub.loc[1, "frame_path"] = "bad.jpg"
    res = preprocess(sub, root, tmp_path / "store", workers=1, progress=False)
    m = res.manifest
    assert list(m["status"]) == ["failed", "failed", "ok"]
    assert m.loc[0, "reason"] == "frame file not found"
    assert m.loc[1, "reason"] == "not a readable image (not JPEG, PNG, BMP or TIFF data)"
    assert list(res.report["sample_id"]) == list(sub["sample_id"].head(2))


def test_outputs_and_cli(first_run, synth_root, tmp_path, capsys):
    paths = write_outputs(first_run, tmp_path / "out")
    back = pd.read_csv(paths["manifest"], dtype=str, keep_default_na=False)
    assert len(back) == len(first_run.manifest)
    out = tmp_path / "cli"
    assert main(["preprocess", "--data-root", str(synth_root), "--out", str(out),
                 "--sets", "macro", "--workers", "1", "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} >= {"manifest.csv", "report.csv", "run.json", "crops"}
    info = json.loads((out / "run.json").read_text())
    assert info["data_kind"].startswith("SIMULATED") and info["counts"]["macro"]["Total"] > 0
    assert "from the cache" in capsys.readouterr().out
    # A SynthME root holds a subset of the composite and says which: no --allow-missing.
    assert main(["preprocess", "--data-root", str(synth_root), "--out", str(out),
                 "--sets", "composite", "--quiet"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["counts"]["composite"]["Total"] == megc2019_composite(synth_root).n_expected
    X, P, rows = load_crops(pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False), out)
    assert X.shape[1:] == (256, 256) and X.dtype == np.uint8 and P.shape[1:] == (68, 2)
    assert (X[:, 61, 76] == 0).all()  # the left eye centre is masked
