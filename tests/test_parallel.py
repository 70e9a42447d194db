"""Workers of merlib's local clusters start without Dask's malloc trim setting (it
halves torch training speed in a worker) and keep Dask's one-thread BLAS settings."""
from __future__ import annotations

import os

import dask.config

from merlib.parallel import local_cluster, worker_environ


def _environ() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "MERLIB_TEST_SPAWN_VAR")}


def test_worker_environ_drops_only_the_trim_threshold():
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
