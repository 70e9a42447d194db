"""Helpers of the pre-processing and timing chapters, tested without running a notebook:
the Figure 2 example, the runs table, the timing figures, the held-out split, the fit /
export set-up and the clip run."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from merlib.faces.config import AlignConfig
from merlib.faces.run import RUN_TABLE_STATS, RunResult, runs_table
from merlib.inference.latency import LatencyRow
from merlib.inference.video import RenderedClip
from merlib.provenance import Provenance
from merlib.reporting import faces as report_faces
from merlib.reporting import timing as report_timing
from merlib.reporting.timing import (PUBLISHED, TimingModel, every_second_subject, latency_figure, latency_table,
                                     spotting_figure)
from merlib.training.crops import synthetic_crop_set

PROV = Provenance("real", "0123456789ab", "merlib test", {})


# -- chapter 01 -----------------------------------------------------------------------

def _jobs(datasets: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"dataset": datasets, "sample": [f"x{i}" for i in range(len(datasets))],
                         "frame_path": [f"{d}/f{i}.jpg" for i, d in enumerate(datasets)]},
                        index=range(10, 10 + len(datasets)))


def _fake_stages(angles: dict[str, float | None]):
    """figure2_stages stand-in: the roll by file name, None for a frame without a face."""
    def stages(path, cfg):
        angle = angles[Path(path).name]
        if angle is None:
            raise ValueError("no face found")
        return {"angle_deg": angle, "path": Path(path)}
    return stages


def test_figure2_example_is_the_most_tilted_casme2_frame(monkeypatch, tmp_path: Path) -> None:
    jobs = _jobs(["samm", "casme2", "casme2", "casme2", "casme2"])
    angles = {"f0.jpg": 40.0, "f1.jpg": 3.0, "f2.jpg": None, "f3.jpg": -7.5, "f4.jpg": 9.0}
    monkeypatch.setattr(report_faces, "figure2_stages", _fake_stages(angles))
    row, stages, skipped = report_faces.pick_figure2_example(jobs, tmp_path, AlignConfig(), candidates=3)
    # SAMM's 40 degrees is not a candidate; f4 is past the first 3 CASME II rows.
    assert row.name == 13 and row["sample"] == "x3" and stages["angle_deg"] == -7.5
    assert stages["path"] == tmp_path / "casme2/f3.jpg"
    assert skipped == ["casme2/f2.jpg: no face found"]


def test_figure2_example_falls_back_to_other_datasets_and_raises_without_faces(monkeypatch, tmp_path: Path) -> None:
    jobs = _jobs(["samm", "smic"])
    monkeypatch.setattr(report_faces, "figure2_stages", _fake_stages({"f0.jpg": 1.0, "f1.jpg": -2.0}))
    assert report_faces.pick_figure2_example(jobs, tmp_path, AlignConfig()).row["dataset"] == "smic"
    monkeypatch.setattr(report_faces, "figure2_stages", _fake_stages({"f0.jpg": None, "f1.jpg": None}))
    with pytest.raises(ValueError, match="jobs_table: none of the 2 candidate"):
        report_faces.pick_figure2_example(jobs, tmp_path, AlignConfig())


def test_runs_table_rows_columns_and_throughput() -> None:
    def run(**stats):
        return RunResult(pd.DataFrame(), pd.DataFrame(), Path("."), dict(stats, scan_seconds=0.1))
    table = runs_table({"first": run(jobs=10, computed=10, cached=0, workers=2, seconds=4.0),
                        "warm": run(jobs=10, computed=0, cached=10, workers=0, seconds=0.5)})
    assert list(table.index) == ["first", "warm"] and table.index.name == "run"
    assert list(table.columns) == [*RUN_TABLE_STATS, "images_per_s"]
    assert table["images_per_s"].tolist() == [2.5, 20.0]
    with pytest.raises(ValueError, match="runs"):
        runs_table({})


# -- chapter 09: figures --------------------------------------------------------------

def test_latency_figure_bars_colours_and_published_line() -> None:
    rows = [LatencyRow("mobilevit_s", "eager", 256, 80.0, 1.0, 1.0, 0.0, 9, 2),
            LatencyRow("mobilevit_s", "onnxruntime", 256, 32.0, 2.5, 1.0, 2e-7, 9, 2)]
    host = {"cpu": "AMD EPYC 7B13", "threads": 2}
    fig = latency_figure(latency_table(rows), host, PROV)
    try:
        (ax,) = fig.axes
        bars = ax.patches
        assert [b.get_width() for b in bars] == [80.0, 32.0]  # the published row has no bar
        assert [to_hex(b.get_facecolor()) for b in bars] == ["#999999", "#1f77b4"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["mobilevit_s / eager", "mobilevit_s / onnxruntime"]
        assert ax.get_xscale() == "log" and ax.yaxis_inverted()
        assert [line.get_xdata()[0] for line in ax.lines] == [PUBLISHED["ms"]]
        assert fig._suptitle.get_text() == "Per-sample time, AMD EPYC 7B13, 2 threads"
        assert any(PROV.caption() == t.get_text() for t in fig.texts)  # stamped
    finally:
        plt.close(fig)


def test_spotting_figure_signal_and_intervals(tmp_path: Path) -> None:
    clip = RenderedClip(tmp_path / "clip.avi", fps=10.0, start=5, apex=8, end=12, n_frames=30,
                        apex_path=tmp_path / "apex.jpg")
    signal = np.linspace(0.0, 3.0, 30)
    spotted = pd.DataFrame({"start_s": [0.4, 2.0], "apex_s": [0.7, 2.2], "end_s": [1.1, 2.5]})
    fig = spotting_figure(signal, clip, spotted, PROV, title="Spotting on casme2/01/EP02 (MJPG video)")
    try:
        (ax,) = fig.axes
        curve, *vlines = ax.lines
        assert np.allclose(curve.get_xdata(), np.arange(30) / 10.0) and np.allclose(curve.get_ydata(), signal)
        # One apex line per spotted interval, then the annotated apex (dashed).
        assert [v.get_xdata()[0] for v in vlines] == [0.7, 2.2, 0.8]
        assert vlines[-1].get_linestyle() == "--"
        spans = ax.patches
        assert len(spans) == 3  # annotated + two spotted
        x0, x1 = spans[0].get_extents().x0, spans[0].get_extents().x1
        assert ax.transData.inverted().transform([[x0, 0], [x1, 0]])[:, 0] == pytest.approx([0.5, 1.2])
        assert [s.get_hatch() for s in spans] == [None, "//", "//"]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "annotated interval", "spotted interval", "spotted interval"]
        assert fig._suptitle.get_text() == "Spotting on casme2/01/EP02 (MJPG video)"
    finally:
        plt.close(fig)


# -- chapter 09: the held-out split, fit / export, the clip -----------------------------

def test_every_second_subject_in_sorted_order() -> None:
    groups = np.array(["s2", "s1", "s3", "s4", "s1", "s3", "s2"])
    # sorted: s1, s2, s3, s4 -> s2 and s4 held out
    assert every_second_subject(groups).tolist() == [True, False, False, True, False, False, True]
    assert every_second_subject(np.array(["a"])).tolist() == [False]
    assert every_second_subject(np.array([], dtype=str)).dtype == bool


def test_split_line_counts_crops_and_subjects() -> None:
    groups = np.array(["a", "a", "b", "c", "c", "c"])
    model = TimingModel(Path("m"), Path("b"), every_second_subject(groups), groups, {}, {})
    assert model.split_line() == "5 training crops of 2 subjects; 1 held-out crops of 1 subjects"


def test_fit_and_export_trains_on_every_second_subject_and_checks_on_the_others(monkeypatch, tmp_path: Path) -> None:
    import merlib.inference.bundle as bundle
    import merlib.inference.predict as predict

    crops = synthetic_crop_set(n_subjects=4, per_subject=3, size=16, seed=0)
    calls = {}

    class FakePredictor:
        def __init__(self, model, runtime="auto"):
            calls["predictor"] = (Path(model), runtime)
            self.bundle = type("B", (), {"meta": {"mean": 0.5, "std": 0.25, "arch": "toy"}})()

    def fake_fit(subset, cfg, out_dir, *, seed=None):
        calls["fit"] = (sorted(set(subset.groups)), len(subset), cfg.epochs, cfg.seed, Path(out_dir), seed)

    def fake_prepare(X, size, mean, std):
        calls["prepare"] = (size, mean, std)
        return np.arange(len(X), dtype=np.float32)

    def fake_export(model_dir, out_dir, *, check_images, calibration, precision, exporter):
        calls["export"] = (Path(model_dir), Path(out_dir), check_images, calibration, precision, exporter)
        return {"default": "fp32", "agreement": {}}

    monkeypatch.setattr(predict, "Predictor", FakePredictor)
    monkeypatch.setattr(predict, "fit_model", fake_fit)
    monkeypatch.setattr(predict, "prepare_images", fake_prepare)
    monkeypatch.setattr(bundle, "export_bundle", fake_export)
    model = report_timing.fit_and_export(crops, tmp_path, seed=3, fit_epochs=2, int8=True, exporter="torchscript")

    subjects = sorted(set(crops.groups))
    held = np.isin(crops.groups, subjects[1::2])
    assert calls["fit"] == (subjects[0::2], 6, 2, 3, tmp_path / "model", 3)
    assert calls["predictor"] == (tmp_path / "model", "torch")
    assert calls["prepare"][1:] == (0.5, 0.25)
    model_dir, out_dir, check, calibration, precision, exporter = calls["export"]
    assert (model_dir, out_dir, precision, exporter) == (tmp_path / "model", tmp_path / "bundle", "auto", "torchscript")
    assert check.tolist() == np.flatnonzero(held).tolist()
    assert calibration.tolist() == np.flatnonzero(~held).tolist()
    assert np.array_equal(model.is_held, held) and model.bundle_dir == tmp_path / "bundle"
    assert model.meta["arch"] == "toy" and model.record["default"] == "fp32"

    report_timing.fit_and_export(crops, tmp_path, seed=3, fit_epochs=2, int8=False, exporter="dynamo")
    assert calls["export"][4:] == ("fp32", "dynamo")


def test_predict_sample_clip_renders_the_first_candidate_unless_told(monkeypatch, tmp_path: Path) -> None:
    import merlib.inference.video as video

    rendered = []

    def fake_render(root, dataset, subject, sample, out, *, fps, pad, fourcc):
        rendered.append((dataset, subject, sample, Path(out), fps, pad, fourcc))
        return RenderedClip(Path(out), fps, 1, 2, 3, 10, tmp_path / "apex.jpg")

    class FakePredictor:
        def predict_clip(self, source):
            return pd.DataFrame({"start_s": [0.1]}), {"source": source}

    monkeypatch.setattr(video, "render_sample_video", fake_render)
    monkeypatch.setattr(video, "open_source", lambda path: f"opened {Path(path).name}")
    samples = pd.DataFrame({"dataset": ["samm", "casme2"], "subject": ["019", "01"], "sample": ["a", "b"]})
    run = report_timing.predict_sample_clip(FakePredictor(), tmp_path, samples, tmp_path / "clip.avi", pad=5)
    assert run.sample == ["samm", "019", "a"]
    assert rendered[-1] == ("samm", "019", "a", tmp_path / "clip.avi", 60.0, 5, "MJPG")
    assert run.info == {"source": "opened clip.avi"} and run.clip.n_frames == 10
    run = report_timing.predict_sample_clip(FakePredictor(), tmp_path, samples.iloc[:0], tmp_path / "c.avi",
                                            sample=["casme2", "01", "b"])
    assert run.sample == ["casme2", "01", "b"] and rendered[-1][:3] == ("casme2", "01", "b")
    with pytest.raises(ValueError, match="samples"):
        report_timing.predict_sample_clip(FakePredictor(), tmp_path, samples.iloc[:0], tmp_path / "c.avi")
    with pytest.raises(ValueError, match="sample: expected"):
        report_timing.predict_sample_clip(FakePredictor(), tmp_path, samples, tmp_path / "c.avi", sample=["samm"])
