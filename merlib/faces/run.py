"""Pre-process whole sample sets in parallel: jobs, the cached run, manifest and report.

:func:`build_jobs` turns a data root into one row per image to align (the MEGC2019
composite's apex frames, the macro transfer images); :func:`preprocess` aligns them with
:func:`merlib.faces.pipeline.process_frame` on a Dask cluster (a local one by default,
or an existing scheduler) and returns the manifest (every job, failed ones included)
and the report (every job that is not plainly ``ok``, and every listed sample that is
not on disk). Cached results are found by the driver without starting any worker, so a
warm rerun costs one hash per file.
"""
from __future__ import annotations

import json
import logging
import os
import time
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
from merlib.faces.cache import FaceStore, file_sha256
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import process_batch
from merlib.reporting.provenance import Provenance

SETS: tuple[str, ...] = ("composite", "macro")
#: Datasets whose image folder is not one clip (neighbouring files are other people).
STILLS: frozenset[str] = frozenset({"jaffe"})

JOB_COLUMNS: dict[str, str] = {
    "sample_id": "string", "set": "string", "dataset": "string", "part": "string",
    "subject": "string", "sample": "string", "label": "string", "frame": "Int64",
    "frame_path": "string",
}
RESULT_COLUMNS: dict[str, str] = {
    "status": "string", "reason": "string", "fallback": "string",
    "landmark_source": "string", "angle_deg": "float64", "iod_px": "float64",
    "n_faces": "Int64", "sha256": "string", "crop_file": "string",
}
REPORT_COLUMNS: list[str] = ["sample_id", "set", "dataset", "frame_path", "status", "reason",
                             "fallback"]


def _sample_id(rec: dict[str, Any]) -> str:
    parts = [rec["dataset"], rec.get("part"), rec["subject"], rec["sample"]]
    sid = "/".join(str(p) for p in parts if p is not None and not pd.isna(p) and str(p))
    frame = rec.get("frame")
    return sid if frame is None or pd.isna(frame) else f"{sid}#{int(frame)}"


def _jobs_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(list(rows), columns=list(JOB_COLUMNS))
    return table.astype(JOB_COLUMNS)


@dataclass(frozen=True)
class Jobs:
    """What to pre-process.

    Attributes
    ----------
    table : DataFrame
        One row per image: :data:`JOB_COLUMNS`; ``frame_path`` relative to the data root.
    missing : DataFrame
        Listed samples not on disk (MEGC2019 composite with ``allow_missing``): columns
        set, dataset, subject, sample, label.
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
        Composite samples or macro dataset folders not on disk are reported in
        ``missing`` (composite) or skipped (macro folders) instead of raising.
    seed : int, default=0
        Seed of the MUG frame-count draw.
    """
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        raise ValueError(f"sets: expected a non-empty subset of {SETS}, got {list(sets)}")
    root = Path(data_root)
    rows: list[dict[str, Any]] = []
    missing = pd.DataFrame(columns=["set", "dataset", "subject", "sample", "label"])
    if "composite" in sets:
        comp = megc2019_composite(root, allow_missing=allow_missing)
        for rec in comp.table.to_dict("records"):
            rec = {**rec, "frame": rec["apex_frame"], "frame_path": rec["apex_path"]}
            rows.append({**{k: rec.get(k) for k in JOB_COLUMNS}, "set": "composite",
                         # The composite list names samples without the part.
                         "sample_id": _sample_id({**rec, "part": None, "frame": None})})
        missing = comp.missing.assign(set="composite")[list(missing.columns)]
    if "macro" in sets:
        present = [d for d in MACRO_DATASETS if (root / DATASET_FOLDERS[d]).is_dir()]
        names = present if allow_missing and present else list(MACRO_DATASETS)
        index = index_datasets(root, names)
        for rec in macro_frames(index, root, seed=seed).to_dict("records"):
            rows.append({**{k: rec.get(k) for k in JOB_COLUMNS}, "set": "macro",
                         "sample_id": _sample_id(rec)})
    return Jobs(_jobs_table(rows), missing.astype("string").reset_index(drop=True))


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
        ``seconds`` (wall, whole run), ``scan_seconds`` (hashing + cache lookups).
    config : AlignConfig
    """

    manifest: pd.DataFrame
    report: pd.DataFrame
    store: Path
    stats: dict[str, Any]
    config: AlignConfig = field(default_factory=AlignConfig)


def _available_cpus() -> int:
    """CPUs this process may run on (a container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _chunks(items: list, n_chunks: int) -> list[list]:
    size = max(1, -(-len(items) // max(1, n_chunks)))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run_serial(items, cfg, store_root, bar) -> list[dict[str, Any]]:
    out = []
    for chunk in _chunks(items, max(1, len(items))):
        out.extend(process_batch(chunk, cfg, store_root))
        bar.update(len(chunk))
    return out


def _run_dask(items, cfg, store_root, bar, workers: int, scheduler: str | None):
    from dask.distributed import Client, LocalCluster, as_completed

    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    else:
        cluster = None
    client = Client(cluster if cluster is not None else scheduler)
    try:
        n = workers if cluster is not None else max(1, len(client.scheduler_info()["workers"]))
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
        return out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
        Worker processes; default all cores. ``1`` runs in this process (no cluster).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``) to run on instead of
        a local cluster; ``workers`` is then ignored. Its workers must see ``data_root``
        and ``store_dir`` at the same paths (a shared file system).
    progress : bool, default=True
        tqdm bar over the frames not found in the cache.

    Returns
    -------
    RunResult
    """
    from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets

    t0 = time.perf_counter()
    table = jobs.table if isinstance(jobs, Jobs) else jobs
    missing = jobs.missing if isinstance(jobs, Jobs) else pd.DataFrame()
    absent = [c for c in JOB_COLUMNS if c not in table.columns]
    if absent:
        raise ValueError(f"jobs: missing columns {absent}; build them with build_jobs()")
    if workers is not None and workers < 1:
        raise ValueError(f"workers: expected >= 1 or None (all cores), got {workers}")
    n_workers = workers or _available_cpus()
    root = Path(data_root)
    store = FaceStore(store_dir)

    results: list[dict[str, Any] | None] = [None] * len(table)
    shas: list[str] = [""] * len(table)
    todo: dict[str, tuple[str, bool]] = {}  # sha -> (path, neighbours); same bytes once
    hits = 0
    for i, rec in enumerate(table[["dataset", "frame_path"]].itertuples(index=False)):
        path = root / rec.frame_path
        try:
            shas[i] = file_sha256(path)
        except FileNotFoundError:
            results[i] = _failed_meta("frame file not found")
            continue
        except OSError as err:
            results[i] = _failed_meta(f"cannot read file ({err.strerror or err})")
            continue
        if (meta := store.read_meta(store.crop_path(shas[i], cfg))) is not None:
            results[i] = meta
            hits += 1
        elif shas[i] not in todo:
            todo[shas[i]] = (str(path), rec.dataset not in STILLS)
    scan_seconds = time.perf_counter() - t0

    items = [(path, sha, nb) for sha, (path, nb) in todo.items()]
    with tqdm(total=len(items), desc="aligning faces", unit="frame", disable=not progress) as bar:
        if not items:
            computed: list[dict[str, Any]] = []
        elif scheduler is None and n_workers == 1:
            computed = _run_serial(items, cfg, str(store.root), bar)
        else:
            computed = _run_dask(items, cfg, str(store.root), bar, n_workers, scheduler)
    by_sha = {sha: meta for (_, sha, _), meta in zip(items, computed)}
    for i, sha in enumerate(shas):
        if results[i] is None:
            results[i] = by_sha[sha]

    manifest = _manifest(table, results, shas, store, cfg)
    report = _report(manifest, missing)
    stats = {"jobs": len(table), "cached": hits, "computed": len(items),
             "failed_before_compute": len(table) - hits - sum(s in by_sha for s in shas),
             # Processes that computed: 0 when everything came from the cache.
             "workers": 0 if not items else 1 if scheduler is None and n_workers == 1 else n_workers,
             "seconds": time.perf_counter() - t0, "scan_seconds": scan_seconds}
    return RunResult(manifest, report, store.root, stats, cfg)


def _failed_meta(reason: str) -> dict[str, Any]:
    return {"status": "failed", "reason": reason, "fallback": "", "landmark_source": "",
            "angle_deg": float("nan"), "iod_px": float("nan"), "n_faces": 0}


def _manifest(table: pd.DataFrame, results: list[dict[str, Any]], shas: list[str],
              store: FaceStore, cfg: AlignConfig) -> pd.DataFrame:
    rows = []
    for meta, sha in zip(results, shas):
        crop = ""
        if meta["status"] != "failed":
            crop = store.crop_path(sha, cfg).relative_to(store.root).as_posix()
        rows.append({**{k: meta.get(k) for k in RESULT_COLUMNS}, "sha256": sha, "crop_file": crop})
    res = pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype(RESULT_COLUMNS)
    return pd.concat([table.reset_index(drop=True), res], axis=1)


def _report(manifest: pd.DataFrame, missing: pd.DataFrame) -> pd.DataFrame:
    bad = manifest.loc[manifest["status"] != "ok", REPORT_COLUMNS]
    if len(missing):
        gone = missing.assign(
            sample_id=[_sample_id(r) for r in missing.to_dict("records")],
            frame_path=pd.NA, status="missing",
            reason="listed in the MEGC2019 composite, not on disk", fallback="")
        bad = pd.concat([bad, gone[REPORT_COLUMNS]], ignore_index=True)
    return bad.astype("string").reset_index(drop=True)


def summary(result: RunResult) -> pd.DataFrame:
    """Jobs per set and status (``missing`` rows from the report), with totals."""
    rows = result.manifest[["set", "status"]]
    gone = result.report.loc[result.report["status"] == "missing", ["set", "status"]]
    both = pd.concat([rows, gone], ignore_index=True)
    table = pd.crosstab(both["set"], both["status"], margins=True, margins_name="Total")
    cols = [c for c in ("ok", "fallback", "failed", "missing") if c in table.columns]
    return table.reindex(columns=cols + ["Total"], fill_value=0)


def write_outputs(result: RunResult, out_dir: str | os.PathLike,
                  provenance: Provenance | None = None) -> dict[str, Path]:
    """Write ``manifest.csv``, ``report.csv`` and ``run.json`` into ``out_dir``.

    ``run.json`` holds the settings, the stats, the counts per set and status and, when
    ``provenance`` is given, the data kind (simulated or real) and fingerprint, so
    whatever trains on the crops can label its own results. Each file is written to a
    temporary name then renamed, like the cache entries.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"manifest": out / "manifest.csv", "report": out / "report.csv", "run": out / "run.json"}
    info = {"config": result.config.as_dict(), "stats": result.stats,
            "counts": summary(result).to_dict(orient="index")}
    if provenance is not None:
        info = {"data_kind": provenance.data_kind, "data_fingerprint": provenance.data_fingerprint,
                "code_version": provenance.code_version, **info}
    for name, path in paths.items():
        tmp = path.with_name(path.name + ".tmp")
        if name == "run":
            tmp.write_text(json.dumps(info, indent=1, default=str))
        else:
            getattr(result, name).to_csv(tmp, index=False)
        os.replace(tmp, path)
    return paths


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
