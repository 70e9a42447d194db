"""Local Dask clusters for merlib's parallel work (LOSO tasks, face pre-processing).

Both kinds of work start their workers here, so they share one fix: Dask's nanny starts
each worker process with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc hand freed
memory back to the system almost at once. Torch training frees and reallocates its
activations on every step, so each step then pays for fresh pages. Measured on a 2-core
machine (MobileNetV2 at 64 px, 2 epochs of batch 16, about 130 crops): 3.7 s per fold in
a plain process, 7.3 s in a Dask worker, 3.7 s with that one variable set by hand in a
plain process, and 4.1 s in a worker started without it. The other variables Dask sets
(one BLAS / OpenMP thread per worker) stay: merlib's tasks set their own torch threads.

Where the machine has tcmalloc (Debian's ``libtcmalloc-minimal4``), worker processes
start with it preloaded: fine-tuning a fold then took 11-12% less time (MobileViT-XXS
3.34 -> 2.93 s, MobileNetV2 5.17 -> 4.58 s, ResNet18 9.79 -> 8.71 s, one fold of the
default data, 2 epochs), with the same predictions and probabilities. Only the workers
get it: OpenVINO, which the timing chapter runs in the main process, crashes under it.
``MERLIB_WORKER_TCMALLOC=0`` turns it off; a path names another copy of the library.

A notebook runs many LOSO runs one after the other. Starting a cluster and importing
torch in its workers costs about 5 s a run, so :func:`keep_local_clusters` lets a process
keep one cluster per size and hand it to every run (:func:`reusable_cluster`); the
results do not change, as every task seeds itself.

Worker processes talk to their scheduler over TCP on 127.0.0.1. In a sandbox without a
loopback network (``lo`` down or absent) Dask would wait 30 s for each connection and end
in a traceback after a minute, so :func:`local_cluster` first checks that a connection to
127.0.0.1 opens (well under a millisecond) and, when it does not, warns in one line and
runs the work in this process instead (one worker thread, Dask's in-process transport).
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Clusters kept for reuse, by (workers, processes); empty unless kept.
_KEPT: dict[tuple[int, bool], Any] = {}
_KEEP = {"on": False}

#: Variables of Dask's ``distributed.nanny.pre-spawn-environ`` merlib's workers start without.
DROPPED_WORKER_ENVIRON: tuple[str, ...] = ("MALLOC_TRIM_THRESHOLD_",)


def available_cores() -> int:
    """CPUs this process may run on (a container's or a batch job's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def silence_worker_logs() -> None:
    """Run on each local worker just before its cluster closes: only CRITICAL messages
    from Dask and its event loop from then on (a worker whose scheduler goes first logs
    a ``CommClosedError`` traceback about a connection that is meant to close)."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


#: Where :func:`tcmalloc_path` looks for the library (Debian / Ubuntu, Fedora, others).
TCMALLOC_DIRS: tuple[str, ...] = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                                  "/usr/lib", "/usr/local/lib")
TCMALLOC_NAMES: tuple[str, ...] = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")


#: Variables of a worker's environment that must not stay in the parent's.
_WORKERS_ONLY: tuple[str, ...] = ("LD_PRELOAD", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD")


def tcmalloc_path() -> str | None:
    """The tcmalloc library the workers preload, or None (not found, or turned off with
    ``MERLIB_WORKER_TCMALLOC=0``; ``MERLIB_WORKER_TCMALLOC=/path/lib.so`` names one).

    Raises
    ------
    ConfigError
        ``MERLIB_WORKER_TCMALLOC`` names a file that does not exist.
    """
    from merlib.errors import ConfigError

    choice = os.environ.get("MERLIB_WORKER_TCMALLOC", "auto").strip()
    if choice in ("0", "off", "no", "false", ""):
        return None
    if choice != "auto":
        if not os.path.isfile(choice):
            raise ConfigError(f"MERLIB_WORKER_TCMALLOC: {choice!r} is not a file; give the tcmalloc "
                              "library's path, 'auto' or 0")
        return choice
    for folder in TCMALLOC_DIRS:
        for name in TCMALLOC_NAMES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def worker_environ() -> dict[str, Any]:
    """Dask's pre-spawn environment of a worker process, less :data:`DROPPED_WORKER_ENVIRON`,
    plus tcmalloc preloaded where :func:`tcmalloc_path` finds it (and this process has no
    ``LD_PRELOAD`` of its own, which the workers then inherit instead)."""
    import dask.config

    env = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    env = {k: v for k, v in env.items() if k not in DROPPED_WORKER_ENVIRON}
    lib = tcmalloc_path()
    if lib is not None and not os.environ.get("LD_PRELOAD"):
        # Large allocations are normal here (a batch of crops); tcmalloc would report each.
        env.update(LD_PRELOAD=lib, TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=str(1 << 40))
    return env


def loopback_available(timeout: float = 1.0) -> bool:
    """Whether this process can open a TCP connection to itself on 127.0.0.1.

    Binding alone is not enough: with ``lo`` down, Linux still binds 127.0.0.1 but every
    connection fails ("Network is unreachable"), which is what Dask's workers meet.

    Parameters
    ----------
    timeout : float, default=1.0
        Seconds to wait for the connection (it opens at once, or fails at once, on Linux).
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=timeout):
                return True
    except OSError:
        return False


def _in_process_cluster() -> Any:
    """One worker thread in this process, on Dask's in-process transport (no sockets)."""
    from dask.distributed import LocalCluster

    with warnings.catch_warnings():
        # Without a network Dask also cannot guess this host's address (it asks the
        # route to 8.8.8.8); nothing here needs one.
        warnings.filterwarnings("ignore", message="Couldn't detect a suitable IP address", category=RuntimeWarning)
        return LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                            silence_logs=logging.ERROR)


def local_cluster(n_workers: int, *, processes: bool = True) -> Any:
    """A started :class:`dask.distributed.LocalCluster` of ``n_workers`` one-thread workers.

    Processes talk over loopback only (threads use in-process comms). There is no
    dashboard, and the scheduler's HTTP server takes a free port, so a second cluster on
    the machine does not warn that port 8787 is taken.

    Without a loopback network (:func:`loopback_available` is False) worker processes
    could never reach their scheduler: a :class:`~merlib.errors.MerlibWarning` says so in
    one line and the cluster is one worker thread in this process instead, so the work
    still runs, one task at a time.
    """
    import dask.config
    from dask.distributed import LocalCluster

    if processes and not loopback_available():
        from merlib.errors import MerlibWarning

        warnings.warn(f"no loopback network (a TCP connection to 127.0.0.1 cannot be opened): running the "
                      f"tasks in this process, one at a time, instead of on {n_workers} worker process(es)",
                      MerlibWarning, stacklevel=2)
        return _in_process_cluster()
    where = {"host": "127.0.0.1"} if processes else {}
    # The nanny reads this setting when it spawns the worker, so it must hold until the
    # cluster has started; set() replaces the whole dict, so Dask's own variables stay.
    env = worker_environ()
    # Dask's nanny writes these variables into *this* process's environment before it
    # spawns a worker, and leaves them there. The preload is the workers' alone: this
    # process may run OpenVINO, which crashes under tcmalloc, and start other programs.
    mine = {k: os.environ.get(k) for k in _WORKERS_ONLY if k in env}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                                dashboard_address=None,
                                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                                silence_logs=logging.ERROR, **where)
    finally:
        for k, v in mine.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def keep_local_clusters(keep: bool = True) -> None:
    """Reuse local clusters for the rest of this process (``keep=False``: close them).

    Meant for a notebook or a session that runs many LOSO runs in turn: each run then
    finds its workers started and torch imported. The clusters close when the process
    exits.
    """
    _KEEP["on"] = bool(keep)
    if not keep:
        close_kept_clusters()


def reusable_cluster(n_workers: int, *, processes: bool = True) -> tuple[Any, bool]:
    """``(cluster, kept)``: the kept cluster of this size when :func:`keep_local_clusters`
    is on (started on first use; a closed one is replaced), else a new one. The caller
    closes the cluster only when ``kept`` is False."""
    if not _KEEP["on"]:
        return local_cluster(n_workers, processes=processes), False
    key = (int(n_workers), bool(processes))
    cluster = _KEPT.get(key)
    if cluster is None or cluster.status.name in ("closing", "closed", "failed"):
        cluster = _KEPT[key] = local_cluster(n_workers, processes=processes)
    return cluster, True


@contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the named loggers for a moment (their levels are restored afterwards)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def shutdown(client: Any, cluster: Any) -> None:
    """Close the client, then the local cluster, its workers told to keep quiet first.

    Closing a local cluster tears its scheduler down while a worker may still be sending
    it a heartbeat; that worker then logs a ``CommClosedError`` traceback (Dask's
    "Failed to communicate with scheduler during heartbeat") after a successful run:
    measured in 1 run in 9 on a loaded 2-core machine, and still 1 in 12 when the
    workers were retired first. Every result is in hand by then (task errors reach the
    client through the futures, not the logs), so the workers' logging is raised to
    CRITICAL just before, and this process's Dask loggers are quiet while closing.
    Either may be None (no client yet; an external scheduler's cluster is not ours to
    quiet or close). Errors met while closing are logged at the debug level only.
    """
    log = logging.getLogger(__name__)
    with quiet_loggers("distributed", "tornado", "asyncio"):
        if client is not None:
            if cluster is not None:
                try:
                    client.run(silence_worker_logs)
                except Exception as err:  # noqa: BLE001 - shutting down; the results are safe
                    log.debug("quieting the local Dask workers: %r", err)
            try:
                client.close(timeout=30)
            except Exception as err:  # noqa: BLE001
                log.debug("closing the Dask client: %r", err)
        if cluster is not None:
            try:
                cluster.close(timeout=30)
            except Exception as err:  # noqa: BLE001
                log.debug("closing the local Dask cluster: %r", err)


def close_kept_clusters() -> None:
    """Close every kept cluster (:func:`shutdown`)."""
    if not _KEPT:
        return  # importing dask at interpreter exit fails ("can't register atexit after shutdown")
    from dask.distributed import Client

    while _KEPT:
        _, cluster = _KEPT.popitem()
        try:
            client = Client(cluster)
        except Exception:  # noqa: BLE001 - at exit, a scheduler already torn down
            client = None
        shutdown(client, cluster)


atexit.register(close_kept_clusters)
