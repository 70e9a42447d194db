"""Tables and figures of the timing chapter (Table 4): per-sample time of the backbones, per-stage
time of prediction, frames per second on a clip, and the machine they were measured on.

The chapter's figures (:func:`latency_figure`, :func:`spotting_figure`) and its set-up
steps (:func:`fit_and_export`: the deployable model on every second subject;
:func:`predict_sample_clip`: a held-out sample as a video) live here too, so the
chapter holds one call per step. Matplotlib, torch and the engine are imported by the
functions that need them: the tables alone stay light (``bench/`` imports them).

Absolute times depend on the machine and on its load; the figures to compare between
machines are ratios to timm eager measured in the same run (:mod:`merlib.inference.latency`).
The paper's one published time stands beside them, labelled as such (:data:`PUBLISHED`).
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

# The CPU facts are the provenance stamp's, one reading of /proc/cpuinfo for both; the
# timing chapter and bench/inference.py import them from here.
from merlib.provenance import NOTABLE_FLAGS, cpu_flags, cpu_model

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from merlib.inference.predict import Predictor
    from merlib.inference.video import RenderedClip
    from merlib.provenance import Provenance
    from merlib.training.crops import CropSet

#: The paper's published per-sample time (MobileViT-S, its method), and where it was
#: measured. The paper gives no other model's time in its text, and does not say whether
#: its graphics card took part in the timing.
PUBLISHED: dict[str, Any] = {
    "model": "mobilevit_s", "ms": 35.4,
    "hardware": "Intel Core i9-9980HK (8 cores), 32 GB; the paper also lists an AMD Radeon Pro 5500M",
    "source": "Liu et al. 2022, abstract and Experimental Setup",
}

def machine(threads: int) -> dict[str, Any]:
    """The machine a timing ran on: ``cpu``, ``arch`` (e.g. ``x86_64``), ``logical_cpus``,
    ``usable_cpus`` (this process's affinity), ``threads`` (what the timing used),
    ``flags`` (:data:`NOTABLE_FLAGS` present), ``load_average`` (1, 5, 15 minutes) and
    ``gpu`` (always None here: no GPU row is measured or estimated)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu_model(), "arch": platform.machine() or "unknown", "logical_cpus": os.cpu_count(),
            "usable_cpus": usable, "threads": int(threads), "flags": cpu_flags(),
            "load_average": tuple(round(v, 2) for v in load), "gpu": None}


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


def latency_figure(table: pd.DataFrame, host: dict[str, Any], provenance: Provenance) -> Figure:
    """Table 4 as bars: ms per sample of every model and runtime measured here, log scale.

    Grey bars are timm eager fp32 (the reference), blue ones the engine; a dashed red
    line marks the paper's published time (:data:`PUBLISHED`), which is another
    machine's and has no bar.

    Parameters
    ----------
    table : DataFrame
        :func:`latency_table` output; rows without ``time / timm eager`` (the published
        one) are left out.
    host : dict
        :func:`machine` of the run (``cpu`` and ``threads`` go into the title).
    provenance : Provenance

    Returns
    -------
    Figure
        One axes, one bar per measured (model, runtime) row, top to bottom in table order.
    """
    import matplotlib.pyplot as plt

    here = table.dropna(subset=["time / timm eager"]).reset_index()
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(here) + 1.6))
    ax.barh(here["model"] + " / " + here["runtime"], here["ms per sample"],
            color=["#999999" if r == "eager" else "#1f77b4" for r in here["runtime"]])
    ax.axvline(PUBLISHED["ms"], color="#b00020", ls="--", lw=1)
    ax.annotate(f"published: {PUBLISHED['ms']} ms, MobileViT, i9-9980HK", (PUBLISHED["ms"], 1.0),
                xycoords=("data", "axes fraction"), color="#b00020", fontsize=8, va="bottom", ha="center")
    ax.set_xscale("log")
    ax.set_xlabel("ms per sample, log scale (grey: timm eager fp32, blue: the engine)")
    ax.invert_yaxis()
    fig.suptitle(f"Per-sample time, {host['cpu']}, {host['threads']} threads")
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return provenance.stamp(fig)


def spotting_figure(signal: np.ndarray | Sequence[float], clip: RenderedClip, spotted: pd.DataFrame,
                    provenance: Provenance, *, title: str = "Spotting on a video") -> Figure:
    """The motion signal of a clip over time, with the annotated and the spotted intervals.

    The annotated interval is shaded green (its apex a dashed green line); each spotted
    interval is hatched blue (its apex a solid blue line).

    Parameters
    ----------
    signal : array-like of shape (n_frames,)
        ``info['signal']`` of :meth:`~merlib.inference.predict.Predictor.predict_clip`,
        one value per frame of the video.
    clip : RenderedClip
        The video (its ``fps`` and annotated ``start``, ``apex``, ``end`` frames).
    spotted : DataFrame
        The spotted intervals, with columns ``start_s``, ``apex_s``, ``end_s`` (seconds).
    provenance : Provenance
    title : str, default="Spotting on a video"

    Returns
    -------
    Figure
        One axes: the signal line, the annotated span, one span and one apex line per
        spotted interval, and the annotated apex line.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.6))
    t = np.arange(len(signal)) / clip.fps
    ax.plot(t, signal, color="k", lw=1)
    ax.axvspan(clip.start / clip.fps, clip.end / clip.fps, color="#2ca02c", alpha=0.2, label="annotated interval")
    for _, iv in spotted.iterrows():
        ax.axvspan(iv["start_s"], iv["end_s"], fill=False, hatch="//", edgecolor="#1f77b4", label="spotted interval")
        ax.axvline(iv["apex_s"], color="#1f77b4", lw=1)
    ax.axvline(clip.apex / clip.fps, color="#2ca02c", ls="--", lw=1)
    ax.set_xlabel("seconds")
    ax.set_ylabel("motion (grey levels)")
    ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return provenance.stamp(fig)


def every_second_subject(groups: np.ndarray | Sequence[str]) -> np.ndarray:
    """Which crops belong to a held-out subject: every second subject in sorted order.

    The 2nd, 4th, ... subjects (sorted by name) are held out, so both halves span the
    data set's subjects rather than its first and last ones.

    Parameters
    ----------
    groups : array-like of shape (N,)
        The subject of each crop (:attr:`merlib.training.crops.CropSet.groups`).

    Returns
    -------
    ndarray of shape (N,), bool
        True for the crops of a held-out subject.
    """
    subjects = sorted(set(groups))
    held_out = set(subjects[1::2])
    return np.array([g in held_out for g in groups], dtype=bool)


@dataclass(frozen=True)
class TimingModel:
    """The deployable model of the timing chapter, fitted and exported.

    Attributes
    ----------
    model_dir : Path
        The model folder :func:`~merlib.inference.predict.fit_model` wrote.
    bundle_dir : Path
        The exported bundle (ONNX graph) :func:`~merlib.inference.bundle.export_bundle` wrote.
    is_held : ndarray of shape (N,), bool
        The crops of the held-out subjects (:func:`every_second_subject`).
    groups : ndarray of shape (N,)
        The subject of each crop.
    meta : dict
        The model's metadata (``arch``, ``image_size``, ``mean``, ``std``, ...).
    record : dict
        ``export_bundle``'s ``onnx`` record (for :func:`agreement_table`).
    """

    model_dir: Path
    bundle_dir: Path
    is_held: np.ndarray
    groups: np.ndarray
    meta: dict[str, Any]
    record: dict[str, Any]

    def split_line(self) -> str:
        """One line: training and held-out crops, and their subjects."""
        n_train = len(set(self.groups[~self.is_held]))
        n_held = len(set(self.groups[self.is_held]))
        return (f"{(~self.is_held).sum()} training crops of {n_train} subjects; "
                f"{self.is_held.sum()} held-out crops of {n_held} subjects")


def fit_and_export(crops: CropSet, work: str | os.PathLike, *, seed: int, fit_epochs: int, int8: bool,
                   exporter: str) -> TimingModel:
    """Fit the smoke profile's model on every second subject, export it, check the graph.

    As ``merlib fit`` then ``merlib export`` do: fine-tuning and the SVM on the training
    subjects' crops (:func:`every_second_subject` gives the others), then the ONNX graph
    checked against the fp32 torch model on the held-out subjects' crops; an int8 graph,
    when asked for, is calibrated on the training subjects' crops.

    Parameters
    ----------
    crops : CropSet
        The composite's crops, N of them.
    work : path
        Folder for ``model/`` and ``bundle/`` (overwritten).
    seed : int
        The fine-tuning configuration's seed and the fit's.
    fit_epochs : int
        Fine-tuning epochs of :meth:`merlib.config.Profile.smoke`'s micro settings.
    int8 : bool
        Also write an int8 graph (``precision='auto'``); else fp32 only.
    exporter : str
        ONNX exporter, ``'dynamo'`` or ``'torchscript'``.

    Returns
    -------
    TimingModel
    """
    from merlib.config import Profile
    from merlib.inference.bundle import export_bundle
    from merlib.inference.predict import Predictor, fit_model, prepare_images

    work = Path(work)
    is_held = every_second_subject(crops.groups)
    cfg = Profile.smoke().micro.replace(seed=seed, epochs=fit_epochs)
    fit_model(crops.subset(np.flatnonzero(~is_held)), cfg, work / "model", seed=seed)
    meta = Predictor(work / "model", runtime="torch").bundle.meta
    images = prepare_images(crops.X, cfg.image_size, float(meta["mean"]), float(meta["std"]))
    record = export_bundle(work / "model", work / "bundle", check_images=images[is_held],
                           calibration=images[~is_held], precision="auto" if int8 else "fp32", exporter=exporter)
    return TimingModel(work / "model", work / "bundle", is_held, np.asarray(crops.groups), meta, record)


class ClipRun(NamedTuple):
    """A sample rendered to a video and :meth:`~merlib.inference.predict.Predictor.predict_clip` on it.

    Attributes
    ----------
    sample : sequence of str
        ``[dataset, subject, sample]``.
    clip : RenderedClip
    spotted : DataFrame
        The spotted intervals and their labels.
    info : dict
        ``predict_clip``'s second output (``signal``, ``timing``, ``decodes``, ...).
    """

    sample: Sequence[str]
    clip: RenderedClip
    spotted: pd.DataFrame
    info: dict[str, Any]


def predict_sample_clip(predictor: Predictor, data_root: str | os.PathLike, samples: pd.DataFrame,
                        out: str | os.PathLike, *, sample: Sequence[str] | None = None, pad: int = 20,
                        fps: float = 60.0, fourcc: str = "MJPG") -> ClipRun:
    """Render a sample's frames to a video and run ``predict`` on it, as a camera's clip.

    Parameters
    ----------
    predictor : Predictor
    data_root : path
    samples : DataFrame
        Candidate samples (columns ``dataset``, ``subject``, ``sample``), e.g. the
        held-out subjects' crops; the first is used when ``sample`` is None.
    out : path
        The video file written.
    sample : sequence of 3 str, optional
        ``[dataset, subject, sample]`` to render instead of the first of ``samples``.
    pad : int, default=20
        Still frames before and after the clip.
    fps : float, default=60
    fourcc : str, default="MJPG"
        Lossy, as a camera would give the frames.

    Returns
    -------
    ClipRun

    Raises
    ------
    ValueError
        When ``sample`` is not three names, or it is None and ``samples`` is empty.
    """
    from merlib.inference.video import open_source, render_sample_video

    if sample is None:
        if len(samples) == 0:
            raise ValueError("samples: no sample to render (and no sample given)")
        first = samples.iloc[0]
        sample = [first["dataset"], first["subject"], first["sample"]]
    elif len(sample) != 3:
        raise ValueError(f"sample: expected [dataset, subject, sample], got {sample!r}")
    clip = render_sample_video(data_root, *sample, out, fps=fps, pad=pad, fourcc=fourcc)
    spotted, info = predictor.predict_clip(open_source(clip.path))
    return ClipRun(sample, clip, spotted, info)
