"""Macro training: best-epoch files, the exported extractor, the record, resumption."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from merlib.errors import ConfigError
from merlib.models.backbone import conv_state_keys, create_backbone
from merlib.training.transfer import load_transfer, train_macro
from tests.toy import tiny_crops, tiny_train_cfg


@pytest.fixture(scope="module")
def macro():
    return tiny_crops(n_subjects=4, per_subject=6, seed=1)


@pytest.fixture(scope="module")
def straight(macro, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    return train_macro(macro, tiny_train_cfg(epochs=2), out)


def test_files_record_and_extractor(straight, macro):
    out = straight.out_dir
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "feature_extractor.safetensors",
                                                "transfer.json", "curves.csv", "state.pt"}
    record = json.loads((out / "transfer.json").read_text())
    assert record["config"]["epochs"] == 2 and record["epochs_done"] == 2
    assert record["provenance"]["data_fingerprint"] == macro.fingerprint()
    assert record["provenance"]["code_version"].startswith("merlib")
    assert not set(record["val_subjects"]) & set(record["train_subjects"])
    assert list(straight.curves["epoch"]) == [1, 2]
    best = straight.curves["val_acc"].idxmax()
    assert straight.best_epoch == int(straight.curves["epoch"][best])
    extractor = load_file(out / "feature_extractor.safetensors")
    assert sorted(extractor) == sorted(conv_state_keys(create_backbone("mobilevit_xxs")))
    full = load_file(out / "model.safetensors")
    assert all(torch.equal(full[k], v) for k, v in extractor.items())
    assert load_transfer(out).best_epoch == straight.best_epoch
    # The resume state loads without unpickling arbitrary objects.
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["epoch"] == 2


def test_resume_continues_from_the_saved_epoch(straight, macro, tmp_path):
    first = train_macro(macro, tiny_train_cfg(epochs=1), tmp_path)
    assert len(first.curves) == 1
    resumed = train_macro(macro, tiny_train_cfg(epochs=2), tmp_path)
    assert list(resumed.curves["epoch"]) == [1, 2]
    # Continuing from the checkpoint reproduces the uninterrupted run exactly.
    assert resumed.curves.drop(columns="seconds").equals(straight.curves.drop(columns="seconds"))
    a = torch.load(tmp_path / "state.pt", weights_only=True)["model"]
    b = torch.load(straight.out_dir / "state.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_other_settings(macro, tmp_path):
    train_macro(macro, tiny_train_cfg(epochs=1), tmp_path)
    with pytest.raises(ConfigError, match=r"cfg: .*state.pt was trained with lr=0.01, this call has lr=0.1"):
        train_macro(macro, tiny_train_cfg(epochs=2, lr=0.1), tmp_path)
    restarted = train_macro(macro, tiny_train_cfg(epochs=1, lr=0.1), tmp_path, resume=False)
    assert restarted.record["config"]["lr"] == 0.1
