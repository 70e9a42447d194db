"""A LOSO run survives SIGKILL: finished tasks are on disk, a rerun reuses them and gives
the uninterrupted metrics; other settings are refused; nothing is substituted silently."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import save_file

from merlib.config import Profile
from merlib.errors import ConfigError, MissingSamplesError
from merlib.evaluation import protocol, search
from merlib.evaluation.fold import resolve_transfer
from merlib.evaluation.protocol import evaluate_loso
from merlib.models.backbone import create_backbone, feature_extractor_state
from merlib.training.crops import CropSet, synthetic_crop_set
from merlib.training.transfer import EXTRACTOR_FILE, TransferResult
from tests.toy import tiny_crops, tiny_finetune_cfg

ROOT = Path(__file__).resolve().parents[2]

# The smoke profile at one epoch; 3 subjects: 3 outer folds x 2 grid points x 2 inner
# folds = 12 inner tasks, then 3 outer fits (about a second each here).
# The code digest is pinned in both processes: an edit of merlib while the test runs (a
# checkout being worked on) must not turn "resume" into "start over".
CODE = "pinned-for-test"
RUN = f"""
import sys
from merlib.config import Profile
from merlib.evaluation import search
from merlib.evaluation.protocol import evaluate_loso
from merlib.training.crops import synthetic_crop_set

search.compute_code_digest = lambda: {CODE!r}

p = Profile.smoke()
evaluate_loso(synthetic_crop_set(3, 6, 64, seed=0), p.micro.replace(epochs=1, num_threads=1),
              sys.argv[1], search=p.search.replace(epochs=(1,)), n_workers=1)
"""


def _smoke_args():
    p = Profile.smoke()
    return (synthetic_crop_set(3, 6, 64, seed=0), p.micro.replace(epochs=1, num_threads=1),
            p.search.replace(epochs=(1,)))


def _done_tasks(out: Path) -> list[Path]:
    return sorted((out / "tasks").glob("*-*.json"))


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_uninterrupted_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "compute_code_digest", lambda: CODE)
    crops, cfg, grid = _smoke_args()
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(killed)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_done_tasks(killed)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    survived = len(_done_tasks(killed))
    assert 3 <= survived < 15  # killed in the middle: some tasks done, not all
    assert not (killed / "metrics.csv").exists()

    resumed = evaluate_loso(crops, cfg, killed, search=grid, n_workers=1)
    fresh = evaluate_loso(crops, cfg, tmp_path / "fresh", search=grid, n_workers=1)

    assert resumed.tasks == {"total": 15, "reused": survived, "computed": 15 - survived}
    assert fresh.tasks == {"total": 15, "reused": 0, "computed": 15}
    pd.testing.assert_frame_equal(resumed.metrics, fresh.metrics)
    pd.testing.assert_frame_equal(resumed.predictions, fresh.predictions)
    pd.testing.assert_frame_equal(resumed.search.scores, fresh.search.scores)
    pd.testing.assert_frame_equal(resumed.curves, fresh.curves)
    on_disk = pd.read_csv(killed / "metrics.csv")
    assert on_disk["uf1"].tolist() == fresh.metrics["uf1"].tolist()
    # n per part: every sample of the part, as scored.
    counts = crops.meta["dataset"].value_counts()
    for row in on_disk.itertuples():
        assert row.n == (len(crops) if row.part == "composite" else counts[row.part])
    assert json.loads((killed / "run.json").read_text())["tasks"]["reused"] == survived
    # A second rerun trains nothing.
    again = evaluate_loso(crops, cfg, killed, search=grid, n_workers=1)
    assert again.tasks == {"total": 15, "reused": 15, "computed": 0}
    pd.testing.assert_frame_equal(again.metrics, fresh.metrics)


@pytest.fixture
def fake_fit(monkeypatch):
    """Training replaced by a stub that predicts the true class (fast); records calls."""
    calls = []

    def fit_predict(crops, train_idx, test_idx, cfg, transfer_state, seed):
        calls.append((np.asarray(test_idx), cfg, seed))
        y = crops.y[test_idx]
        return {"test_idx": np.asarray(test_idx), "pred_svm": y.copy(), "pred_softmax": y.copy(),
                "proba": np.eye(3, dtype=np.float32)[y],
                "svm": {"C": 1.0, "kernel": "linear", "inner_uf1": float("nan")},
                "curves": pd.DataFrame({"epoch": [1], "train_loss": [0.5]}), "seconds": 0.0}

    monkeypatch.setattr(search, "fit_predict", fit_predict)
    monkeypatch.setattr(protocol, "fit_predict", fit_predict)
    return calls


def test_rerun_with_other_settings_is_refused_by_name(fake_fit, tmp_path):
    crops = tiny_crops(n_subjects=3, per_subject=3)
    evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, n_workers=1)
    with pytest.raises(ConfigError, match=r"lr=0\.001.*this call has 0\.01.*resume=False"):
        evaluate_loso(crops, tiny_finetune_cfg(lr=0.01), tmp_path, n_workers=1)
    with pytest.raises(ConfigError, match="crops="):
        evaluate_loso(tiny_crops(n_subjects=3, per_subject=3, seed=1), tiny_finetune_cfg(), tmp_path,
                      n_workers=1)
    n = len(fake_fit)
    res = evaluate_loso(crops, tiny_finetune_cfg(lr=0.01), tmp_path, n_workers=1, resume=False)
    assert res.tasks == {"total": 3, "reused": 0, "computed": 3} and len(fake_fit) == n + 3


def test_out_dir_that_cannot_be_written_is_found_before_any_training(fake_fit, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"out_dir: cannot write results under .*a-file"):
        evaluate_loso(tiny_crops(3, 3), tiny_finetune_cfg(), blocker / "out", n_workers=1)
    assert fake_fit == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_dir_is_found_before_any_training(fake_fit, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="out_dir: cannot write"):
            evaluate_loso(tiny_crops(3, 3), tiny_finetune_cfg(), out, n_workers=1)
    finally:
        out.chmod(0o755)
    assert fake_fit == []


def test_an_unreadable_task_file_is_named_and_recomputed(fake_fit, tmp_path):
    crops = tiny_crops(n_subjects=3, per_subject=3)
    first = evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, n_workers=1)
    npz = sorted((tmp_path / "tasks").glob("outer-f1-*.npz"))[0]
    npz.write_bytes(npz.read_bytes()[:20])  # cut short
    with pytest.warns(UserWarning, match=r"outer-f1-.*\.json: stored task result unreadable"):
        again = evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, n_workers=1)
    assert again.tasks == {"total": 3, "reused": 2, "computed": 1}
    pd.testing.assert_frame_equal(first.metrics, again.metrics)


def test_a_sample_without_prediction_raises_naming_it(fake_fit, monkeypatch):
    real = protocol.fit_predict

    def drops_one(crops, train_idx, test_idx, cfg, state, seed):
        out = real(crops, train_idx, test_idx, cfg, state, seed)
        if crops.groups[test_idx[0]].endswith("s01"):
            keep = slice(1, None)  # the first test row of subject s01 gets no prediction
            out = {**out, "test_idx": out["test_idx"][keep], "pred_svm": out["pred_svm"][keep],
                   "pred_softmax": out["pred_softmax"][keep], "proba": out["proba"][keep]}
        return out

    monkeypatch.setattr(protocol, "fit_predict", drops_one)
    crops = tiny_crops(n_subjects=3, per_subject=3)
    with pytest.raises(MissingSamplesError, match=r"pred_svm: 1 sample\(s\) have no prediction.*samm/s01/s01_00"):
        evaluate_loso(crops, tiny_finetune_cfg(), n_workers=1)


def test_transfer_trained_at_another_image_size_is_refused(tmp_path):
    save_file(feature_extractor_state(create_backbone("mobilevit_xxs", image_size=128)),
              str(tmp_path / EXTRACTOR_FILE))
    macro = TransferResult(tmp_path, pd.DataFrame(), 1, 0.5,
                           {"config": {"arch": "mobilevit_xxs", "image_size": 128}})
    with pytest.raises(ConfigError, match=r"image_size=128, cfg.image_size=64"):
        resolve_transfer(macro, tiny_finetune_cfg())
    assert resolve_transfer(macro, tiny_finetune_cfg(image_size=128))  # same size loads


def _preprocess_folder(folder: Path) -> CropSet:
    """A crop set as read from a preprocess folder, with the folder's report beside it."""
    crops = tiny_crops(n_subjects=3, per_subject=3)
    meta = crops.meta.assign(set="composite", status="ok",
                             flags=["apex_estimated:motion" if i == 0 else "" for i in range(len(crops))])
    folder.mkdir()
    meta.to_csv(folder / "manifest.csv", index=False)
    pd.DataFrame([
        {"sample_id": "casme2/sub09/EP01_01", "set": "composite", "dataset": "casme2",
         "frame_path": "CASME2/sub09/EP01_01/img46.jpg", "status": "failed",
         "reason": "no face found", "fallback": ""},
        {"sample_id": "samm/007/007_1_2", "set": "composite", "dataset": "samm", "frame_path": "",
         "status": "missing", "reason": "listed in the MEGC2019 composite, not on disk", "fallback": ""},
        {"sample_id": "casme2/sub02/EP03_02", "set": "composite", "dataset": "casme2",
         "frame_path": "CASME2/sub02/EP03_02/img80.jpg", "status": "fallback",
         "reason": "landmarks from frame 79", "fallback": "neighbour"},
        {"sample_id": "ckplus/S005/001#11", "set": "macro", "dataset": "ckplus",
         "frame_path": "CK+/S005/001/11.png", "status": "failed", "reason": "no face found", "fallback": ""},
    ]).to_csv(folder / "report.csv", index=False)
    return CropSet(crops.X, meta, str(folder), crops.data_kind)


def test_excluded_samples_and_flags_reach_the_results(fake_fit, tmp_path):
    crops = _preprocess_folder(tmp_path / "crops")
    res = evaluate_loso(crops, tiny_finetune_cfg(), tmp_path / "out", n_workers=1)
    excluded = pd.read_csv(tmp_path / "out" / "excluded.csv", keep_default_na=False)
    assert excluded.columns.tolist() == ["sample", "dataset", "status", "reason"]
    # The composite's failed and missing samples; not the used fallback, not the macro set.
    assert excluded["sample"].tolist() == ["casme2/sub09/EP01_01", "samm/007/007_1_2"]
    assert excluded["status"].tolist() == ["failed", "missing"]
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["n_excluded"] == 2 and record["n_samples"] == 9
    assert record["excluded_by_status"] == {"failed": 1, "missing": 1}
    assert res.excluded is not None and len(res.excluded) == 2
    pred = pd.read_csv(tmp_path / "out" / "predictions.csv", keep_default_na=False)
    assert pred["flags"].tolist()[:2] == ["apex_estimated:motion", ""]


def test_crops_not_from_a_preprocess_folder_record_exclusions_as_unknown(fake_fit, tmp_path):
    evaluate_loso(tiny_crops(3, 3), tiny_finetune_cfg(), tmp_path, n_workers=1)
    assert json.loads((tmp_path / "run.json").read_text())["n_excluded"] is None
    assert not (tmp_path / "excluded.csv").exists()
    assert "flags" not in pd.read_csv(tmp_path / "predictions.csv").columns


def test_two_processes_writing_one_file_never_share_a_temporary_name(tmp_path):
    from merlib.evaluation.runner import atomic_write

    seen = []
    atomic_write(tmp_path / "x.csv", lambda p: seen.append(p) or p.write_text("a"))
    atomic_write(tmp_path / "x.csv", lambda p: seen.append(p) or p.write_text("b"))
    assert seen[0] != seen[1] and str(os.getpid()) in seen[0].name
    assert (tmp_path / "x.csv").read_text() == "b" and sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_tasks_of_other_code_are_deleted_with_a_warning_and_run_again(fake_fit, tmp_path, monkeypatch):
    crops = tiny_crops(n_subjects=3, per_subject=3)
    evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, n_workers=1)
    monkeypatch.setattr(search, "compute_code_digest", lambda: "0123456789abcdef")
    with pytest.warns(UserWarning, match=r"made with code='[0-9a-f]{16}', this run has '0123456789abcdef'; "
                                         r"they are deleted and every task runs again"):
        res = evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, n_workers=1)
    assert res.tasks == {"total": 3, "reused": 0, "computed": 3}
    assert len(list((tmp_path / "tasks").glob("outer-*.json"))) == 3  # the old ones are gone

