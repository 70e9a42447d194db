"""Run keyed tasks serially or on Dask, and keep each finished one on disk.

Tasks are ``{key: args}`` dicts; the keys are stable ids (``outer-f3-g5``) built from the
fold index and the :class:`~sklearn.model_selection.ParameterGrid` index, so results are
matched by key, not by completion order, and the same call scales to a real cluster
(dask-jobqueue, Kubernetes) by passing its scheduler address.

:class:`TaskStore` makes a run resumable: every result is written, atomically, by the
driver as it arrives (workers need no shared file system), under a name that carries a
digest of everything that changes it; :func:`run_tasks` then runs only what is not there.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merlib.errors import ConfigError
from merlib.parallel import available_cores, reusable_cluster, shutdown

#: Version of the task file layout; a change makes older task files unreadable on purpose.
STORE_FORMAT = 1


class Runner:
    """Executes tasks; build it with :func:`task_runner`.

    Attributes
    ----------
    client : distributed.Client or None
        None: tasks run one after the other in this process.
    completed : int
        Tasks this runner has run to the end (all calls of :meth:`run`).
    """

    def __init__(self, client: Any = None) -> None:
        self.client = client
        self.completed = 0

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
            desc: str = "tasks", on_result: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
        """``{key: fn(*args)}`` for every task; a failed task raises here.

        Parameters
        ----------
        fn : callable
        tasks : dict of str to tuple
            Task key -> positional arguments of ``fn``.
        progress : bool, default=False
        desc : str
            Label of the progress bar.
        on_result : callable, optional
            ``on_result(key, result)`` is called in this process as each task finishes
            (completion order), before the next result is collected: what it writes is
            on disk even if a later task fails or the process is killed.
        """
        from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

        if not tasks:
            return {}
        bar = tqdm(total=len(tasks), desc=desc, disable=not progress)
        try:
            out: dict[str, Any] = {}
            if self.client is None:
                for key, args in tasks.items():
                    out[key] = fn(*args)
                    self.completed += 1
                    if on_result is not None:
                        on_result(key, out[key])
                    bar.update(1)
                return out
            from dask.distributed import as_completed

            # Unique Dask keys per call (a client may run the same ids twice); ours map back.
            run_id = uuid.uuid4().hex[:8]
            futures = {self.client.submit(fn, *args, key=f"{key}-{run_id}", pure=False): key
                       for key, args in tasks.items()}
            for fut in as_completed(futures):
                key = futures[fut]
                out[key] = fut.result()
                self.completed += 1
                if on_result is not None:
                    on_result(key, out[key])
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
        Local cluster size, at most the cores this process may use
        (:func:`available_cores`; more is capped there, with a warning, since extra
        processes on the same cores only compete). Default: all of them. ``1`` without
        client or scheduler runs serially in this process (no cluster).
    processes : bool, default=True
        Local cluster of processes (parallel torch) or of threads (tests: fast start;
        torch work then takes turns, see :func:`merlib.evaluation.fold.fit_predict`).

    Raises
    ------
    ConfigError
        ``n_workers`` below 1 or not an int.
    """
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                  or n_workers < 1):
        raise ConfigError(f"n_workers: expected an int >= 1 or None (all cores), got {n_workers!r}")
    if client is not None:
        yield Runner(client)
        return
    if scheduler is None and n_workers == 1:
        yield Runner(None)
        return
    from dask.distributed import Client

    cluster = None
    if scheduler is None:
        cores = available_cores()
        if n_workers is not None and n_workers > cores:
            warnings.warn(f"n_workers: {n_workers} asked, but this process may use {cores} cores; "
                          f"starting {cores} workers", stacklevel=3)
        cluster, kept = reusable_cluster(min(n_workers or cores, cores), processes=processes)
        if kept:  # a kept cluster (merlib.parallel.keep_local_clusters) outlives this run
            with Client(cluster) as own:
                yield Runner(own)
            return
    own = Client(cluster if cluster is not None else scheduler)
    try:
        yield Runner(own)
    finally:
        # Every result is in hand (or the run failed and is raising); an external
        # scheduler's cluster is not ours to quiet or close.
        shutdown(own, cluster)


def _digest(obj: Any, length: int = 16) -> str:
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a unique temporary name beside ``path``, then rename it to ``path``.

    The name carries the process id and a random part, so two processes writing the same
    file never share a temporary file; readers see the old file or the new one, never
    half of one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


#: The task key of every entry of a shared fit cache: there a task is known by its
#: identity alone (a run's "outer-f3-g-1" and a search's "outer-f3-g0" can be one fit).
SHARED_KEY = "fit"


class TaskStore:
    """Finished task results in a folder, one small set of files per task.

    A result is a dict whose values are arrays (saved with :func:`numpy.savez`, read
    back without pickle), DataFrames (CSV, dtypes restored) or JSON-able values. Task
    ``key`` with identity ``identity`` is stored as ``<key>-<digest>.npz``,
    ``<key>-<digest>.<name>.csv`` per DataFrame, and ``<key>-<digest>.json`` written last
    (a task is done when its JSON is there); the digest covers the identity and the
    store's run key, so results of other settings are never picked up.

    Use :meth:`open`, which checks the folder is writable and holds no other run.

    Attributes
    ----------
    folder : Path
    run_key : dict
    reused, computed : int
        Tasks read back / written by this store object.
    """

    RUN_KEY_FILE = "run_key.json"

    def __init__(self, folder: Path, run_key: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.run_key = run_key
        self.reused = 0
        self.computed = 0
        self.shared: tuple[TaskStore, dict[str, Any]] | None = None

    def share_with(self, cache: TaskStore, context: dict[str, Any]) -> TaskStore:
        """Also look finished tasks up in, and write them to, ``cache``: a fit cache that
        several runs use (e.g. a fixed-settings run and a grid search's final fits).

        ``context`` is what this store's run key adds to a task's identity there (the
        crops' fingerprint, the transferred weights' digest): a task matches only the
        same fit on the same data. A hit is copied into this store's folder too, so a
        run folder stays complete on its own.
        """
        self.shared = (cache, context)
        return self

    @classmethod
    def open(cls, folder: str | os.PathLike, run_key: dict[str, Any], *, resume: bool = True,
             ignore: frozenset[str] = frozenset(), renew: frozenset[str] = frozenset()) -> TaskStore:
        """The store in ``folder``, created (and its run key written) when new.

        Parameters
        ----------
        folder : path
        run_key : dict
            JSON-able description of everything the run's results depend on.
        resume : bool, default=True
            False: results already in ``folder`` are deleted first.
        ignore : frozenset of str
            Run-key entries that are only recorded (e.g. the git commit, when ``renew``
            holds a finer digest of the code): they may differ on resumption.
        renew : frozenset of str
            Run-key entries whose change makes the stored results worthless rather than
            wrong to ask for (e.g. the code that computed them): they are deleted, with a
            warning, and every task runs again.

        Raises
        ------
        ConfigError
            ``folder`` cannot be created or written (read-only, under a file), or it holds
            a run with another run key (names the first differing entry).
        """
        folder = Path(folder)
        key_file = folder / cls.RUN_KEY_FILE
        try:
            if not resume and folder.is_dir():
                shutil.rmtree(folder)
            folder.mkdir(parents=True, exist_ok=True)
            saved = _read_json(key_file) if key_file.is_file() else None
            if saved is not None and _check_run_key(saved, run_key, key_file, ignore, renew):
                shutil.rmtree(folder)
                folder.mkdir(parents=True)
                saved = None
            if saved is None:
                text = json.dumps(run_key, indent=1, default=_json_default)
                atomic_write(key_file, lambda p: p.write_text(text))
            else:
                # A resumable folder must also take new files: find out now, not after training.
                atomic_write(folder / ".write-check", lambda p: p.write_text("ok"))
                (folder / ".write-check").unlink()
            _remove_stale_temporaries(folder)
        except OSError as err:
            raise ConfigError(f"out_dir: cannot write results under {folder} "
                              f"({err.strerror or err}); choose a writable folder") from err
        return cls(folder, run_key)

    def _stem(self, key: str, identity: dict[str, Any]) -> str:
        return f"{key}-{_digest({'run': self.run_key, 'task': identity})}"

    def load(self, key: str, identity: dict[str, Any]) -> dict[str, Any] | None:
        """The stored result of task ``key`` with ``identity``, or None when not done.

        A task whose files are unreadable (cut short by a full disk, edited) is reported
        with a warning naming the file and counts as not done: it runs again.
        """
        found = self._read(key, identity)
        if found is None and self.shared is not None:
            cache, context = self.shared
            found = cache._read(SHARED_KEY, {**context, **identity})
            if found is not None:
                self._write(key, identity, found)
        if found is not None:
            self.reused += 1
        return found

    def _read(self, key: str, identity: dict[str, Any]) -> dict[str, Any] | None:
        stem = self._stem(key, identity)
        meta_path = self.folder / f"{stem}.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != STORE_FORMAT or meta.get("identity") != json.loads(
                    json.dumps(identity, default=_json_default)):
                raise ValueError("identity or format differs")
            out: dict[str, Any] = dict(meta["values"])
            if meta["arrays"]:
                with np.load(self.folder / f"{stem}.npz", allow_pickle=False) as z:
                    out.update({name: z[name] for name in meta["arrays"]})
            for name, dtypes in meta["frames"].items():
                frame = pd.read_csv(self.folder / f"{stem}.{name}.csv")
                out[name] = frame.astype(dtypes)[list(dtypes)]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as err:
            warnings.warn(f"{meta_path}: stored task result unreadable ({err}); running the task again",
                          stacklevel=3)
            return None
        return out

    def save(self, key: str, identity: dict[str, Any], result: dict[str, Any]) -> None:
        """Write ``result`` (see the class docstring for what it may hold), atomically,
        and to the shared fit cache when there is one."""
        self._write(key, identity, result)
        self.computed += 1
        if self.shared is not None:
            cache, context = self.shared
            cache._write(SHARED_KEY, {**context, **identity}, result)

    def _write(self, key: str, identity: dict[str, Any], result: dict[str, Any]) -> None:
        stem = self._stem(key, identity)
        arrays = {k: v for k, v in result.items() if isinstance(v, np.ndarray)}
        frames = {k: v for k, v in result.items() if isinstance(v, pd.DataFrame)}
        values = {k: v for k, v in result.items() if k not in arrays and k not in frames}
        for name, arr in arrays.items():
            if arr.dtype.hasobject:
                raise TypeError(f"result[{name!r}]: object arrays cannot be stored without pickle")
        if arrays:
            atomic_write(self.folder / f"{stem}.npz", lambda p: _savez(p, arrays))
        for name, frame in frames.items():
            atomic_write(self.folder / f"{stem}.{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
        meta = {"format": STORE_FORMAT, "key": key, "identity": identity, "arrays": sorted(arrays),
                "frames": {k: {c: str(t) for c, t in v.dtypes.items()} for k, v in frames.items()},
                "values": values}
        text = json.dumps(meta, indent=1, default=_json_default)
        atomic_write(self.folder / f"{stem}.json", lambda p: p.write_text(text))


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # A file object: np.savez would append ".npz" to a path that lacks it.
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"out_dir: {path} is not valid JSON ({err}); delete it or resume=False") from err


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _check_run_key(saved: dict[str, Any], now: dict[str, Any], path: Path, ignore: frozenset[str],
                   renew: frozenset[str]) -> bool:
    """Raise on a differing setting; True when only ``renew`` entries differ (start over)."""
    old = _flat(saved)
    new = _flat(json.loads(json.dumps(now, default=_json_default)))
    differ = [n for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]
    if any(n.split(".")[0] in renew for n in differ):
        # Older code (its results are renewed anyway) cannot have recorded a setting that
        # was added since, e.g. a new config field: that absence is not another run.
        differ = [n for n in differ if n in old or n.split(".")[0] in renew]
    for name in differ:
        top = name.split(".")[0]
        if top not in ignore and top not in renew:
            raise ConfigError(f"out_dir: {path.parent} holds results of another run ({name}={old.get(name)!r}, "
                              f"this call has {new.get(name)!r}); use another out_dir or resume=False")
    renewed = [n for n in differ if n.split(".")[0] in renew]
    if renewed:
        warnings.warn(f"{path.parent}: the stored results were made with {renewed[0]}={old.get(renewed[0])!r}, "
                      f"this run has {new.get(renewed[0])!r}; they are deleted and every task runs again",
                      stacklevel=4)
        return True
    return False


def _remove_stale_temporaries(folder: Path, age_s: float = 3600.0) -> None:
    """Delete temporary files a killed writer left behind (older than ``age_s``: a live
    writer renames its file within seconds)."""
    now = time.time()
    for tmp in folder.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > age_s:
                tmp.unlink()
        except FileNotFoundError:
            pass  # renamed or removed by its writer meanwhile


def run_tasks(runner: Runner, fn: Callable[..., Any], tasks: dict[str, tuple],
              identities: dict[str, dict[str, Any]] | None = None, store: TaskStore | None = None, *,
              progress: bool = False, desc: str = "tasks") -> dict[str, Any]:
    """:meth:`Runner.run`, skipping the tasks ``store`` already holds and storing the rest.

    Parameters
    ----------
    runner : Runner
    fn : callable
    tasks : dict of str to tuple
    identities : dict of str to dict, optional
        Per task key, what its result depends on beyond the store's run key (config,
        seed, rows); required with ``store``.
    store : TaskStore, optional
        None: nothing is read or written.

    Returns
    -------
    dict
        ``{key: result}`` in ``tasks`` order.
    """
    if store is None:
        return runner.run(fn, tasks, progress=progress, desc=desc)
    if identities is None or set(identities) != set(tasks):
        raise ValueError("identities: expected one identity per task key")
    done = {}
    for key in tasks:
        found = store.load(key, identities[key])
        if found is not None:
            done[key] = found
    todo = {k: a for k, a in tasks.items() if k not in done}
    done.update(runner.run(fn, todo, progress=progress, desc=desc,
                           on_result=lambda key, res: store.save(key, identities[key], res)))
    return {key: done[key] for key in tasks}
