"""Pre-processing runs with messy inputs and faults: flags that travel, absent datasets,
bad parameters, concurrent writers, the local Dask cluster's size and shutdown, cut-short
and faceless frames in whole runs."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merlib.data.index import index_datasets
from merlib.errors import ConfigError, DataLayoutError, MerlibWarning, MissingSamplesError, OutputError
from merlib.faces import landmarks as lm
from merlib.faces import run as run_mod
from merlib.faces.run import JOB_COLUMNS, build_jobs, preprocess, write_outputs
from tests.faces.conftest import face_frame, write

REPO = Path(__file__).resolve().parents[2]


def _boom(*args, **kwargs):
    raise AssertionError("must not run")


@pytest.fixture(scope="module")
def casme_only(synth_root, tmp_path_factory) -> tuple[Path, str]:
    """A data root holding only CASME II (frames linked from the simulated root), whose
    coding sheet has ``/`` in the first row's ApexFrame cell; and that row's sample."""
    import openpyxl

    root = tmp_path_factory.mktemp("casme-only")
    src = synth_root / "CASME2"
    for path in src.rglob("*"):
        if path.is_file():
            dest = root / "CASME2" / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".xlsx":
                shutil.copy(path, dest)
            else:
                dest.symlink_to(path)
    sheet = next((root / "CASME2").glob("*.xlsx"))
    book = openpyxl.load_workbook(sheet)
    ws = book.worksheets[0]
    header = [c.value for c in ws[1]]
    ws.cell(row=2, column=header.index("ApexFrame") + 1, value="/")
    sample = str(ws.cell(row=2, column=header.index("Filename") + 1).value).strip()
    book.save(sheet)
    return root, sample


# -- 3. flags travel from the index to the manifest, the report and the crop set ------
def test_a_flagged_apex_is_in_the_manifest_the_report_and_the_crop_set(casme_only, tmp_path):
    root, sample = casme_only
    index = index_datasets(root, ["casme2"])
    flags = index.loc[index["sample"] == sample, "flags"].item()
    assert flags and flags not in run_mod.CONVENTION_FLAGS  # e.g. apex_missing:middle_frame
    jobs = build_jobs(root, ["composite"], allow_missing=True)
    t = jobs.table
    row = t.index[t["sample"] == sample].item()
    assert t.loc[row, "flags"] == flags and (t.drop(row)["flags"] == "").all()
    sub = t.loc[[row, t.index[t.index != row][0]]]
    res = preprocess(sub, root, tmp_path, workers=1, progress=False)
    assert list(res.manifest["flags"]) == [flags, ""]
    assert list(res.manifest["status"]) == ["ok", "ok"]
    # The report lists the flagged row although its crop is fine.
    rep = res.report.set_index("sample_id")
    assert rep.loc[f"casme2/{t.loc[row, 'subject']}/{sample}", ["status", "flags"]].tolist() == ["ok", flags]
    paths = write_outputs(res, tmp_path)
    assert flags in paths["report"].read_text() and flags in paths["manifest"].read_text()
    from merlib.training.crops import load_crop_set  # importing merlib.training is slow

    crops = load_crop_set(tmp_path, set="composite")
    assert crops.meta.set_index("sample").loc[sample, "flags"] == flags


def test_convention_flags_stay_in_the_manifest_but_out_of_the_report(first_run_small):
    m, rep = first_run_small.manifest, first_run_small.report
    conv = m["flags"] == "apex:middle_frame"
    assert conv.any() and set(m.loc[conv, "dataset"]) <= {"smic", "mug"}
    assert not set(m.loc[conv & (m["status"] == "ok"), "sample_id"]) & set(rep["sample_id"])


@pytest.fixture(scope="module")
def first_run_small(synth_root, tmp_path_factory):
    jobs = build_jobs(synth_root, allow_missing=True)
    sub = jobs.table.groupby("dataset").head(3)
    return preprocess(sub, synth_root, tmp_path_factory.mktemp("small"), workers=1, progress=False)


# -- 4. --allow-missing covers an absent macro dataset ----------------------------------
def test_absent_macro_datasets_are_reported_with_allow_missing(casme_only, tmp_path, capsys):
    root, _ = casme_only
    with pytest.raises(DataLayoutError, match=r"macro set: dataset folder\(s\) CK\+/, Oulu-CASIA/, "
                                              r"JAFFE/, MUG/ not under data root .*--allow-missing"):
        build_jobs(root, ["macro"])
    from merlib.cli import main

    assert main(["preprocess", "--data-root", str(root), "--out", str(tmp_path / "cli"), "--sets", "macro",
                 "--quiet"]) == 2
    assert "macro set: dataset folder(s) CK+/" in capsys.readouterr().err
    # A root that is not SynthME stays strict about the composite too.
    with pytest.raises((MissingSamplesError, DataLayoutError), match="SAMM/|not on disk"):
        build_jobs(root, ["composite"])
    jobs = build_jobs(root, allow_missing=True)  # before: "ckplus: expected folder CK+/"
    assert set(jobs.table["set"]) == {"composite"}
    gone = jobs.missing[jobs.missing["set"] == "macro"]
    assert list(gone["dataset"]) == ["ckplus", "oulu", "jaffe", "mug"]
    assert gone["reason"].iloc[0] == "dataset folder CK+/ not under the data root"
    res = preprocess(jobs.table.head(1), root, tmp_path, workers=1, progress=False)
    res = run_mod.RunResult(res.manifest, run_mod._report(res.manifest, jobs.missing), res.store, res.stats)
    rows = res.report[res.report["set"] == "macro"]
    assert list(rows["sample_id"]) == ["ckplus", "oulu", "jaffe", "mug"]
    assert (rows["status"] == "missing").all()
    assert run_mod.summary(res).loc["macro", "missing"] == 4


# -- 8. and 7. parameters -----------------------------------------------------------------
def test_a_negative_seed_is_a_config_error(synth_root):
    with pytest.raises(ConfigError, match="seed: expected an integer >= 0, got -1"):
        build_jobs(synth_root, ["macro"], seed=-1)
    with pytest.raises(ConfigError, match=r"sets: expected a non-empty subset"):
        build_jobs(synth_root, [])


@pytest.mark.parametrize("workers", [0, -3, 1.5, True])
def test_bad_worker_counts_are_config_errors(workers, first_run_small, synth_root, tmp_path):
    with pytest.raises(ConfigError, match=f"workers: expected an integer >= 1 or None \\(all cores\\), "
                                          f"got {workers!r}"):
        preprocess(first_run_small.manifest[list(JOB_COLUMNS)].head(1), synth_root, tmp_path,
                   workers=workers, progress=False)


def test_a_local_cluster_larger_than_the_cores_is_capped_and_says_so(first_run_small, synth_root, tmp_path,
                                                                     monkeypatch):
    seen = {}

    def fake_dask(items, cfg, store_root, bar, workers, scheduler):
        seen["workers"] = workers
        return run_mod._run_serial(items, cfg, store_root, bar), workers

    monkeypatch.setattr(run_mod, "_available_cpus", lambda: 2)
    monkeypatch.setattr(run_mod, "_run_dask", fake_dask)
    with pytest.warns(MerlibWarning, match="workers: 999 requested, capped at the 2 cores available"):
        res = preprocess(first_run_small.manifest[list(JOB_COLUMNS)].head(2), synth_root, tmp_path,
                         workers=999, progress=False)
    assert seen["workers"] == 2 and res.stats["workers"] == 2
    assert res.stats["workers_note"] == "workers: 999 requested, capped at the 2 cores available"
    assert run_mod.worker_count(2) == (2, "") and run_mod.worker_count(None) == (2, "")


def test_an_output_folder_under_a_file_is_one_clear_error(first_run_small, synth_root, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"store_dir: cannot write to {blocker}/store"):
        preprocess(first_run_small.manifest[list(JOB_COLUMNS)].head(1), synth_root, blocker / "store",
                   workers=1, progress=False)
    with pytest.raises(OutputError, match=f"out_dir: cannot write to {blocker}/out"):
        write_outputs(first_run_small, blocker / "out")


# -- 7. the local cluster shuts down without a traceback ---------------------------------
def test_a_two_worker_run_exits_with_a_clean_stderr(first_run_small, synth_root, tmp_path):
    jobs = first_run_small.manifest[list(JOB_COLUMNS)].head(4)
    jobs.to_csv(tmp_path / "jobs.csv", index=False)
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        import pandas as pd
        from merlib.faces.run import JOB_COLUMNS, preprocess
        if __name__ == "__main__":
            jobs = pd.read_csv({str(tmp_path / 'jobs.csv')!r}, dtype=str, keep_default_na=False)
            jobs = jobs.astype({{**JOB_COLUMNS, "frame": "float64"}}).astype(JOB_COLUMNS)
            res = preprocess(jobs, {str(synth_root)!r}, {str(tmp_path / 'store')!r}, workers=2,
                             progress=False)
            print(json.dumps({{"workers": res.stats["workers"], "ok": int((res.manifest.status == "ok").sum())}}))
    """))
    # Hold the dashboard's default port, as a second run on the machine would: before,
    # every run then printed a "Port 8787 is already in use" warning.
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # already held by someone else: the same situation
    try:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=300, env=env, cwd=tmp_path)
    finally:
        holder.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"workers": 2, "ok": 4}
    for noise in ("Traceback", "CommClosedError", "Port 8787", "Error"):
        assert noise not in proc.stderr, proc.stderr[-2000:]


# -- 6. two processes writing the outputs into one folder --------------------------------
def test_two_processes_writing_the_outputs_in_a_loop_never_collide(first_run_small, tmp_path):
    import pickle

    (tmp_path / "result.pkl").write_bytes(pickle.dumps(first_run_small))
    out = tmp_path / "out"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(f"""
        import pickle, sys
        from merlib.faces.run import write_outputs
        result = pickle.loads(open({str(tmp_path / 'result.pkl')!r}, "rb").read())
        for _ in range(int(sys.argv[1])):
            write_outputs(result, {str(out)!r})
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, str(script), "150"], stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    back = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(back) == len(first_run_small.manifest)
    assert json.loads((out / "run.json").read_text())["stats"]["jobs"] == len(back)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "report.csv", "run.json"]
    assert oct((out / "manifest.csv").stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's mode


# -- 1., 2., 5. messy frames in a whole run, and the warm rerun ---------------------------
def test_cut_short_blank_and_faceless_frames_in_a_run_then_a_warm_rerun(astronaut_bgr, tmp_path, monkeypatch):
    root = tmp_path / "data"
    clip = root / "CK+" / "cohn-kanade-images" / "S001" / "001"
    for n in (1, 2, 4, 5):
        write(clip / f"S001_001_0000000{n}.png", face_frame(astronaut_bgr, 0, 1.0 + 0.02 * n))
    write(clip / "S001_001_00000003.png", face_frame(astronaut_bgr, 0, 1.06)[::-1].copy())  # upside down
    write(clip / "S001_001_00000006.png", np.full((480, 640), 128, np.uint8))  # blank
    whole = (clip / "S001_001_00000005.png").read_bytes()
    (clip / "S001_001_00000007.png").write_bytes(whole[: len(whole) // 2])  # cut short
    names = [3, 5, 6, 7]
    jobs = pd.DataFrame({
        "sample_id": [f"ckplus/S001/S001_001#{n}" for n in names], "set": "macro", "dataset": "ckplus",
        "part": "", "subject": "S001", "sample": "S001_001", "label": "positive", "frame": names,
        "frame_path": [f"{clip.relative_to(root)}/S001_001_0000000{n}.png" for n in names], "flags": "",
    }).astype(JOB_COLUMNS)
    store = tmp_path / "store"
    res = preprocess(jobs, root, store, workers=1, progress=False)
    m = res.manifest
    assert list(m["status"]) == ["fallback", "ok", "failed", "failed"]
    assert m.loc[0, "landmark_source"] == "S001_001_00000002.png"
    assert m.loc[2, "reason"].startswith("no face found; flat crop: grey-level std 0.0")
    assert m.loc[3, "reason"].startswith("truncated PNG: no IEND chunk")
    assert m.loc[3, "frame_path"].endswith("S001_001_00000007.png")
    assert list(res.report["sample_id"]) == [jobs["sample_id"][i] for i in (0, 2, 3)]
    assert (m.loc[m["status"] == "failed", "crop_file"] == "").all()
    assert m.loc[0, "crop_file"].count("-") == 2  # keyed by the borrowed neighbour too
    # Warm rerun: every result, the fallback and the failures included, from the cache.
    for name in ("detect_faces", "landmarks_68"):
        monkeypatch.setattr(lm, name, _boom)
    monkeypatch.setattr(run_mod, "process_batch", _boom)
    again = preprocess(jobs, root, store, workers=1, progress=False)
    assert again.stats["cached"] == 4 and again.stats["computed"] == 0
    pd.testing.assert_frame_equal(again.manifest, m)
    # Editing the neighbour the fallback borrowed from invalidates that crop only.
    monkeypatch.undo()
    write(clip / "S001_001_00000002.png", face_frame(astronaut_bgr, 5, 1.2))
    third = preprocess(jobs, root, store, workers=1, progress=False)
    assert third.stats["computed"] == 1 and third.stats["cached"] == 3
    assert third.manifest.loc[0, "crop_file"] != m.loc[0, "crop_file"]
