"""The task runner: results reported as they arrive, a local cluster no larger than the
cores, bad worker counts refused, a multi-worker run that exits quietly, and the run key
of older code."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from merlib.errors import ConfigError
from merlib.evaluation.runner import available_cores, task_runner

ROOT = Path(__file__).resolve().parents[2]


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("n_workers", [1, 2])
def test_each_result_is_reported_as_it_arrives(n_workers):
    seen = []
    with task_runner(n_workers=n_workers, processes=False) as runner:
        out = runner.run(_square, {f"t{i}": (i,) for i in range(5)},
                         on_result=lambda key, res: seen.append((key, res)))
        assert runner.completed == 5
    assert out == {f"t{i}": i * i for i in range(5)} and list(out) == [f"t{i}" for i in range(5)]
    assert sorted(seen) == sorted(out.items())


def test_local_cluster_is_capped_at_the_available_cores():
    cores = available_cores()
    assert cores == len(os.sched_getaffinity(0))
    with pytest.warns(UserWarning, match=rf"n_workers: {cores + 3} asked, but this process may use "
                                         rf"{cores} cores; starting {cores} workers"):
        with task_runner(n_workers=cores + 3, processes=False) as runner:
            assert runner.n_workers == cores


@pytest.mark.parametrize("bad", [0, -2, "2", 1.5, True])
def test_bad_worker_counts_are_refused_by_name(bad):
    with pytest.raises(ConfigError, match=rf"n_workers: expected an int >= 1 or None \(all cores\), got {bad!r}"):
        with task_runner(n_workers=bad):
            pass


SCRIPT = textwrap.dedent("""
    import numpy as np
    from merlib.evaluation.runner import task_runner

    def total(x, i):
        return float(x.sum()) + i

    if __name__ == "__main__":
        with task_runner(n_workers=2) as runner:
            shared = runner.share(np.ones(1000))
            out = runner.run(total, {f"t{i}": (shared, i) for i in range(6)})
        print(out["t5"])
""")


@pytest.mark.slow
def test_a_two_process_run_exits_without_warnings_or_tracebacks(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    # Another cluster's HTTP port taken (as when two runs share a machine): it used to
    # print a warning about port 8787 on every run.
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:
        blocker.close()  # already taken by someone else: the case under test anyway
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        blocker.close()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "1005.0"
    assert done.stderr.strip() == ""


def test_run_key_of_older_code_may_lack_a_new_setting(tmp_path):
    """A results folder from older code (renewed anyway) lacks config fields added since:
    that is not another run. The same absence with unchanged code, or a changed value, is."""
    from merlib.evaluation.runner import _check_run_key

    path = tmp_path / "run_key.json"
    saved = {"code": "old", "config": {"lr": 0.007}}
    now = {"code": "new", "config": {"lr": 0.007, "svm_early_grid": 0}}
    renew = frozenset({"code"})
    with pytest.warns(UserWarning, match="code='old'"):
        assert _check_run_key(saved, now, path, frozenset(), renew) is True
    with pytest.raises(ConfigError, match=r"config.svm_early_grid=None, this call has 0"):
        _check_run_key({**saved, "code": "new"}, now, path, frozenset(), renew)
    with pytest.raises(ConfigError, match=r"config.lr=0.007, this call has 0.001"):
        _check_run_key(saved, {**now, "config": {"lr": 0.001, "svm_early_grid": 0}}, path, frozenset(), renew)
