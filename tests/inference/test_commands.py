"""`merlib fit` -> `merlib export --precision auto` -> `merlib predict` on images."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.inference.commands import add_parsers
from merlib.inference.export import MIN_AGREEMENT
from merlib.inference.runtime import bf16_supported
from merlib.training.crops import save_crop_set, synthetic_crop_set


def _run(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="merlib")
    add_parsers(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(list(argv))
    return args.func(args)


def test_fit_export_int8_predict(tmp_path: Path, synth_root: Path, capsys: pytest.CaptureFixture) -> None:
    crops = save_crop_set(synthetic_crop_set(4, 6, 64, seed=3), tmp_path / "crops")
    model, bundle = tmp_path / "model", tmp_path / "bundle"
    assert _run("fit", "--crops", str(crops), "--out", str(model), "--epochs", "1", "--threads", "1") == 0
    meta = json.loads((model / "bundle.json").read_text())
    assert meta["training"]["n_crops"] == 24 and meta["training"]["subjects"] == 4
    assert meta["align"]["crop_size"] == 64 and meta["onnx"] is None
    assert _run("export", "--model", str(model), "--out", str(bundle), "--crops", str(crops),
                "--precision", "auto", "--exporter", "torchscript") == 0
    onnx = json.loads((bundle / "bundle.json").read_text())["onnx"]
    assert onnx["check_images"] == "12 held-out crops"  # the 2 subjects not calibrated on
    # auto: int8 always, bf16 where OpenVINO and the CPU can run it; the first that agrees wins
    assert set(onnx["graphs"]) == {"fp32", "int8"} | ({"bf16"} if bf16_supported() else set())
    assert (bundle / "model.int8.onnx").is_file()
    agreeing = [p for p in ("bf16", "int8") if p in onnx["agreement"]
                and onnx["agreement"][p]["argmax_agree"] >= MIN_AGREEMENT]
    assert onnx["default"] == (agreeing[0] if agreeing else "fp32")
    assert onnx["agreement"]["fp32"]["argmax_agree"] == 1.0
    assert "int8: max |logit diff|" in capsys.readouterr().out
    # A folder of images: one row each; the face-less one kept, marked failed.
    folder = tmp_path / "images"
    folder.mkdir()
    apex = synth_root / "CASME2" / "CASME2_RAW_selected" / "sub17" / "EP05_04" / "img51.jpg"
    (folder / "a_face.jpg").write_bytes(apex.read_bytes())
    cv2.imwrite(str(folder / "b_wall.png"), np.full((120, 160), 90, np.uint8))
    assert _run("predict", "--model", str(bundle), "--input", str(folder), "--out", str(tmp_path / "p.csv"),
                "--precision", "fp32") == 0
    table = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert list(table["status"]) == ["ok", "failed"]
    assert table.loc[0, "label"] in LABELS and table.loc[1, "label"] == ""
    assert table.loc[1, "reason"] == "no face found"
