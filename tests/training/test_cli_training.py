"""``merlib train-macro`` and ``merlib evaluate`` on crop files, smoke profile."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from merlib.cli import main
from merlib.training.crops import save_crop_set
from tests.toy import tiny_crops


def test_train_macro_then_evaluate_with_transfer(tmp_path, capsys):
    macro = save_crop_set(tiny_crops(n_subjects=4, per_subject=6, seed=1), tmp_path / "macro")
    micro = save_crop_set(tiny_crops(n_subjects=3, per_subject=6, seed=2), tmp_path / "micro")
    assert main(["train-macro", "--crops", str(macro), "--out", str(tmp_path / "transfer"),
                 "--profile", "smoke", "--epochs", "1", "--quiet"]) == 0
    assert "best epoch 1" in capsys.readouterr().out
    assert main(["evaluate", "--crops", str(micro), "--out", str(tmp_path / "loso"), "--profile", "smoke",
                 "--transfer", str(tmp_path / "transfer"), "--no-search", "--workers", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "3 LOSO folds" in printed and "composite" in printed
    record = json.loads((tmp_path / "loso" / "run.json").read_text())
    assert record["transfer"]["out_dir"].endswith("transfer") and record["config"]["arch"] == "mobilevit_xxs"
    assert len(pd.read_csv(tmp_path / "loso" / "predictions.csv")) == 18


def test_cli_errors_are_one_line(tmp_path, capsys):
    # A bad device is a usage error, found by argparse before anything is read.
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--crops", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o"), "--device", "gpu"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "merlib evaluate: error: argument --device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'")
    assert main(["train-macro", "--crops", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "path: expected a preprocess folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def macro_npz(tmp_path_factory):
    return save_crop_set(tiny_crops(n_subjects=4, per_subject=6, seed=1), tmp_path_factory.mktemp("m") / "macro")


@pytest.fixture(scope="module")
def two_epochs(macro_npz, tmp_path_factory):
    """A finished 2-epoch smoke run (the CLI's own settings, so the CLI can resume it)."""
    out = tmp_path_factory.mktemp("two") / "transfer"
    assert main(["train-macro", "--crops", str(macro_npz), "--out", str(out), "--epochs", "2", "--quiet"]) == 0
    return out


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"merlib {command}: error: ")
    return err.removeprefix(f"merlib {command}: error: ").rstrip("\n")


def test_train_macro_resume_with_fewer_epochs_is_an_error(two_epochs, macro_npz, tmp_path, capsys):
    out = tmp_path / "t"
    shutil.copytree(two_epochs, out)
    capsys.readouterr()
    # Before: exit 0 with the 2-epoch weights and a record saying epochs=1.
    assert main(["train-macro", "--crops", str(macro_npz), "--out", str(out), "--epochs", "1", "--quiet"]) == 2
    assert _one_line_error(capsys, "train-macro") == (
        f"epochs: {out / 'state.pt'} already holds 2 finished epochs, this call asks for epochs=1; ask for "
        "at least 2 to resume, or start again with --no-resume (resume=False) or use another --out")
    assert json.loads((out / "transfer.json").read_text())["config"]["epochs"] == 2


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_train_macro_broken_state_names_it_and_no_resume_recovers(two_epochs, macro_npz, tmp_path, capsys,
                                                                    damage):
    out = tmp_path / "t"
    shutil.copytree(two_epochs, out)
    state = out / "state.pt"
    state.write_bytes(state.read_bytes()[:5000] if damage == "cut" else b"\x00garbage" * 10)
    capsys.readouterr()
    args = ["train-macro", "--crops", str(macro_npz), "--out", str(out), "--epochs", "3", "--quiet"]
    assert main(args) == 2
    msg = _one_line_error(capsys, "train-macro")
    assert msg.startswith(f"{state}: not a readable merlib training state (")
    assert msg.endswith("start again with --no-resume (resume=False) or use another --out")
    assert main([*args[:-3], "--epochs", "1", "--no-resume", "--quiet"]) == 0


def test_train_macro_resume_with_other_threads_warns_in_one_line(two_epochs, macro_npz, tmp_path, capsys):
    out = tmp_path / "t"
    shutil.copytree(two_epochs, out)
    capsys.readouterr()
    assert main(["train-macro", "--crops", str(macro_npz), "--out", str(out), "--epochs", "3",
                 "--threads", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    # The smoke profile trains on one thread; the resumed epoch asks for two.
    assert err.startswith(f"merlib train-macro: warning: resuming {out / 'state.pt'} with num_threads=2 "
                          "(epochs 1-2 ran with device=cpu, num_threads=1, torch=")
    assert "its numbers can differ from an uninterrupted run" in err and err.count("\n") == 1
    rec = json.loads((out / "transfer.json").read_text())
    assert rec["mixed_settings"] is True and [s["num_threads"] for s in rec["segments"]] == [1, 2]


@pytest.mark.parametrize("name, expected", [
    ("feature_extractor.safetensors", "not a readable safetensors file (Error while deserializing header"),
    ("transfer.json", "not a JSON record ("),
])
def test_evaluate_broken_transfer_names_the_file_before_any_work(two_epochs, tmp_path, capsys, name, expected):
    transfer = tmp_path / "transfer"
    shutil.copytree(two_epochs, transfer)
    (transfer / name).write_bytes((transfer / name).read_bytes()[:300])
    micro = save_crop_set(tiny_crops(n_subjects=3, per_subject=6, seed=2), tmp_path / "micro")
    capsys.readouterr()
    assert main(["evaluate", "--crops", str(micro), "--out", str(tmp_path / "loso"), "--transfer", str(transfer),
                 "--no-search", "--workers", "1", "--quiet"]) == 2
    msg = _one_line_error(capsys, "evaluate")
    assert msg.startswith(f"{transfer / name}: {expected}") and msg.endswith(f"rerun `merlib train-macro --out {transfer}`")
    assert not (tmp_path / "loso").exists()


@pytest.mark.parametrize("content, reason", [
    (b"junk", "not an npz archive: cut short, or another kind of file"),
    (b"", "not an npz archive: cut short, or another kind of file"),
    ("cut", "not an npz archive: cut short, or another kind of file"),
])
def test_crops_that_are_not_an_npz_name_the_file(macro_npz, tmp_path, capsys, content, reason):
    bad = tmp_path / "crops.npz"
    bad.write_bytes(macro_npz.read_bytes()[:200] if content == "cut" else content)
    shutil.copy(macro_npz.with_suffix(".csv"), bad.with_suffix(".csv"))
    # Before: a ValueError about pickled data, a BadZipFile or an EOFError traceback.
    assert main(["train-macro", "--crops", str(bad), "--out", str(tmp_path / "t"), "--quiet"]) == 2
    assert _one_line_error(capsys, "train-macro") == (
        f"--crops: {bad} cannot be read as a crop set ({reason}); expected a `merlib preprocess` folder "
        "or a crops.npz written by merlib")


@pytest.mark.parametrize("manifest, reason", [
    (b"a,b\n1,2\n", "its table lacks the column 'status'"),
    (bytes(range(128, 256)) * 8, "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x80"),
])
def test_crops_folder_with_a_foreign_manifest_names_it(tmp_path, capsys, manifest, reason):
    folder = tmp_path / "crops"
    folder.mkdir()
    (folder / "manifest.csv").write_bytes(manifest)
    # Before: a KeyError or UnicodeDecodeError traceback.
    assert main(["train-macro", "--crops", str(folder), "--out", str(tmp_path / "t"), "--quiet"]) == 2
    msg = _one_line_error(capsys, "train-macro")
    assert msg.startswith(f"--crops: {folder} cannot be read as a crop set ({reason}")
