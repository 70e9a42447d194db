"""Bad arguments and unusable output paths: one line naming the culprit, exit code 2,
before any work starts, never a traceback (issue 7, section 3)."""
from __future__ import annotations

import os
import warnings

import pytest

from merlib.cli import SEED_MAX, WORKERS_HELP, available_cores, build_parser, main
from merlib.errors import MerlibWarning

#: Arguments every command needs to get past argparse (the paths need not exist: argument
#: values are judged before any of them is read).
BASE: dict[str, list[str]] = {
    "index": ["--data-root", "nowhere", "--out", "x.csv"],
    "composite": ["--data-root", "nowhere", "--out", "x.csv"],
    "synth": ["--out", "root"],
    "preprocess": ["--data-root", "nowhere", "--out", "crops"],
    "train-macro": ["--crops", "nowhere.npz", "--out", "transfer"],
    "evaluate": ["--crops", "nowhere.npz", "--out", "loso"],
    "score": ["nowhere.csv", "--out", "scores.csv"],
}


@pytest.mark.parametrize("command, extra, message", [
    ("preprocess", ["--seed", "-1"], f"argument --seed: expected an integer in 0..{SEED_MAX}, got -1"),
    ("train-macro", ["--seed", "-1"], f"argument --seed: expected an integer in 0..{SEED_MAX}, got -1"),
    ("evaluate", ["--seed", "-1"], f"argument --seed: expected an integer in 0..{SEED_MAX}, got -1"),
    ("synth", ["--seed", "-1"], f"argument --seed: expected an integer in 0..{SEED_MAX}, got -1"),
    ("train-macro", ["--seed", str(SEED_MAX + 1)],
     f"argument --seed: expected an integer in 0..{SEED_MAX}, got {SEED_MAX + 1}"),
    ("evaluate", ["--seed", "1.5"], "argument --seed: expected an integer, got '1.5'"),
    ("preprocess", ["--workers", "0"], "argument --workers: expected an integer >= 1, got 0"),
    ("evaluate", ["--workers", "0"], "argument --workers: expected an integer >= 1, got 0"),
    ("synth", ["--workers", "-3"], "argument --workers: expected an integer >= 1, got -3"),
    ("train-macro", ["--threads", "0"], "argument --threads: expected an integer >= 1, got 0"),
    ("evaluate", ["--threads", "-2"], "argument --threads: expected an integer >= 1, got -2"),
    ("train-macro", ["--epochs", "0"], "argument --epochs: expected an integer >= 1, got 0"),
    ("preprocess", ["--crop-size", "4"], "argument --crop-size: expected >= 8, got 4"),
    ("preprocess", ["--mask-dilation", "-1"], "argument --mask-dilation: expected >= 0, got -1.0"),
    ("preprocess", ["--mask-dilation", "inf"], "argument --mask-dilation: expected a finite number, got 'inf'"),
    ("preprocess", ["--upsample", "9"], "argument --upsample: expected in 0..4, got 9"),
    ("synth", ["--micro-subjects", "0"], "argument --micro-subjects: must be an integer in 3..68; got 0"),
    ("synth", ["--amplitude-scale", "nan"], "argument --amplitude-scale: expected a finite number, got 'nan'"),
    ("evaluate", ["--device", "gpu"], "argument --device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ("evaluate", ["--leaky", "--no-search"], "argument --no-search: not allowed with argument --leaky"),
    ("score", ["--resamples", "0"], "argument --resamples: expected an integer >= 1, got 0"),
    ("score", ["--seed", "-1"], f"argument --seed: expected an integer in 0..{SEED_MAX}, got -1"),
    ("score", ["--labels", "mine"], "argument --labels: invalid choice: 'mine' (choose from 'composite', 'file')"),
    ("score", ["--label-map", "0"], "argument --label-map: '0' is not code=class; expected e.g. "
                                    "0=negative,1=positive,2=surprise"),
])
def test_bad_argument_is_a_usage_error_naming_it(command, extra, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main([command, *BASE[command], *extra])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"merlib {command}: error: {message}"
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # judged before any work


@pytest.mark.parametrize("command", sorted(BASE))
def test_out_under_a_regular_file_is_one_line_before_any_work(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    args = [*BASE[command]]
    out = args.index("--out") + 1
    args[out] = f"afile/sub/{args[out]}"
    assert main([command, *args]) == 2
    err = capsys.readouterr().err
    assert err == (f"merlib {command}: error: --out: cannot create afile/sub/{BASE[command][out]}: "
                   "afile is a file, not a folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_out_that_is_a_file_where_a_folder_is_wanted(tmp_path, capsys):
    (tmp_path / "crops").write_text("a file")
    assert main(["preprocess", "--data-root", str(tmp_path), "--out", str(tmp_path / "crops")]) == 2
    assert capsys.readouterr().err == f"merlib preprocess: error: --out: {tmp_path / 'crops'} is a file, not a folder\n"


def test_out_that_is_a_folder_where_a_file_is_wanted(tmp_path, capsys):
    (tmp_path / "x.csv").mkdir()
    assert main(["index", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    assert capsys.readouterr().err.startswith(f"merlib index: error: --out: {tmp_path / 'x.csv'} is a folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into a read-only folder anyway")
def test_read_only_out_folder_is_found_before_any_work(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["train-macro", "--crops", str(tmp_path / "none.npz"), "--out", str(locked / "t")]) == 2
    finally:
        locked.chmod(0o755)
    assert capsys.readouterr().err == (f"merlib train-macro: error: --out: cannot write to {locked} "
                                       "(Permission denied); choose a writable folder\n")


def test_unwritable_out_folder_names_it(tmp_path, monkeypatch, capsys):
    # Stands in for a read-only mount (tests may run as root, who writes through chmod 555):
    # the probe's write fails the way the kernel reports a read-only file system.
    import merlib.cli

    def refuse(**kwargs):
        raise OSError(30, "Read-only file system", kwargs["dir"])

    monkeypatch.setattr(merlib.cli.tempfile, "mkstemp", refuse)
    assert main(["evaluate", "--crops", str(tmp_path / "none.npz"), "--out", str(tmp_path / "loso")]) == 2
    assert capsys.readouterr().err == (f"merlib evaluate: error: --out: cannot write to {tmp_path} "
                                       "(Read-only file system); choose a writable folder\n")
    assert not (tmp_path / "loso").exists()


def test_os_and_value_errors_from_a_command_are_one_line(tmp_path, monkeypatch, capsys):
    import merlib.cli

    def broken(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "manifest.csv"))

    parser = build_parser()
    monkeypatch.setattr(merlib.cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["index"].set_defaults(func=broken)
    assert main(["index", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    assert capsys.readouterr().err == (f"merlib index: error: {tmp_path / 'manifest.csv'}: "
                                       "Permission denied\n")
    # A bug (any other exception) keeps its traceback.
    parser._subparsers._group_actions[0].choices["index"].set_defaults(func=lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["index", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.csv")])
    # MERLIB_TRACEBACK=1 shows the traceback of a handled error too.
    parser._subparsers._group_actions[0].choices["index"].set_defaults(func=broken)
    monkeypatch.setenv("MERLIB_TRACEBACK", "1")
    with pytest.raises(PermissionError):
        main(["index", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.csv")])


def test_merlib_warnings_print_as_one_line(tmp_path, monkeypatch, capsys):
    import merlib.cli

    def warns(args):
        warnings.warn("numbers can differ", MerlibWarning, stacklevel=2)
        return 0

    parser = build_parser()
    monkeypatch.setattr(merlib.cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["index"].set_defaults(func=warns)
    assert main(["index", "--data-root", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 0
    assert capsys.readouterr().err == "merlib index: warning: numbers can differ\n"


def test_workers_beyond_the_cores_are_capped_and_said(tmp_path, monkeypatch, capsys):
    import merlib.cli

    seen = {}

    def fake_generate(out, cfg, progress, workers):
        seen["workers"] = workers
        return out

    monkeypatch.setattr("merlib.synth.generate", fake_generate)
    assert main(["synth", "--out", str(tmp_path / "root"), "--workers", "999", "--quiet"]) == 0
    cores = available_cores()
    assert seen["workers"] == cores
    assert f"merlib synth: note: --workers 999 capped at {cores}, the cores available" in capsys.readouterr().err
    assert "capped at" in WORKERS_HELP
    help_text = merlib.cli.build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "cores available are capped" in " ".join(help_text.split())


def test_synth_realism_preset_and_single_overrides(tmp_path, monkeypatch):
    from merlib.synth import REALISM_PRESETS, SynthConfig

    seen = []
    monkeypatch.setattr("merlib.synth.generate", lambda out, cfg, progress, workers: seen.append(cfg) or out)
    out = str(tmp_path / "root")
    assert main(["synth", "--out", out, "--quiet"]) == 0
    assert main(["synth", "--out", out, "--quiet", "--realism", "none"]) == 0
    assert main(["synth", "--out", out, "--quiet", "--flicker", "0", "--appearance", "none"]) == 0
    calibrated, plain, overridden = seen
    assert calibrated == SynthConfig.preset("realistic") and calibrated.appearance == "facs"
    assert plain == SynthConfig()  # the warp-only generator
    assert overridden.flicker == 0.0 and overridden.appearance == "none"
    assert overridden.weak_fraction == REALISM_PRESETS["realistic"]["weak_fraction"]
    with pytest.raises(SystemExit):
        main(["synth", "--out", out, "--realism", "real"])


def test_synth_writes_its_generation_time_beside_the_root(tmp_path, monkeypatch, capsys):
    from merlib.data.simulated import read_timing, timing_path

    out = tmp_path / "root"
    monkeypatch.setattr("merlib.synth.generate", lambda out, cfg, progress, workers: out)
    assert main(["synth", "--out", str(out), "--quiet", "--realism", "none"]) == 0
    note = read_timing(out)
    assert timing_path(out) == tmp_path / "root.timing.json" and note["root"] == str(out)
    assert 0 <= note["seconds"] < 60 and "CPU" in note["machine"]
    assert "simulated dataset ->" in capsys.readouterr().out
    timing_path(out).write_text("{")
    assert read_timing(out) is None


def test_the_realistic_preset_is_the_setting_of_the_record_it_names():
    import json
    from pathlib import Path

    from merlib.synth import AMPLITUDE_FIELDS, REALISM_FIELDS, REALISTIC_RECORD, SynthConfig

    record = Path(__file__).resolve().parents[1] / "bench" / "records" / REALISTIC_RECORD
    generator = json.loads(record.read_text())["generator"]
    preset = SynthConfig.preset("realistic")
    for name in (*REALISM_FIELDS, *AMPLITUDE_FIELDS):
        want = generator[name]
        assert getattr(preset, name) == (tuple(want) if isinstance(want, list) else want), name
