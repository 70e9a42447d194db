"""``merlib train-macro`` and ``merlib evaluate`` on crop files, smoke profile."""
from __future__ import annotations

import json

import pandas as pd

from merlib.cli import main
from merlib.training.data import save_crop_set
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
    assert main(["evaluate", "--crops", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o"),
                 "--device", "gpu"]) == 2
    assert capsys.readouterr().err.startswith("merlib evaluate: error: device: expected")
    assert main(["train-macro", "--crops", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "path: expected a preprocess folder" in capsys.readouterr().err
