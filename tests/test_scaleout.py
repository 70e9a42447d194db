"""Scale-out stays exact: a real ``dask scheduler`` + ``dask worker`` pair on 127.0.0.1
gives the serial run's LOSO metrics and pre-processing manifest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merlib.evaluation.protocol import evaluate_loso
from merlib.faces.run import build_jobs, load_crops, preprocess
from tests.toy import tiny_crops, tiny_finetune_cfg

ROOT = Path(__file__).resolve().parents[1]


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each (they shut down side by side), SIGKILL to any still up after 20 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of a scheduler with one single-threaded worker, both separate processes."""
    from dask.distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    logs = [open(folder / "scheduler.log", "w"), open(folder / "worker.log", "w")]
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(file)],
            cwd=ROOT, env=env, stdout=logs[0], stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while not file.is_file() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(file),
             "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
             "--local-directory", str(folder)],
            cwd=ROOT, env=env, stdout=logs[1], stderr=subprocess.STDOUT))
        with Client(address) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        _stop(list(reversed(procs)))  # the worker first, then its scheduler
        for log in logs:
            log.close()


@pytest.mark.slow
def test_evaluate_on_a_scheduler_gives_the_serial_metrics(scheduler, tmp_path):
    crops = tiny_crops(n_subjects=3, per_subject=4)
    serial = evaluate_loso(crops, tiny_finetune_cfg(), n_workers=1)
    remote = evaluate_loso(crops, tiny_finetune_cfg(), tmp_path, scheduler=scheduler)
    pd.testing.assert_frame_equal(serial.metrics, remote.metrics)
    cols = ["fold", "pred_svm", "pred_softmax", "p_negative", "p_positive", "p_surprise"]
    pd.testing.assert_frame_equal(serial.predictions[cols], remote.predictions[cols])
    assert remote.tasks["computed"] == 3 and remote.tasks["reused"] == 0
    assert json.loads((tmp_path / "run.json").read_text())["runner"] == "dask (1 workers)"


@pytest.mark.slow
def test_preprocess_on_a_scheduler_gives_the_serial_manifest(scheduler, synth_root, tmp_path):
    jobs = build_jobs(synth_root, ["composite"], allow_missing=True)
    serial = preprocess(jobs, synth_root, tmp_path / "serial", workers=1, progress=False)
    remote = preprocess(jobs, synth_root, tmp_path / "remote", scheduler=scheduler, progress=False)
    assert remote.stats["computed"] == serial.stats["computed"] == len(jobs.table) > 0
    pd.testing.assert_frame_equal(serial.manifest, remote.manifest)
    pd.testing.assert_frame_equal(serial.report, remote.report)
    a, pa, _ = load_crops(serial.manifest, serial.store)
    b, pb, _ = load_crops(remote.manifest, remote.store)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pa, pb)
