"""The ``merlib index`` command (``composite`` is tested in tests/data/test_composite.py)."""
from __future__ import annotations

import pandas as pd
import pytest

from merlib.cli import main
from merlib.data.schema import COLUMNS
from tests.data.conftest import build_all


def test_index_writes_manifest(tmp_path, capsys):
    root = build_all(tmp_path / "data")
    out = tmp_path / "out" / "index.csv"
    assert main(["index", "--data-root", str(root), "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(table.columns) == list(COLUMNS)
    assert table["dataset"].value_counts().to_dict() == {
        "casme2": 4, "smic": 5, "ckplus": 4, "oulu": 4, "jaffe": 4, "samm": 3, "mug": 5}  # 2 in sessions
    printed = capsys.readouterr().out
    assert f"29 samples -> {out}" in printed


def test_index_subset(tmp_path):
    root = build_all(tmp_path / "data")
    out = tmp_path / "index.csv"
    assert main(["index", "--data-root", str(root), "--out", str(out),
                 "--datasets", "jaffe,mug"]) == 0
    assert set(pd.read_csv(out)["dataset"]) == {"jaffe", "mug"}


def test_wrong_data_root_is_exit_code_2_naming_expected_folder(tmp_path, capsys):
    root = build_all(tmp_path / "data")
    code = main(["index", "--data-root", str(root / "SAMM"), "--out", str(tmp_path / "x.csv"),
                 "--datasets", "samm"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("merlib index: error:") and "expected folder SAMM/" in err
    assert main(["index", "--data-root", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_composite_allow_missing_writes_missing_report(tmp_path, capsys):
    root = build_all(tmp_path / "data")
    out = tmp_path / "composite.csv"
    assert main(["composite", "--data-root", str(root), "--out", str(out)]) == 2
    assert "MEGC2019 composite samples not on disk" in capsys.readouterr().err
    assert main(["composite", "--data-root", str(root), "--out", str(out),
                 "--allow-missing"]) == 0
    found = pd.read_csv(out, dtype=str)
    missing = pd.read_csv(tmp_path / "composite.missing.csv", dtype=str)
    assert sorted(found["sample"]) == ["006_1_2", "011_2_7", "EP02_01f", "s01_ne_02", "s01_po_01", "s11_sur_01"]
    assert len(found) + len(missing) == 442


def test_evaluate_resumes_by_default_and_no_resume_recomputes(monkeypatch, tmp_path):
    """`merlib evaluate` passes resume=True unless --no-resume is given."""
    import merlib.evaluation as evaluation
    import merlib.cli as cli
    from merlib.training.crops import save_crop_set, synthetic_crop_set

    npz = save_crop_set(synthetic_crop_set(3, 3, size=32), tmp_path / "crops")
    seen = []

    class Stop(Exception):
        pass

    def fake(*args, **kwargs):
        seen.append(kwargs["resume"])
        raise Stop

    monkeypatch.setattr(evaluation, "evaluate_loso", fake)
    for extra, expected in (([], True), (["--no-resume"], False)):
        argv = ["evaluate", "--crops", str(npz), "--out", str(tmp_path / "out"), "--no-search",
                "--workers", "1", *extra]
        with pytest.raises(Stop):
            cli.main(argv)
        assert seen[-1] is expected


# --------------------------------------------------------------------------- merlib score

def _log_csv(path, name="ststnet", *, codes=False, keep=None):
    from merlib.data.published_logs import load_published_log

    log = load_published_log(name)[["dataset", "subject", "sample", "pred", "label"]]
    if keep is not None:
        log = log[log["dataset"].isin(keep)]
    if codes:
        to_code = {"negative": 0, "positive": 1, "surprise": 2}
        log = log.assign(pred=log["pred"].map(to_code), label=log["label"].map(to_code))
    log.to_csv(path, index=False)
    return log


def test_score_prints_each_part_with_intervals_and_reports_what_it_did_not_score(tmp_path, capsys):
    from merlib.scores import scores

    path = tmp_path / "preds.csv"
    log = _log_csv(path, keep=["casme2"])
    with path.open("a") as fh:
        fh.write("smic,s07,s07_po_01,positive,positive\n")  # a subject the composite does not have
    out = tmp_path / "res" / "scores.csv"
    assert main(["score", str(path), "--resamples", "200", "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    expected = scores(log["label"], log["pred"])
    assert f"{path}: 146 rows, 145 scored on the MEGC2019 composite with the composite's labels" in captured.out
    composite_line = next(ln for ln in captured.out.splitlines() if ln.strip().startswith("composite"))
    assert f"{expected['uf1']:.4f} [" in composite_line and f"{expected['uar']:.4f} [" in composite_line
    assert "merlib score: warning: preds.csv: 1 row: dataset/subject not in the composite list" in captured.err
    assert "merlib score: warning: preds.csv: 297 samples: composite sample not in the file" in captured.err
    written = pd.read_csv(out)
    assert written["part"].tolist() == ["composite", "casme2"] and written["n"].tolist() == [145, 145]
    assert written.loc[0, "uf1"] == pytest.approx(expected["uf1"])
    issues = pd.read_csv(tmp_path / "res" / "scores.issues.csv")
    assert issues["kind"].value_counts().to_dict() == {"absent": 297, "unknown_subject": 1}
    assert not (tmp_path / "res" / "scores.paired.csv").exists()


def test_score_against_another_file_with_a_label_map(tmp_path, capsys):
    _log_csv(tmp_path / "ststnet.csv")
    _log_csv(tmp_path / "capsulenet.csv", "capsulenet", codes=True)
    out = tmp_path / "s.csv"
    argv = ["score", str(tmp_path / "capsulenet.csv"), "--label-map", "0=negative,1=positive,2=surprise",
            "--labels", "file", "--against", str(tmp_path / "ststnet.csv"), "--resamples", "200", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    composite_line = next(ln for ln in captured.out.splitlines() if ln.strip().startswith("composite"))
    assert "0.6520 [" in composite_line and "0.6506 [" in composite_line  # CapsuleNet's published numbers
    assert "paired: capsulenet.csv minus ststnet.csv on the 435 composite samples both predict" in captured.out
    assert "7 sample(s) scored only in ststnet.csv" in captured.out
    paired = pd.read_csv(tmp_path / "s.paired.csv").set_index("part")
    assert paired.loc["composite", "n"] == 435
    assert paired.loc["composite", "d_uf1"] == pytest.approx(0.6554 - 0.7432, abs=1e-4)
    assert "s18_sur_03" in captured.err and "scored with the file's" in captured.err


@pytest.mark.parametrize("text, message", [
    ("dataset,subject,sample\nsmic,s01,s01_ne_01\n",
     "line 1: the header ['dataset', 'subject', 'sample'] lacks ['pred']"),
    ("dataset,subject,sample,pred\nsmic,s01,s01_ne_01,1\n", "line 2: pred '1' is an integer code"),
    ("dataset,subject,sample,pred\nsmic,s01,s01_ne_01,negative,extra\n", "line 2: 5 fields where the header has 4"),
])
def test_score_malformed_file_is_one_line_naming_file_and_line(tmp_path, capsys, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"merlib score: error: {path}: {message}") and len(err.strip().splitlines()) == 1


def test_score_bad_label_map_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["score", str(tmp_path / "x.csv"), "--label-map", "0=happy"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "merlib score: error: argument --label-map: 0=happy: 'happy' is not one of negative, positive, surprise")


# --------------------------------------------------------------------------- common flags

def _subcommands():
    from merlib.cli import build_parser

    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return parser, action.choices


def test_every_command_accepts_the_common_flags():
    from merlib.cli import common_flags

    parser, commands = _subcommands()
    assert {"index", "composite", "synth", "preprocess", "faces", "train-macro", "evaluate", "score", "fit",
            "export", "predict"} <= set(commands)
    flags = [s for a in common_flags()._actions for s in a.option_strings]
    assert "--quiet" in flags
    for name, sub in commands.items():
        for flag in flags:
            assert flag in sub._option_string_actions, f"merlib {name} refuses {flag}"
    # The three inference commands refused --quiet before (issue 23).
    for argv in (["fit", "--crops", "c", "--out", "m"], ["export", "--model", "m", "--out", "b"],
                 ["predict", "--model", "b", "--input", "x.jpg", "--out", "p.csv"]):
        assert parser.parse_args([*argv, "--quiet"]).quiet is True
        assert parser.parse_args(argv).quiet is False


def test_synth_flags_override_single_fields_of_the_preset():
    from merlib.cli import build_parser, synth_config_from
    from merlib.synth import REALISM_FIELDS, REALISM_PRESETS, SynthConfig

    args = build_parser().parse_args(["synth", "--out", "x", "--au-style", "12", "--head-motion", "0.01"])
    cfg = synth_config_from(args, seed=3)
    realistic = SynthConfig.preset("realistic", seed=3)
    assert (cfg.au_style_deg, cfg.head_motion_iod, cfg.seed) == (12.0, 0.01, 3)
    # every other field keeps the preset's value
    for name in set(REALISM_FIELDS) - {"au_style_deg", "head_motion_iod"}:
        assert getattr(cfg, name) == getattr(realistic, name), name
    assert set(REALISM_PRESETS) == {"realistic", "none"}
    plain = synth_config_from(build_parser().parse_args(["synth", "--out", "x", "--realism", "none"]))
    assert plain == SynthConfig()
