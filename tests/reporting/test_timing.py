"""The timing chapter's tables: machine description, Table 4 with the published row,
per-stage tables."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from merlib.inference.latency import LatencyRow
from merlib.inference.predict import Timing
from merlib.reporting.timing import (PUBLISHED, agreement_table, clip_timing_table, cpu_flags, cpu_model,
                                     latency_table, machine, machine_caption)

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma avx512f
processor\t: 1
model name\t: AMD EPYC 7B13
"""


def test_cpu_model_and_flags_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert cpu_model(info) == "AMD EPYC 7B13"
    assert cpu_flags(info) == ["avx2", "fma", "avx512f"]
    assert cpu_model(tmp_path / "missing") == "unknown CPU" and cpu_flags(tmp_path / "missing") == []


def test_machine_caption_names_cpu_threads_load_and_no_gpu() -> None:
    info = dict(machine(2), cpu="AMD EPYC 7B13", usable_cpus=2, logical_cpus=4, flags=[], load_average=(3.25, 2.0, 1.0))
    text = machine_caption(info)
    assert text.startswith("AMD EPYC 7B13, 2 logical CPUs usable (4 present), 2 threads; flags: none of avx2/")
    assert "load average 3.2 (1 min), 2.0 (5 min); no GPU" in text
    assert machine(2)["gpu"] is None and machine(2)["threads"] == 2


def test_latency_table_ratios_and_the_published_row() -> None:
    rows = [LatencyRow("mobilevit_s", "eager", 256, 80.0, 1.0, 1.0, 0.0, 9, 2),
            LatencyRow("mobilevit_s", "onnxruntime", 256, 32.0, 2.5, 1.0, 2e-7, 9, 2),
            LatencyRow("deit_tiny", "eager", 224, 25.0, 1.0, 1.0, 0.0, 9, 2)]
    table = latency_table(rows)
    assert table.loc[("mobilevit_s", "onnxruntime"), "time / timm eager"] == pytest.approx(0.4)
    assert table.loc[("deit_tiny", "eager"), "input"] == "1x1x224x224"
    published = table.iloc[-1]
    assert published.name == ("mobilevit_s", "published (the paper's method, Keras)")
    assert published["ms per sample"] == 35.4 == PUBLISHED["ms"]
    assert math.isnan(published["time / timm eager"])  # another machine: no ratio
    assert published["measured"].startswith("published: Intel Core i9-9980HK (8 cores)")
    assert len(latency_table(rows, published=False)) == 3
    assert rows[1].line() == "mobilevit_s onnxruntime median_ms=32.00 speedup_vs_eager=2.50 argmax_agree=1.0000"


def test_clip_timing_table_leaves_out_annotation() -> None:
    timing = Timing(frames=100)
    timing.seconds.update(decode=1.0, track=0.5, apex=0.5, annotate=9.0)
    table = clip_timing_table(timing)
    assert "annotate" not in table.index
    assert table.loc["total", "seconds"] == pytest.approx(2.0) and timing.fps == pytest.approx(50.0)
    assert table.loc["decode", "ms per frame"] == pytest.approx(10.0)
    assert table.loc["decode", "share"] == pytest.approx(0.5)


def test_agreement_table_from_an_export_record() -> None:
    record = {"default": "fp32", "agreement": {
        "fp32": {"n": 12, "max_logit_diff": 3e-6, "max_feature_diff": 5e-6, "argmax_agree": 1.0},
        "int8": {"n": 12, "max_logit_diff": 0.4, "max_feature_diff": 0.9, "argmax_agree": 0.75}}}
    table = agreement_table(record)
    assert list(table.index) == ["fp32", "int8"] and table.index.name == "precision"
    assert table.loc["int8", "argmax agreement"] == 0.75 and not table.loc["int8", "default"]
    assert isinstance(table, pd.DataFrame) and table.loc["fp32", "images"] == 12
