"""Run keyed tasks serially or on Dask (a local cluster, or an existing scheduler).

Tasks are ``{key: args}`` dicts; the keys are stable ids (``outer-f3-g5``) built from the
fold index and the :class:`~sklearn.model_selection.ParameterGrid` index, so results are
matched by key, not by completion order, and the same call scales to a real cluster
(dask-jobqueue, Kubernetes) by passing its scheduler address.
"""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Runner:
    """Executes tasks; build it with :func:`task_runner`.

    Attributes
    ----------
    client : distributed.Client or None
        None: tasks run one after the other in this process.
    """

    def __init__(self, client: Any = None) -> None:
        self.client = client

    @property
    def kind(self) -> str:
        return "serial" if self.client is None else f"dask ({self.n_workers} workers)"

    @property
    def n_workers(self) -> int:
        return 1 if self.client is None else max(1, len(self.client.scheduler_info()["workers"]))

    def share(self, obj: Any) -> Any:
        """Send a large argument once (a Dask future), reused by every task."""
        return obj if self.client is None else self.client.scatter(obj, broadcast=True, hash=False)

    def run(self, fn: Callable[..., Any], tasks: dict[str, tuple], *, progress: bool = False,
            desc: str = "tasks") -> dict[str, Any]:
        """``{key: fn(*args)}`` for every task; a failed task raises here."""
        from tqdm.auto import tqdm

        if not tasks:
            return {}
        bar = tqdm(total=len(tasks), desc=desc, disable=not progress)
        try:
            if self.client is None:
                out = {}
                for key, args in tasks.items():
                    out[key] = fn(*args)
                    bar.update(1)
                return out
            from dask.distributed import as_completed

            # Unique Dask keys per call (a client may run the same ids twice); ours map back.
            run_id = uuid.uuid4().hex[:8]
            futures = {self.client.submit(fn, *args, key=f"{key}-{run_id}", pure=False): key
                       for key, args in tasks.items()}
            out = {}
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
                bar.update(1)
            return {key: out[key] for key in tasks}
        finally:
            bar.close()


@contextmanager
def task_runner(client: Any = None, scheduler: str | None = None, n_workers: int | None = None,
                processes: bool = True) -> Iterator[Runner]:
    """A :class:`Runner`: given client, scheduler address, local cluster, or serial.

    Parameters
    ----------
    client : distributed.Client, optional
        Used as is (not closed here).
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``).
    n_workers : int, optional
        Local cluster size (default: CPU count). ``1`` without client or scheduler runs
        serially in this process (no cluster).
    processes : bool, default=True
        Local cluster of processes (parallel torch) or of threads (tests: fast start;
        torch work then takes turns, see :func:`merlib.evaluation.protocol.fit_predict`).
    """
    if client is not None:
        yield Runner(client)
        return
    if scheduler is None and n_workers == 1:
        yield Runner(None)
        return
    if n_workers is not None and n_workers < 1:
        raise ValueError(f"n_workers: expected >= 1 or None (all cores), got {n_workers}")
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=processes, dashboard_address=None, silence_logs=logging.ERROR)
    own = Client(cluster if cluster is not None else scheduler)
    try:
        yield Runner(own)
    finally:
        own.close()
        if cluster is not None:
            cluster.close()
