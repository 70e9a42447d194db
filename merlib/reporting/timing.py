"""Tables of the timing chapter (Table 4): per-sample time of the backbones, per-stage
time of prediction, frames per second on a clip, and the machine they were measured on.

Absolute times depend on the machine and on its load; the figures to compare between
machines are ratios to timm eager measured in the same run (:mod:`merlib.inference.latency`).
The paper's one published time stands beside them, labelled as such (:data:`PUBLISHED`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The paper's published per-sample time (MobileViT-S, its method), and where it was
#: measured. The paper gives no other model's time in its text, and does not say whether
#: its graphics card took part in the timing.
PUBLISHED: dict[str, Any] = {
    "model": "mobilevit_s", "ms": 35.4,
    "hardware": "Intel Core i9-9980HK (8 cores), 32 GB; the paper also lists an AMD Radeon Pro 5500M",
    "source": "Liu et al. 2022, abstract and Experimental Setup",
}

#: CPU flags worth naming in a caption: wide vectors, int8 dot products, bf16 / AMX.
NOTABLE_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
                                  "amx_int8")


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ('unknown CPU' where there is none)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> list[str]:
    """Which of :data:`NOTABLE_FLAGS` the CPU reports, in that order."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in NOTABLE_FLAGS if f in have]
    except OSError:
        pass
    return []


def machine(threads: int) -> dict[str, Any]:
    """The machine a timing ran on: ``cpu``, ``logical_cpus``, ``usable_cpus`` (this
    process's affinity), ``threads`` (what the timing used), ``flags``, ``load_average``
    (1, 5, 15 minutes) and ``gpu`` (always None here: no GPU row is measured or estimated)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable, "threads": int(threads),
            "flags": cpu_flags(), "load_average": tuple(round(v, 2) for v in load), "gpu": None}


def machine_caption(info: dict[str, Any]) -> str:
    """One line for a table caption: CPU model, cores, threads used, flags, load."""
    flags = ", ".join(info["flags"]) or "none of " + "/".join(NOTABLE_FLAGS)
    one, five, _ = info["load_average"]
    return (f"{info['cpu']}, {info['usable_cpus']} logical CPUs usable ({info['logical_cpus']} present), "
            f"{info['threads']} threads; flags: {flags}; load average {one:.1f} (1 min), {five:.1f} (5 min); "
            f"no GPU")


def latency_table(rows: Sequence[Any], *, published: bool = True) -> pd.DataFrame:
    """Table 4: one row per model and runtime, plus the paper's published time.

    Parameters
    ----------
    rows : sequence of LatencyRow
        :func:`merlib.inference.latency.measure_latency` output.
    published : bool, default=True
        Add :data:`PUBLISHED` (``time / timm eager`` empty: it is another machine's).

    Returns
    -------
    DataFrame
        Index (model, runtime); columns ``input``, ``ms per sample``, ``time / timm eager``,
        ``argmax agreement``, ``max logit diff``, ``measured``.
    """
    out = pd.DataFrame([{"model": r.model, "runtime": r.runtime, "input": f"1x1x{r.image_size}x{r.image_size}",
                         "ms per sample": r.median_ms, "time / timm eager": 1.0 / r.speedup_vs_eager,
                         "argmax agreement": r.argmax_agree, "max logit diff": r.max_logit_diff,
                         "measured": f"here, median of {r.rounds} interleaved rounds"} for r in rows])
    if published:
        out = pd.concat([out, pd.DataFrame([{
            "model": PUBLISHED["model"], "runtime": "published (the paper's method, Keras)", "input": "",
            "ms per sample": PUBLISHED["ms"], "time / timm eager": np.nan, "argmax agreement": np.nan,
            "max logit diff": np.nan, "measured": f"published: {PUBLISHED['hardware']}"}])], ignore_index=True)
    return out.set_index(["model", "runtime"])


def stage_timings(paths: Sequence[str | os.PathLike], predictor: Any) -> pd.DataFrame:
    """Milliseconds per image of each stage of prediction on images, one image at a time.

    The stages of :meth:`merlib.inference.predict.Predictor.predict_images`: read
    (decode the file), grey, detect (HOG, first attempt), landmarks (68 points), align
    (rotation, crop, resize, eye mask), then model (the bundle's runtime, batch 1) and
    SVM; the face stages come from :func:`merlib.faces.timing.step_timings`.

    Parameters
    ----------
    paths : sequence of path
        Image files with a face.
    predictor : Predictor

    Returns
    -------
    DataFrame
        Index: the stages and ``sum of stages``; columns ``images``, ``ms per image``,
        ``share``.
    """
    from merlib.faces.pipeline import process_frame
    from merlib.faces.timing import step_timings

    faces = step_timings(paths, predictor.align_cfg)
    ms = {s: float(faces.loc[s, "ms_per_frame"]) for s in ("read", "grey", "detect", "landmarks")}
    ms["align"] = float(faces.loc["rotate+crop+resize", "ms_per_frame"] + faces.loc["mask", "ms_per_frame"])
    counts = {s: int(faces.loc[s, "frames"]) for s in ("read", "grey", "detect", "landmarks")}
    counts["align"] = int(faces.loc["mask", "frames"])
    crops = [r.crop for r in (process_frame(p, predictor.align_cfg, neighbours=False) for p in paths)
             if r.crop is not None]
    if not crops:
        raise ValueError(f"paths: no face in any of the {len(paths)} image(s)")
    images = predictor.prepare(np.stack(crops))
    # First calls allocate and load: outside the clock.
    predictor.bundle.svm.predict(predictor.forward(images[:1])[1])
    t_model = t_svm = 0.0
    for i in range(len(images)):
        t = time.perf_counter()
        _, features = predictor.forward(images[i:i + 1])
        t2 = time.perf_counter()
        predictor.bundle.svm.predict(features)
        t_model, t_svm = t_model + t2 - t, t_svm + time.perf_counter() - t2
    ms["model"], ms["SVM"] = 1e3 * t_model / len(images), 1e3 * t_svm / len(images)
    counts["model"] = counts["SVM"] = len(images)
    table = pd.DataFrame({"images": pd.Series(counts), "ms per image": pd.Series(ms)})
    total = table["ms per image"].sum()
    table["share"] = table["ms per image"] / total
    table.loc["sum of stages"] = [len(images), total, 1.0]
    table["images"] = table["images"].astype(int)
    return table


def clip_timing_table(timing: Any) -> pd.DataFrame:
    """The stages of one :meth:`~merlib.inference.predict.Predictor.predict_clip` run.

    Parameters
    ----------
    timing : Timing

    Returns
    -------
    DataFrame
        Index: the stages (writing an annotated copy left out), then ``total``; columns
        ``seconds``, ``ms per frame``, ``share``. ``total`` / frames gives the frames per
        second (``timing.fps``).
    """
    secs = {k: v for k, v in timing.seconds.items() if k != "annotate"}
    n = max(1, timing.frames)
    table = pd.DataFrame({"seconds": pd.Series(secs)})
    table["ms per frame"] = 1e3 * table["seconds"] / n
    table["share"] = table["seconds"] / timing.total if timing.total > 0 else np.nan
    table.loc["total"] = [timing.total, 1e3 * timing.total / n, 1.0]
    return table


def agreement_table(record: dict[str, Any]) -> pd.DataFrame:
    """The ``onnx`` record of :func:`~merlib.inference.bundle.export_bundle`: one row per
    graph (precision) with its agreement with the fp32 torch model.

    Returns
    -------
    DataFrame
        Index: precision; columns ``images``, ``max logit diff``, ``max feature diff``,
        ``argmax agreement``, ``default``.
    """
    rows = {name: {"images": a["n"], "max logit diff": a["max_logit_diff"],
                   "max feature diff": a["max_feature_diff"], "argmax agreement": a["argmax_agree"],
                   "default": name == record["default"]} for name, a in record["agreement"].items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("precision")
