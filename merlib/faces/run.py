"""Pre-process whole sample sets in parallel: jobs, the cached run, manifest and report.

:func:`build_jobs` turns a data root into one row per image to align (the MEGC2019
composite's apex frames, the macro transfer images); :func:`preprocess` aligns them with
:func:`merlib.faces.pipeline.process_frame` on a Dask cluster (a local one by default,
or an existing scheduler) and returns the manifest (every job, failed ones included)
and the report (every job that is not plainly ``ok``, and every listed sample that is
not on disk). Cached results are found by the driver without starting any worker, so a
warm rerun costs one hash per file.

The ``flags`` of the sample table (values a reader or the composite filled in rather
than read, e.g. an estimated apex) travel with each job into the manifest and, unless
they are a whole dataset's convention (:data:`CONVENTION_FLAGS`), into the report.
Outputs are written through unique temporary names, so two runs writing into one
folder never mix their files.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from merlib.data.composite import megc2019_composite
from merlib.data.index import DATASET_FOLDERS, index_datasets
from merlib.data.schema import MACRO_DATASETS
from merlib.data.selection import macro_frames
from merlib.errors import ConfigError, DataLayoutError, MerlibWarning, OutputError
from merlib.faces.cache import FaceStore, file_sha256
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import crop_entry, process_batch
# Under the old name: tests narrow the cores seen by this module alone.
from merlib.parallel import available_cores as _available_cpus
from merlib.parallel import local_cluster, shutdown
from merlib.provenance import Provenance

SETS: tuple[str, ...] = ("composite", "macro")
#: Datasets whose image folder is not one clip (neighbouring files are other people).
STILLS: frozenset[str] = frozenset({"jaffe"})

JOB_COLUMNS: dict[str, str] = {
    "sample_id": "string", "set": "string", "dataset": "string", "part": "string",
    "subject": "string", "sample": "string", "label": "string", "frame": "Int64",
    "frame_path": "string", "flags": "string",
}
RESULT_COLUMNS: dict[str, str] = {
    "status": "string", "reason": "string", "fallback": "string",
    "landmark_source": "string", "angle_deg": "float64", "iod_px": "float64",
    "n_faces": "Int64", "face_std": "float64", "sha256": "string", "crop_file": "string",
}
REPORT_COLUMNS: list[str] = ["sample_id", "set", "dataset", "frame_path", "status", "reason",
                             "fallback", "flags"]
#: Flags every sample of a dataset carries by design (SMIC and MUG have no apex
#: annotation: the middle frame is the documented choice). They stay in the manifest
#: but do not put an ``ok`` row into the report, which lists what needs a look.
CONVENTION_FLAGS: frozenset[str] = frozenset({"apex:middle_frame"})


def _sample_id(rec: dict[str, Any]) -> str:
    parts = [rec["dataset"], rec.get("part"), rec["subject"], rec["sample"]]
    sid = "/".join(str(p) for p in parts if p is not None and not pd.isna(p) and str(p))
    frame = rec.get("frame")
    return sid if frame is None or pd.isna(frame) else f"{sid}#{int(frame)}"


def _jobs_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(list(rows), columns=list(JOB_COLUMNS))
    table = table.astype(JOB_COLUMNS)
    table["flags"] = table["flags"].fillna("")
    return table


def _notable_flags(flags: pd.Series) -> pd.Series:
    """Whether each ';'-separated flag list holds a flag other than a dataset convention."""
    def notable(text: Any) -> bool:
        if text is None or pd.isna(text):
            return False
        return any(f and f not in CONVENTION_FLAGS for f in str(text).split(";"))
    return flags.map(notable).astype(bool)


MISSING_COLUMNS: list[str] = ["set", "dataset", "subject", "sample", "label", "reason"]


@dataclass(frozen=True)
class Jobs:
    """What to pre-process.

    Attributes
    ----------
    table : DataFrame
        One row per image: :data:`JOB_COLUMNS`; ``frame_path`` relative to the data root.
    missing : DataFrame
        What ``allow_missing`` let through, with the reason: composite samples not on
        disk, and absent macro dataset folders (subject and sample NA). Columns set,
        dataset, subject, sample, label, reason.
    """

    table: pd.DataFrame
    missing: pd.DataFrame


def build_jobs(data_root: str | os.PathLike, sets: Sequence[str] = SETS, *,
               allow_missing: bool = False, seed: int = 0) -> Jobs:
    """The images of the named sets under ``data_root``.

    Parameters
    ----------
    data_root : path
    sets : sequence of {"composite", "macro"}
        ``composite``: the apex frame of each MEGC2019 composite sample (SMIC's middle
        frame). ``macro``: the macro transfer images (:func:`merlib.data.selection.macro_frames`).
    allow_missing : bool, default=False
        Composite samples or macro dataset folders not on disk are listed in
        ``missing`` (and so in the run's report, status ``missing``) instead of raising.
    seed : int, default=0
        Seed of the MUG frame-count draw, >= 0.

    Returns
    -------
    Jobs
        ``table`` carries each sample's ``flags`` from the index (e.g. an estimated apex).

    Raises
    ------
    ConfigError
        ``sets`` or ``seed`` out of range.
    DataLayoutError
        A macro dataset folder is absent and ``allow_missing`` is False.
    MissingSamplesError
        Composite samples are not on disk and ``allow_missing`` is False.
    """
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets or isinstance(sets, str):
        raise ConfigError(f"sets: expected a non-empty subset of {SETS}, got {sets!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed: expected an integer >= 0, got {seed!r}")
    root = Path(data_root)
    rows: list[dict[str, Any]] = []
    missing = [pd.DataFrame(columns=MISSING_COLUMNS)]
    if "composite" in sets:
        comp = megc2019_composite(root, allow_missing=allow_missing)
        for rec in comp.table.to_dict("records"):
            rec = {**rec, "frame": rec["apex_frame"], "frame_path": rec["apex_path"]}
            rows.append({**{k: rec.get(k) for k in JOB_COLUMNS}, "set": "composite",
                         # The composite list names samples without the part.
                         "sample_id": _sample_id({**rec, "part": None, "frame": None})})
        missing.append(comp.missing.assign(set="composite", reason=f"listed in {comp.expected}, not on disk"))
    if "macro" in sets:
        present = [d for d in MACRO_DATASETS if (root / DATASET_FOLDERS[d]).is_dir()]
        absent = [d for d in MACRO_DATASETS if d not in present]
        if absent and not allow_missing:
            folders = ", ".join(f"{DATASET_FOLDERS[d]}/" for d in absent)
            raise DataLayoutError(
                f"macro set: dataset folder(s) {folders} not under data root {root}; "
                f"pass allow_missing (--allow-missing) to pre-process the others")
        missing.append(pd.DataFrame({
            "set": "macro", "dataset": absent, "subject": pd.NA, "sample": pd.NA, "label": pd.NA,
            "reason": [f"dataset folder {DATASET_FOLDERS[d]}/ not under the data root" for d in absent]}))
        if present:
            index = index_datasets(root, present)
            flags = {(r["dataset"], r["part"], r["subject"], r["sample"]): r["flags"]
                     for r in index.to_dict("records")}
            for rec in macro_frames(index, root, seed=seed).to_dict("records"):
                key = (rec["dataset"], rec["part"], rec["subject"], rec["sample"])
                rows.append({**{k: rec.get(k) for k in JOB_COLUMNS}, "set": "macro",
                             "flags": flags.get(key, ""), "sample_id": _sample_id(rec)})
    gone = pd.concat([m for m in missing if len(m)] or missing[:1], ignore_index=True)
    return Jobs(_jobs_table(rows), gone[MISSING_COLUMNS].astype("string").reset_index(drop=True))


@dataclass(frozen=True)
class RunResult:
    """A pre-processing run.

    Attributes
    ----------
    manifest : DataFrame
        Every job (:data:`JOB_COLUMNS` + :data:`RESULT_COLUMNS`), in job order; failed
        jobs have an empty ``crop_file``. ``crop_file`` is relative to ``store``.
    report : DataFrame
        :data:`REPORT_COLUMNS`: the jobs whose status is ``fallback`` or ``failed``, then
        the listed samples not on disk (status ``missing``).
    store : Path
        The cache folder the crops are in.
    stats : dict
        ``jobs``, ``cached`` (jobs found in the cache), ``computed`` (distinct frame
        contents aligned), ``failed_before_compute`` (missing or unreadable files),
        ``workers`` (processes that computed; 0 when all came from the cache),
        ``workers_note`` (why fewer workers than requested ran; '' when not capped),
        ``seconds`` (wall, whole run), ``scan_seconds`` (hashing + cache lookups).
    config : AlignConfig
    """

    manifest: pd.DataFrame
    report: pd.DataFrame
    store: Path
    stats: dict[str, Any]
    config: AlignConfig = field(default_factory=AlignConfig)


def _chunks(items: list, n_chunks: int) -> list[list]:
    size = max(1, -(-len(items) // max(1, n_chunks)))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run_serial(items, cfg, store_root, bar) -> list[dict[str, Any]]:
    out = []
    for chunk in _chunks(items, max(1, len(items))):
        out.extend(process_batch(chunk, cfg, store_root))
        bar.update(len(chunk))
    return out


def _run_dask(items, cfg, store_root, bar, workers: int, scheduler: str | None
              ) -> tuple[list[dict[str, Any]], int]:
    """``process_batch`` over ``items`` on a local cluster or ``scheduler``: the metas in
    item order, and the number of workers that ran them."""
    from dask.distributed import Client, as_completed

    cluster = client = None
    try:
        if scheduler is None:
            cluster = local_cluster(workers)
        client = Client(cluster if cluster is not None else scheduler)
        # The cluster's own count: without a loopback network it falls back to one in-process worker.
        n = max(1, len(cluster.workers) if cluster is not None else len(client.scheduler_info()["workers"]))
        # Many small tasks (<= 32 frames, under a second each): idle workers at the end
        # wait at most one task, and the bar moves; Dask's per-task cost is ~1 ms.
        chunks = _chunks(list(enumerate(items)), max(n * 8, -(-len(items) // 32)))
        futures = [client.submit(process_batch, [it for _, it in ch], cfg, store_root,
                                 pure=False, key=f"faces-{i}-{os.getpid()}-{time.time_ns()}")
                   for i, ch in enumerate(chunks)]
        where = {f.key: [i for i, _ in ch] for f, ch in zip(futures, chunks)}
        out: list[dict[str, Any] | None] = [None] * len(items)
        for fut in as_completed(futures):
            for i, meta in zip(where[fut.key], fut.result()):
                out[i] = meta
            bar.update(len(where[fut.key]))
        return out, n
    finally:
        shutdown(client, cluster)


def worker_count(workers: int | None) -> tuple[int, str]:
    """Local worker processes for a request, capped at :func:`_available_cpus`.

    Returns
    -------
    n : int
        ``workers``, or all cores when None, never more than the cores available (more
        processes than cores only compete for them, and each loads dlib's models).
    note : str
        Why ``n`` differs from the request ('' when it does not).

    Raises
    ------
    ConfigError
        ``workers`` is not an integer >= 1 (or None).
    """
    if workers is not None and (not isinstance(workers, (int, np.integer)) or isinstance(workers, bool)
                                or workers < 1):
        raise ConfigError(f"workers: expected an integer >= 1 or None (all cores), got {workers!r}")
    cores = _available_cpus()
    if workers is None:
        return cores, ""
    if workers > cores:
        return cores, f"workers: {workers} requested, capped at the {cores} cores available"
    return int(workers), ""


def _check_writable(folder: Path, name: str) -> None:
    """Fail before any work when ``folder`` cannot be created or written (a read-only
    folder, a path under a regular file): one line naming it, not a worker's traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"{name}: cannot write to {folder} ({err.strerror or err})") from None


def preprocess(jobs: Jobs | pd.DataFrame, data_root: str | os.PathLike,
               store_dir: str | os.PathLike, cfg: AlignConfig = AlignConfig(), *,
               workers: int | None = None, scheduler: str | None = None,
               progress: bool = True) -> RunResult:
    """Align every job's image, reusing the store, in parallel.

    Parameters
    ----------
    jobs : Jobs or DataFrame
        From :func:`build_jobs` (a bare table: no missing samples to report).
    data_root : path
        What ``frame_path`` is relative to.
    store_dir : path
        The cache folder (:class:`~merlib.faces.cache.FaceStore`).
    cfg : AlignConfig
    workers : int, optional
        Worker processes; default all cores, and never more than the cores available
        (:func:`worker_count`: a larger request is capped, with a warning and
        ``stats["workers_note"]``). ``1`` runs in this process (no cluster).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) to run on instead of
        a local cluster; ``workers`` is then ignored. Its workers must see ``data_root``
        and ``store_dir`` at the same paths (a shared file system).
    progress : bool, default=True
        tqdm bar over the frames not found in the cache.

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Bad ``jobs`` columns or ``workers``.
    OutputError
        ``store_dir`` cannot be written (checked before any work).
    """
    from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

    t0 = time.perf_counter()
    table = jobs.table if isinstance(jobs, Jobs) else jobs
    missing = jobs.missing if isinstance(jobs, Jobs) else pd.DataFrame()
    absent = [c for c in JOB_COLUMNS if c not in table.columns and c != "flags"]
    if absent:
        raise ConfigError(f"jobs: missing columns {absent}; build them with build_jobs()")
    if "flags" not in table.columns:  # a hand-made table: nothing was filled in
        table = table.assign(flags="").astype({"flags": "string"})
    n_workers, note = worker_count(workers)  # checked even when a scheduler makes it moot
    if scheduler is not None:
        n_workers, note = 0, ""
    if note:
        warnings.warn(note, MerlibWarning, stacklevel=2)
    root = Path(data_root)
    store = FaceStore(store_dir)
    _check_writable(store.root, "store_dir")

    results: list[dict[str, Any] | None] = [None] * len(table)
    shas: list[str] = [""] * len(table)
    keys: list[tuple[str, str]] = [("", "")] * len(table)
    # Same bytes are aligned once; a clip's frame also by path, since a frame without a
    # face of its own borrows its neighbours' landmarks (crop_entry).
    todo: dict[tuple[str, str], tuple[str, bool]] = {}
    hits = 0
    for i, rec in enumerate(table[["dataset", "frame_path"]].itertuples(index=False)):
        path = root / rec.frame_path
        neighbours = rec.dataset not in STILLS
        try:
            shas[i] = file_sha256(path)
        except IsADirectoryError:
            results[i] = _failed_meta("a folder, not an image file")
            continue
        except FileNotFoundError:
            results[i] = _failed_meta("frame file not found")
            continue
        except OSError as err:
            results[i] = _failed_meta(f"cannot read file ({err.strerror or err})")
            continue
        entry = crop_entry(path, shas[i], cfg, store, neighbours)
        if entry is not None and (meta := store.read_meta(entry)) is not None:
            usable = meta["status"] != "failed"
            results[i] = {**meta, "crop_file": entry.relative_to(store.root).as_posix() if usable else ""}
            hits += 1
            continue
        keys[i] = (shas[i], str(path) if neighbours else "")
        todo.setdefault(keys[i], (str(path), neighbours))
    scan_seconds = time.perf_counter() - t0

    items = [(path, sha, nb) for (sha, _), (path, nb) in todo.items()]
    used = 0  # processes that computed: 0 when everything came from the cache
    with tqdm(total=len(items), desc="aligning faces", unit="frame", disable=not progress) as bar:
        if not items:
            computed: list[dict[str, Any]] = []
        elif scheduler is None and n_workers == 1:
            computed, used = _run_serial(items, cfg, str(store.root), bar), 1
        else:
            computed, used = _run_dask(items, cfg, str(store.root), bar, n_workers, scheduler)
    by_key = dict(zip(todo, computed))
    for i, key in enumerate(keys):
        if results[i] is None:
            results[i] = by_key[key]

    manifest = _manifest(table, results, shas)
    report = _report(manifest, missing)
    stats = {"jobs": len(table), "cached": hits, "computed": len(items),
             "failed_before_compute": len(table) - hits - sum(k in by_key for k in keys),
             "workers": used,
             "workers_note": note,
             "seconds": time.perf_counter() - t0, "scan_seconds": scan_seconds}
    return RunResult(manifest, report, store.root, stats, cfg)


def _failed_meta(reason: str) -> dict[str, Any]:
    return {"status": "failed", "reason": reason, "fallback": "", "landmark_source": "",
            "angle_deg": float("nan"), "iod_px": float("nan"), "n_faces": 0,
            "face_std": float("nan"), "crop_file": ""}


def _manifest(table: pd.DataFrame, results: list[dict[str, Any]], shas: list[str]) -> pd.DataFrame:
    rows = [{**{k: meta.get(k) for k in RESULT_COLUMNS}, "sha256": sha} for meta, sha in zip(results, shas)]
    res = pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype(RESULT_COLUMNS)
    return pd.concat([table.reset_index(drop=True), res], axis=1)


def _report(manifest: pd.DataFrame, missing: pd.DataFrame) -> pd.DataFrame:
    """Rows not plainly ``ok`` (a fallback, a failure, or a notable flag), then the
    missing samples and datasets."""
    look = (manifest["status"] != "ok").to_numpy() | _notable_flags(manifest["flags"]).to_numpy()
    bad = manifest.loc[look, REPORT_COLUMNS]
    if len(missing):
        reason = missing["reason"] if "reason" in missing.columns else \
            "listed in the MEGC2019 composite, not on disk"
        gone = missing.assign(
            sample_id=[_sample_id(r) for r in missing.to_dict("records")],
            frame_path=pd.NA, status="missing", reason=reason, fallback="", flags="")
        bad = pd.concat([bad, gone[REPORT_COLUMNS]], ignore_index=True)
    return bad.astype("string").reset_index(drop=True)


def summary(result: RunResult) -> pd.DataFrame:
    """Jobs per set and status (``missing`` rows from the report), with totals.

    A ``missing`` count is of report rows: composite samples not on disk, and absent
    macro datasets (one row per dataset folder, whatever images it would have given).
    """
    rows = result.manifest[["set", "status"]]
    gone = result.report.loc[result.report["status"] == "missing", ["set", "status"]]
    both = pd.concat([rows, gone], ignore_index=True)
    table = pd.crosstab(both["set"], both["status"], margins=True, margins_name="Total")
    cols = [c for c in ("ok", "fallback", "failed", "missing") if c in table.columns]
    return table.reindex(columns=cols + ["Total"], fill_value=0)


#: The :attr:`RunResult.stats` a run table shows, in its column order.
RUN_TABLE_STATS: tuple[str, ...] = ("jobs", "computed", "cached", "workers", "seconds")


def runs_table(runs: dict[str, RunResult]) -> pd.DataFrame:
    """Whole runs side by side: jobs, work done, workers, wall time and throughput.

    Parameters
    ----------
    runs : dict of str to RunResult
        Row name (e.g. ``'warm rerun'``) to the run, in the order to show.

    Returns
    -------
    DataFrame
        Index ``run``; columns :data:`RUN_TABLE_STATS` and ``images_per_s``
        (``jobs / seconds``, over the whole run: cached jobs count as images).

    Raises
    ------
    ValueError
        When ``runs`` is empty.
    """
    if not runs:
        raise ValueError("runs: expected at least one run")
    table = pd.DataFrame([{"run": name, **{k: run.stats[k] for k in RUN_TABLE_STATS}}
                          for name, run in runs.items()]).set_index("run")
    table["images_per_s"] = table["jobs"] / table["seconds"]
    return table


def write_outputs(result: RunResult, out_dir: str | os.PathLike,
                  provenance: Provenance | None = None) -> dict[str, Path]:
    """Write ``manifest.csv``, ``report.csv`` and ``run.json`` into ``out_dir``.

    ``run.json`` holds the settings, the stats, the counts per set and status and, when
    ``provenance`` is given, the data kind (simulated or real) and fingerprint, so
    whatever trains on the crops can label its own results. Each file is written to a
    temporary file of a unique name, then renamed over the old one, like the cache entries.

    Raises
    ------
    OutputError
        ``out_dir`` cannot be created or written (before anything is written).
    """
    out = Path(out_dir)
    _check_writable(out, "out_dir")
    paths = {"manifest": out / "manifest.csv", "report": out / "report.csv", "run": out / "run.json"}
    info = {"config": result.config.as_dict(), "stats": result.stats,
            "counts": summary(result).to_dict(orient="index")}
    if provenance is not None:
        info = {"data_kind": provenance.data_kind, "data_fingerprint": provenance.data_fingerprint,
                "code_version": provenance.code_version, **info}
    for name, path in paths.items():
        if name == "run":
            _write_atomic(path, lambda fh: fh.write(json.dumps(info, indent=1, default=str)))
        else:
            frame = getattr(result, name)
            _write_atomic(path, lambda fh, frame=frame: frame.to_csv(fh, index=False))
    return paths


#: The process's umask, read once (reading it means setting it): outputs get the mode a
#: plain open() would give them, not mkstemp's owner-only 0600.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _write_atomic(path: Path, write) -> None:
    """``write(text_file)`` into a temporary file of a unique name in ``path``'s folder,
    then rename it over ``path``: readers see the old or the new file whole, and two
    processes writing the same path never share a temporary file (the last rename wins)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_crops(manifest: pd.DataFrame, store_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The aligned crops of a manifest's usable rows (status ``ok`` or ``fallback``).

    Returns
    -------
    crops : ndarray of shape (N, S, S), uint8
    points : ndarray of shape (N, 68, 2), float32
        Landmarks in crop coordinates.
    rows : DataFrame
        The N manifest rows, in the same order (index reset).
    """
    rows = manifest[manifest["status"].isin(["ok", "fallback"])].reset_index(drop=True)
    store = FaceStore(store_dir)
    crops, points = [], []
    for rel in rows["crop_file"]:
        entry = store.read(store.root / rel)
        if entry is None:
            raise FileNotFoundError(f"crop_file: {store.root / rel} listed in the manifest is gone")
        crops.append(entry[0]["crop"])
        points.append(entry[0]["points"])
    if not crops:
        return np.zeros((0, 0, 0), np.uint8), np.zeros((0, 68, 2), np.float32), rows
    return np.stack(crops), np.stack(points), rows
