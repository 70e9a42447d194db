"""The amplitude chapter's orchestration, tested without running its notebook: the
settings of its parameters, the roots, the run loop, the results and jitter tables, the
figure and the verdict lines."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from merlib.provenance import Provenance
from merlib.reporting import amplitude as report
from merlib.studies import amplitude as amp

SIM = Provenance("SIMULATED (SynthME, seed 0)", "0123456789ab", "merlib test", {})
GIVEN = dict(amplitudes=[2.0], image_sizes=[64], transfer=[False], inputs=["apex"], references=["majority"])


# -- settings and roots ---------------------------------------------------------------

def test_given_grid_keeps_the_parameters_and_records_them_as_lists():
    s = amp.AmplitudeSettings.from_parameters("given", **GIVEN, profile="smoke", device="cpu", seed=3,
                                              micro_epochs=1, early_grid=4, workers=2)
    assert (s.amplitudes, s.image_sizes, s.transfer, s.inputs, s.references) == \
        ((2.0,), (64,), (False,), ("apex",), ("majority",))
    assert s.workers == 2
    # Exactly the chapter's provenance parameters (its caption must not change).
    assert s.provenance_params() == dict(profile="smoke", device="cpu", seed=3, grid="given", amplitudes=[2.0],
                                         image_sizes=[64], transfer=[False], inputs=["apex"], micro_epochs=1,
                                         early_grid=4)


def test_full_grid_replaces_amplitudes_sizes_transfer_inputs_and_references():
    s = amp.AmplitudeSettings.from_parameters("full", **{**GIVEN, "inputs": ["bogus"]})
    assert s.amplitudes == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert s.image_sizes == (64, 128) and s.transfer == (False, True)
    assert s.inputs == ("apex", "difference") and s.references == ("majority", "pixels_lr", "hog_svm")
    assert s.provenance_params()["amplitudes"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_unknown_grid_and_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match=r"^grid: expected 'given' or 'full', got 'all'$"):
        amp.AmplitudeSettings.from_parameters("all", **GIVEN)
    with pytest.raises(ValueError, match=r"^inputs: expected 'apex' and/or 'difference', got \['flow', 'onset'\]$"):
        amp.AmplitudeSettings.from_parameters("given", **{**GIVEN, "inputs": ["onset", "apex", "flow"]})


def test_a_root_without_synthme_record_is_refused(tmp_path, synth_root):
    with pytest.raises(ValueError, match=r"^data_root: .* is not a SynthME root; the amplitude study needs"):
        amp.synthme_record(tmp_path)
    assert amp.synthme_record(synth_root) == json.loads((synth_root / "SYNTHME.json").read_text())


def test_study_roots_reuse_the_data_root_at_its_own_amplitude(tmp_path, synth_root):
    record = amp.synthme_record(synth_root)
    roots = amp.study_roots(tmp_path / "amplitude", synth_root, record, [record["amplitude_scale"]])
    assert roots == {float(record["amplitude_scale"]): synth_root}
    assert not (tmp_path / "amplitude").exists()  # nothing generated


def test_study_roots_reuse_a_calibrated_root_with_its_own_amplitude_ranges(tmp_path):
    """A root generated with the calibrated preset (its own micro amplitude range) is its
    own amplitude-1 study root; the default range would not match it."""
    from merlib.synth import SynthConfig, generator_settings

    cfg = SynthConfig.preset("realistic", seed=2, micro_subjects=3, macro_subjects=4)
    own = tmp_path / "calibrated"
    own.mkdir()
    record = {**cfg.record(), "complete": True}
    (own / "SYNTHME.json").write_text(json.dumps(record))
    assert generator_settings(record)["micro_amplitude_iod"] == tuple(cfg.micro_amplitude_iod)
    roots = amp.study_roots(tmp_path / "amplitude", own, record, [1.0])
    assert roots == {1.0: own}
    assert not (tmp_path / "amplitude").exists()  # nothing generated
    plain = {**record, "micro_amplitude_iod": [0.02, 0.04]}
    assert generator_settings(plain) != generator_settings(record)


# -- hand-made study table --------------------------------------------------------------

def _row(kind, scale, clf, uf1, *, size=64, tr=False, beats=False, m=(np.nan, np.nan, np.nan), n_subjects=3):
    return dict(scale=scale, classifier=clf, image_size=size, amp_iod=0.03 * scale, amp_px=0.03 * scale * size / 2.5,
                uf1=uf1, uf1_lo=uf1 - 0.1, uf1_hi=uf1 + 0.1, uar=uf1, uar_lo=uf1 - 0.05, uar_hi=uf1 + 0.05,
                n=42, n_subjects=n_subjects, beats_majority=beats, m_uf1=m[0], m_uf1_lo=m[1], m_uf1_hi=m[2],
                transfer=tr, input=kind, chance_uf1=0.31)


@pytest.fixture
def table():
    rows = []
    for scale, beats in ((1.0, False), (3.0, True)):
        rows += [_row("apex", scale, "svm", 0.3 * scale, beats=beats), _row("apex", scale, "softmax", 0.25 * scale),
                 _row("apex", scale, "majority", 0.2),
                 _row("apex", scale, "pixels_lr", 0.4 if scale == 1 else 0.5,
                      m=(-0.1, -0.2, -0.05) if scale == 1 else (0.4, 0.1, 0.6))]
        # The difference input's grid head: its svm_pooled row holds grid minus pooled.
        rows += [_row("difference", scale, "svm", 0.2), _row("difference", scale, "majority", 0.2),
                 _row("difference+grid", scale, "svm", 0.25), _row("difference+grid", scale, "majority", 0.2),
                 _row("difference+grid", scale, "svm_pooled", 0.2, m=(0.05, -0.01, 0.11))]
    return pd.DataFrame(rows)


def test_results_table_hides_the_grid_views_repeated_rows_and_formats_intervals(table):
    shown = report.results_table(table)
    assert list(shown.columns) == list(report.RESULT_COLUMNS)
    grid = shown[shown["input"] == "difference+grid"]
    assert sorted(set(grid["classifier"])) == ["svm", "svm_pooled"]
    assert len(shown) == len(table) - 2  # the two majority rows of the grid view
    first = shown.iloc[0]
    assert (first["classifier"], first["uf1"], first["uar"]) == ("svm", "0.300 [0.20, 0.40]", "0.300 [0.25, 0.35]")


def test_jitter_summary_gives_medians_in_iod_and_pixels_per_size():
    jitter = pd.DataFrame({"jitter_iod": [0.01, 0.03, np.nan], "jitter_mouth_iod": [0.02, 0.04, 0.06],
                           "jitter_brows_iod": [0.005, 0.005, 0.005]})
    s = report.jitter_summary(jitter, [64, 128])
    assert list(s.columns) == ["landmarks", "median jitter (IOD)", "px at 64 px", "px at 128 px"]
    assert list(s["landmarks"]) == ["all 68", "mouth (48-67)", "brows (17-26)"]
    np.testing.assert_allclose(s["median jitter (IOD)"], [0.02, 0.04, 0.005])
    np.testing.assert_allclose(s["px at 64 px"], [0.512, 1.024, 0.128])  # 25.6 px per IOD
    np.testing.assert_allclose(s["px at 128 px"], 2 * s["px at 64 px"])


def test_verdict_lines_on_a_hand_made_table(table):
    lines = report.verdict_lines(table, 0.01, [64, 128])
    assert lines[:2] == [
        "- apex input, 64 px, no transfer: first at amplitude x3 (0.090 IOD, 2.30 px), UF1 0.900 [0.80, 1.00].",
        "  At the largest amplitude tried (x3, 0.090 IOD): UF1 0.900 [0.80, 1.00], UAR 0.900 [0.85, 0.95]."]
    assert lines[2] == "- difference input, 64 px, no transfer: at no amplitude tried (x1, x3)."
    assert lines[6] == ("- apex input, x1, 64 px: the method (SVM head) UF1 0.300 [0.20, 0.40] **trails** "
                        "pixels_lr UF1 0.400 [0.30, 0.50]; method minus reference -0.100 [-0.20, -0.05] (paired).")
    assert "**beats** pixels_lr" in lines[7] and lines[7].startswith("- apex input, x3, 64 px:")
    assert lines[8] == ("- difference+grid, x1, 64 px: early grid minus the pooled vector (same networks, paired) "
                        "+0.050 [-0.01, +0.11].")
    assert lines[10].startswith("- **Too few subjects for an interval** (3;")
    assert lines[-1] == "- landmark jitter: 0.0100 IOD (median), 0.26 px at 64 px, 0.51 px at 128 px."
    assert len(lines) == 12


def test_verdict_lines_report_every_configuration_not_the_best_by_test_score(table):
    # grid="full": two sizes and two references; a weak 128 px run and a strong HOG must
    # each get their own line, so no configuration is picked by its test-fold score.
    extra = pd.DataFrame([_row("apex", 1.0, "svm", 0.1, size=128),
                          _row("apex", 1.0, "pixels_lr", 0.2, size=128, m=(-0.1, -0.3, 0.1)),
                          _row("apex", 1.0, "hog_svm", 0.6, size=128, m=(-0.5, -0.7, -0.3))])
    lines = report.verdict_lines(pd.concat([table, extra], ignore_index=True), 0.01, [64, 128])
    ones = [x for x in lines if x.startswith("- apex input, x1,")]
    assert ones == [
        "- apex input, x1, 64 px: the method (SVM head) UF1 0.300 [0.20, 0.40] **trails** pixels_lr UF1 "
        "0.400 [0.30, 0.50]; method minus reference -0.100 [-0.20, -0.05] (paired).",
        "- apex input, x1, 128 px: the method (SVM head) UF1 0.100 [0.00, 0.20] **matches** pixels_lr UF1 "
        "0.200 [0.10, 0.30]; method minus reference -0.100 [-0.30, +0.10] (paired).",
        "- apex input, x1, 128 px: the method (SVM head) UF1 0.100 [0.00, 0.20] **trails** hog_svm UF1 "
        "0.600 [0.50, 0.70]; method minus reference -0.500 [-0.70, -0.30] (paired)."]


def test_verdict_lines_warn_only_below_six_subjects(table):
    lines = report.verdict_lines(table.assign(n_subjects=6), 0.01, [64])
    assert not any("Too few subjects" in line for line in lines)


def test_amplitude_figure_has_four_panels_and_draws_each_reference_once_per_input(table):
    both = pd.concat([table, table.assign(image_size=128)], ignore_index=True)
    fig = report.amplitude_figure(both, 0.01, [64, 128], ["apex", "difference"], SIM)
    try:
        assert isinstance(fig, plt.Figure) and len(fig.axes) == 4
        axes = np.array(fig.axes).reshape(2, 2)
        assert [ax.get_ylabel() for ax in axes[:, 0]] == ["composite UF1", "composite UAR"]
        assert [ax.get_xlabel() for ax in axes[1]] == ["median apex amplitude (IOD)",
                                                       "median apex amplitude (px at the model input)"]
        assert axes[0, 0].get_ylim() == (0, 1.02)
        labels = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
        assert labels.count("pixels_lr [apex]") == 1  # not once per image size
        assert "svm, 64 px [apex]" in labels and "svm, 128 px [difference+grid]" in labels
        assert not any("[difference+grid]" in lab and not lab.startswith("svm,") for lab in labels)
        assert {"majority class", "chance (uniform guess)", "landmark jitter"} <= set(labels)
        assert fig._suptitle.get_text().startswith("SIMULATED DATA")  # stamped
    finally:
        plt.close(fig)


# -- the run loop, end to end on the tiny root ----------------------------------------

@pytest.mark.slow
def test_run_amplitude_study_on_the_tiny_root(synth_root, tmp_path, monkeypatch):
    # A checkout of its own, so the crops and runs go to tmp_path/build.
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "merlib").mkdir()
    monkeypatch.chdir(tmp_path)
    record = amp.synthme_record(synth_root)
    settings = amp.AmplitudeSettings.from_parameters(
        "given", amplitudes=[record["amplitude_scale"]], image_sizes=[64], transfer=[False], inputs=["apex"],
        references=["majority"], micro_epochs=1, workers=1)
    roots = amp.study_roots(tmp_path / "build" / "amplitude", synth_root, record, settings.amplitudes)
    echoed = []
    study = amp.run_amplitude_study(roots, settings, own_root=synth_root, echo=echoed.append)

    a = float(record["amplitude_scale"])
    assert list(study.runs) == [(a, 64, False, "apex")] and list(study.composites) == [a]
    assert study.left_out == {}
    assert echoed == list(study.lines) and len(echoed) == 1
    assert echoed[0].startswith(f"amplitude x{a:g}, 64 px, transfer=False, input=apex: ")
    assert echoed[0].endswith("(0 of 3 folds read back)")
    t = study.table
    assert list(t["classifier"]) == ["svm", "softmax", "majority"]
    assert {"scale", "image_size", "amp_iod", "amp_px", "uf1", "uf1_lo", "uf1_hi", "uar", "n", "d_uf1",
            "beats_majority", "transfer", "input", "chance_uf1"} <= set(t.columns)
    assert (t["scale"] == a).all() and (t["input"] == "apex").all() and not t["transfer"].any()
    assert t["n"].iloc[0] == len(study.composites[a])
    # The run folder is named by the settings (the notebook's cached runs are found again).
    run = study.runs[(a, 64, False, "apex")]
    assert run.out_dir.parent.name == "amplitude" and run.out_dir.name.startswith("loso_64px_scratch_")
    # Run again: every fold read back, the same table.
    again = amp.run_amplitude_study(roots, settings, own_root=synth_root)
    assert again.lines[0].endswith("(3 of 3 folds read back)")
    pd.testing.assert_frame_equal(again.table, t)
