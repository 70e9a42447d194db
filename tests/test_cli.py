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
