"""Chapter 08's helpers: its set-up, its table, its figure and its verdict lines."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from merlib.errors import ConfigError
from merlib.faces.perturb import UNITS
from merlib.provenance import Provenance
from merlib.reporting import robustness as report
from merlib.studies import robustness as rob

PROV = Provenance("SIMULATED (SynthME, seed 0)", "0123456789ab", "merlib test", {"seed": 0})


def _summary(rows: list[tuple]) -> pd.DataFrame:
    """A summarise()-shaped table from (perturbation, strength, failed, uf1, lo, hi, d, d_lo, d_hi)."""
    out = []
    for name, strength, failed, uf1, lo, hi, d, d_lo, d_hi in rows:
        out.append({"perturbation": name, "strength": strength, "n": 10, "failed": failed, "wrong": 3,
                    "uf1": uf1, "uf1_lo": lo, "uf1_hi": hi, "uar": uf1 + 0.1, "uar_lo": lo + 0.1,
                    "uar_hi": hi + 0.1, "d_uf1": d, "d_uf1_lo": d_lo, "d_uf1_hi": d_hi})
    return pd.DataFrame(out)


#: clean; noise loses UF1 for real at 16; rotation loses faces; the mouth band is absorbed.
SUMMARY = _summary([
    ("clean", 0.0, 0, 0.5, 0.4, 0.6, 0.0, 0.0, 0.0),
    ("noise", 8.0, 0, 0.45, 0.35, 0.55, -0.05, -0.1, 0.02),
    ("noise", 16.0, 0, 0.3, 0.2, 0.4, -0.2, -0.3, -0.1),
    ("rotation", 25.0, 2, 0.48, 0.38, 0.58, -0.02, -0.05, 0.01),
    ("occlude_mouth", 0.6, 0, 0.5, 0.4, 0.6, 0.0, -0.01, 0.01),
])


def test_summary_lines_name_the_worst_the_absorbed_the_real_losses_and_the_failures():
    lines = rob.summary_lines(SUMMARY, ["casme2/s1", "samm/s2", "smic/s3"])
    assert lines == [
        "Largest UF1 losses (at each perturbation's worst strength): "
        f"**noise** at 16 ({UNITS['noise']}): UF1 0.300 [0.20, 0.40], -0.200 vs clean, 0 of 10 faces lost; "
        f"**rotation** at 25 ({UNITS['rotation']}): UF1 0.480 [0.38, 0.58], -0.020 vs clean, 2 of 10 faces lost; "
        f"**occlude_mouth** at 0.6 ({UNITS['occlude_mouth']}): UF1 0.500 [0.40, 0.60], +0.000 vs clean, "
        "0 of 10 faces lost.",
        "Clean UF1 0.500 [0.40, 0.60]. Absorbed at every strength tried (no face lost, no real UF1 loss): "
        "occlude_mouth.",
        "Losses whose paired interval excludes 0: noise 16: -0.200 [-0.30, -0.10].",
        "Face-detection failures caused by the perturbation: rotation 25: 2.",
        "**Few test subjects**: the intervals are wide or degenerate; the book run perturbs more.",
    ]


def test_summary_lines_say_none_and_drop_the_optional_lines():
    # Every perturbation loses UF1 for real, none loses a face, six subjects: no warning.
    s = SUMMARY.assign(failed=0, d_uf1_hi=[0.0, -0.01, -0.1, -0.01, -0.001])
    lines = rob.summary_lines(s, [f"casme2/s{i}" for i in range(6)])
    assert len(lines) == 3
    assert lines[1].endswith("(no face lost, no real UF1 loss): none.")
    assert lines[2] == ("Losses whose paired interval excludes 0: noise 8: -0.050 [-0.10, -0.01]; "
                        "noise 16: -0.200 [-0.30, -0.10]; rotation 25: -0.020 [-0.05, -0.01]; "
                        "occlude_mouth 0.6: +0.000 [-0.01, -0.00].")
    clean_only = rob.summary_lines(SUMMARY.iloc[[0, 4]].assign(d_uf1_hi=[0.0, 0.01]), ["a/b"] * 6)
    assert clean_only[2] == "Losses whose paired interval excludes 0: none."


def test_summary_table_writes_intervals_in_the_chapter_columns():
    table = report.summary_table(SUMMARY.assign(strength=SUMMARY["strength"] + 1e-4))
    assert list(table.columns) == list(report.TABLE_COLUMNS)
    assert len(table) == len(SUMMARY)
    row = table.iloc[2]
    assert (row["perturbation"], row["strength"], row["n"], row["failed"], row["wrong"]) == ("noise", 16.0, 10, 0, 3)
    assert row["uf1"] == "0.300 [0.20, 0.40]" and row["uar"] == "0.400 [0.30, 0.50]"
    assert row["d_uf1"] == "-0.200 [-0.30, -0.10]" and table.iloc[0]["d_uf1"] == "+0.000 [+0.00, +0.00]"


def test_figure_has_one_panel_per_perturbation_clean_first():
    grid = {"noise": (8.0, 16.0), "rotation": (25.0,), "occlude_mouth": (0.6,), "blur": (0.02,), "gamma": (1.5,)}
    summary = pd.concat([SUMMARY, _summary([("blur", 0.02, 1, 0.4, 0.3, 0.5, -0.1, -0.2, 0.0),
                                            ("gamma", 1.5, 0, 0.5, 0.4, 0.6, 0.0, 0.0, 0.0)])], ignore_index=True)
    fig = report.robustness_figure(summary, grid, PROV, title="UF1 against strength")
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        shown = [ax for ax in fig.axes if ax.axison]
        assert len(fig.axes) == 8 and len(shown) == len(grid)  # two rows of four, three hidden
        assert [ax.get_title() for ax in shown] == ["noise", "rotation (geometric)", "occlude_mouth", "blur", "gamma"]
        assert [t.get_text() for t in shown[0].get_xticklabels()] == ["clean", "8", "16"]
        assert shown[0].get_xlabel() == UNITS["noise"] and shown[0].get_ylabel() == "composite UF1"
        # The failure bars are fractions of the test samples: 1 of 10 blur faces lost.
        assert [p.get_height() for p in shown[3].patches] == [0.0, 0.1]
        assert fig._suptitle.get_text() == "SIMULATED DATA — UF1 against strength"
        assert any(PROV.caption() in t.get_text() for t in fig.texts)
    finally:
        plt.close(fig)


def test_setup_errors_name_the_parameter(tmp_path):
    # The grid is checked before the data root is read; a folder without SYNTHME.json next.
    with pytest.raises(ConfigError, match="grid: expected 'given' or 'full', got 'wide'"):
        rob.prepare_robustness(tmp_path, grid="wide")
    with pytest.raises(ConfigError, match=r"grid: unknown perturbation 'fog'"):
        rob.prepare_robustness(tmp_path, perturbations={"fog": [1.0]})
    with pytest.raises(ConfigError, match="data_root: .* is not a SynthME root; this chapter picks the amplitude"):
        rob.prepare_robustness(tmp_path)
    assert issubclass(ConfigError, ValueError)  # what the chapter raised before


def test_setup_refuses_an_unknown_input_before_making_crops(synth_root):
    # At amplitude 1 the studied root is the data root itself (reused, nothing generated).
    with pytest.raises(ConfigError, match=r"input: expected one of \('apex', 'difference'\), got 'video'"):
        rob.prepare_robustness(synth_root, input="video")
