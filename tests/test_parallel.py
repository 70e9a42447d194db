"""Workers of merlib's local clusters start without Dask's malloc trim setting (it
halves torch training speed in a worker) and keep Dask's one-thread BLAS settings."""
from __future__ import annotations

import os

import dask.config

import pytest

from merlib.errors import ConfigError
from merlib.parallel import local_cluster, tcmalloc_path, worker_environ


def _environ() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "MERLIB_TEST_SPAWN_VAR")}


def test_worker_environ_drops_only_the_trim_threshold(monkeypatch):
    monkeypatch.setenv("MERLIB_WORKER_TCMALLOC", "0")
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {
            "MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1, "EXTRA": "x"}}):
        assert worker_environ() == {"OMP_NUM_THREADS": 1, "EXTRA": "x"}


def test_a_worker_process_starts_without_malloc_trim():
    from dask.distributed import Client

    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get("distributed.nanny.pre-spawn-environ")
    # Dask's own variables (OMP_NUM_THREADS...) yield to the parent's environment, which
    # `make` sets; a variable of this test's own shows that the others still reach a worker.
    env = {**dask.config.get("distributed.nanny.pre-spawn-environ"), "MERLIB_TEST_SPAWN_VAR": "kept"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        with local_cluster(1) as cluster, Client(cluster) as client:
            seen = client.submit(_environ, pure=False).result()
        # The setting is only changed while the cluster starts.
        assert dask.config.get("distributed.nanny.pre-spawn-environ") == env
    assert seen == {"MALLOC_TRIM_THRESHOLD_": None, "MERLIB_TEST_SPAWN_VAR": "kept"}


def test_kept_clusters_serve_every_run_until_released():
    from merlib.evaluation.runner import task_runner
    from merlib.parallel import _KEPT, keep_local_clusters

    keep_local_clusters()
    try:
        with task_runner(n_workers=2, processes=False) as first:
            workers = sorted(first.client.scheduler_info()["workers"])
            assert first.run(_square, {"a": (3,)}) == {"a": 9}
        with task_runner(n_workers=2, processes=False) as second:
            # The same workers: nothing was started again.
            assert sorted(second.client.scheduler_info()["workers"]) == workers
            assert second.run(_square, {"b": (4,)}) == {"b": 16}
        cluster = _KEPT[(2, False)]
    finally:
        keep_local_clusters(False)
    assert not _KEPT and cluster.status.name == "closed"
    # Off again: each run starts its own cluster, closed at the end.
    with task_runner(n_workers=2, processes=False) as third:
        assert sorted(third.client.scheduler_info()["workers"]) != workers
    assert not _KEPT


def _square(x: int) -> int:
    return x * x


def test_tcmalloc_is_preloaded_in_workers_only_as_asked(monkeypatch, tmp_path):
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    fake = tmp_path / "libtcmalloc_minimal.so.4"
    fake.write_bytes(b"")
    monkeypatch.setenv("MERLIB_WORKER_TCMALLOC", str(fake))
    assert worker_environ()["LD_PRELOAD"] == str(fake)
    # A preload of the caller's own is what the workers inherit; none is added.
    monkeypatch.setenv("LD_PRELOAD", "/opt/other.so")
    assert "LD_PRELOAD" not in worker_environ()
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setenv("MERLIB_WORKER_TCMALLOC", "0")
    assert tcmalloc_path() is None and "LD_PRELOAD" not in worker_environ()
    monkeypatch.setenv("MERLIB_WORKER_TCMALLOC", str(tmp_path / "missing.so"))
    with pytest.raises(ConfigError, match=r"MERLIB_WORKER_TCMALLOC: '.*missing.so' is not a file"):
        worker_environ()


def _preloaded() -> list[str]:
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if "tcmalloc" in line})


def test_a_worker_process_runs_on_tcmalloc_where_the_machine_has_it(monkeypatch):
    from dask.distributed import Client

    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv("MERLIB_WORKER_TCMALLOC", raising=False)
    lib = tcmalloc_path()
    if lib is None:
        pytest.skip("no tcmalloc on this machine")
    with local_cluster(1) as cluster, Client(cluster) as client:
        seen = client.submit(_preloaded, pure=False).result()
        # Dask's nanny writes the workers' variables into this process's environment;
        # the preload is taken back out (OpenVINO in this process crashes under it).
        assert "LD_PRELOAD" not in os.environ
        assert "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD" not in os.environ
    assert seen and all("tcmalloc" in p for p in seen)


def test_the_loopback_probe_sees_a_connection_that_cannot_open(monkeypatch):
    import socket

    from merlib.parallel import loopback_available

    assert loopback_available()  # the machine running the tests has 127.0.0.1

    def unreachable(*args, **kwargs):
        # What connect() answers in a network namespace whose lo is down.
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    assert not loopback_available()


def test_without_loopback_the_work_runs_in_this_process_at_once(monkeypatch):
    import time

    from dask.distributed import Client

    from merlib import parallel
    from merlib.errors import MerlibWarning
    from merlib.evaluation.runner import task_runner

    monkeypatch.setattr(parallel, "loopback_available", lambda timeout=1.0: False)
    t0 = time.monotonic()
    with pytest.warns(MerlibWarning, match=r"^no loopback network .*in this process") as seen:
        cluster = local_cluster(2)
    # Dask would wait 30 s per connection and fail after 60 s; a thread starts in well
    # under a second (20 s leaves room for a loaded machine).
    assert time.monotonic() - t0 < 20
    ours = [w for w in seen if issubclass(w.category, MerlibWarning)]
    assert len(ours) == 1 and "\n" not in str(ours[0].message)  # one line
    with cluster, Client(cluster) as client:
        assert cluster.scheduler_address.startswith("inproc://")  # no socket at all
        assert list(cluster.workers) == [0]
        assert client.submit(_square, 5, pure=False).result() == 25
    # The same through the LOSO runner, as `merlib evaluate` meets it.
    with pytest.warns(MerlibWarning, match="no loopback network"):
        with task_runner(n_workers=2) as runner:
            assert runner.n_workers == 1
            assert runner.run(_square, {"a": (3,), "b": (4,)}) == {"a": 9, "b": 16}


def _unshare_works() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="no unprivileged network namespaces (unshare -rn)")
def test_a_real_sandbox_without_loopback_falls_back_at_once():
    """In a network namespace of its own, lo is down: binding 127.0.0.1 works, connecting
    does not, which is what left Dask's workers waiting a minute."""
    import subprocess
    import sys
    import time

    code = ("import warnings; warnings.simplefilter('always')\n"
            "from dask.distributed import Client\n"
            "from merlib.parallel import loopback_available, local_cluster\n"
            "assert not loopback_available()\n"
            "with local_cluster(2) as c, Client(c) as cl:\n"
            "    print(cl.submit(sum, [1, 2], pure=False).result(), c.scheduler_address.split(':')[0])\n")
    t0 = time.monotonic()
    proc = subprocess.run(["unshare", "-rn", sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3", "inproc"]
    assert "MerlibWarning: no loopback network" in proc.stderr
    assert time.monotonic() - t0 < 45  # imports included; the failure took 60 s
