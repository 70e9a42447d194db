"""Macro training: best-epoch files, the exported extractor, the record, resumption."""
from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file

from merlib.errors import BrokenFileError, ConfigError, DataLayoutError, MerlibWarning
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
    # The input side the weights were trained at is always recorded (evaluation checks it).
    assert record["config"]["image_size"] == 64 and straight.image_size == 64
    assert straight.arch == "mobilevit_xxs"
    assert [{k: s[k] for k in ("first_epoch", "last_epoch", "device", "num_threads")}
            for s in record["segments"]] == [
        {"first_epoch": 1, "last_epoch": 2, "device": "cpu", "num_threads": 1}]
    assert record["mixed_settings"] is False and record["notes"] == []
    # Every file went through a uniquely named temporary file, renamed into place.
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
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


def test_resume_with_fewer_epochs_is_refused(straight, macro, tmp_path):
    # Before: the 2-epoch run came back while the record said epochs=1.
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    with pytest.raises(ConfigError, match=r"^epochs: .*state.pt already holds 2 finished epochs, this call "
                                          r"asks for epochs=1; ask for at least 2 to resume, or start "
                                          r"again with --no-resume"):
        train_macro(macro, tiny_train_cfg(epochs=1), tmp_path)
    # The same count is a finished run: nothing trains, the record is the same run.
    again = train_macro(macro, tiny_train_cfg(epochs=2), tmp_path)
    assert again.curves.drop(columns="seconds").equals(straight.curves.drop(columns="seconds"))
    assert again.record["epochs_done"] == 2 and again.record["mixed_settings"] is False


def test_resume_on_another_thread_count_warns_and_records(macro, tmp_path):
    train_macro(macro, tiny_train_cfg(epochs=1, num_threads=2), tmp_path)
    with pytest.warns(MerlibWarning, match=r"resuming .*state.pt with num_threads=1 \(epochs 1-1 ran with "
                                           r"device=cpu, num_threads=2, torch=.*\): its numbers can differ "
                                           r"from an uninterrupted run"):
        res = train_macro(macro, tiny_train_cfg(epochs=2, num_threads=1), tmp_path)
    rec = json.loads((tmp_path / "transfer.json").read_text())
    assert rec == res.record and rec["mixed_settings"] is True and len(rec["notes"]) == 1
    assert [(s["first_epoch"], s["last_epoch"], s["num_threads"]) for s in rec["segments"]] == [(1, 1, 2), (2, 2, 1)]
    # Rerunning the finished run trains nothing, so it neither warns again nor adds a segment.
    with warnings.catch_warnings():
        warnings.simplefilter("error", MerlibWarning)
        again = train_macro(macro, tiny_train_cfg(epochs=2, num_threads=2), tmp_path)
    assert again.record["segments"] == rec["segments"] and again.record["mixed_settings"] is True


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:1000], r"not a readable merlib training state \(PytorchStreamReader failed"),
    (lambda b: b"garbage\n", r"not a readable merlib training state \(not a torch file of plain tensors\)"),
])
def test_broken_state_names_the_file_and_the_way_out(straight, macro, tmp_path, damage, message):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    state = tmp_path / "state.pt"
    state.write_bytes(damage(state.read_bytes()))
    with pytest.raises(BrokenFileError, match=rf"^{tmp_path / 'state.pt'}: {message}.*; start again with "
                                              r"--no-resume \(resume=False\) or use another --out$"):
        train_macro(macro, tiny_train_cfg(epochs=3), tmp_path)
    # The way out works: starting again overwrites the broken state.
    assert train_macro(macro, tiny_train_cfg(epochs=1), tmp_path, resume=False).record["epochs_done"] == 1


def test_state_of_another_kind_is_refused(straight, macro, tmp_path):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    torch.save({"epoch": 1}, tmp_path / "state.pt")
    with pytest.raises(BrokenFileError, match=r"state.pt: not a merlib training state \(missing \['best_acc'"):
        train_macro(macro, tiny_train_cfg(epochs=3), tmp_path)


def test_cut_short_weights_in_a_resumed_folder_are_named(straight, macro, tmp_path):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    model = tmp_path / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(BrokenFileError, match=rf"^{model}: not a readable safetensors file \(.*\); the run in "
                                              rf"{tmp_path} cannot be resumed; start again with --no-resume"):
        train_macro(macro, tiny_train_cfg(epochs=3), tmp_path)


@pytest.mark.parametrize("name, damage, error, message", [
    ("feature_extractor.safetensors", lambda b: b[:len(b) // 2], BrokenFileError,
     r"feature_extractor.safetensors: not a readable safetensors file \(.*incomplete metadata"),
    ("model.safetensors", lambda b: bytes(range(256)) * 4, BrokenFileError,
     r"model.safetensors: not a readable safetensors file"),
    ("transfer.json", lambda b: b"{not json", BrokenFileError, r"transfer.json: not a JSON record"),
    ("transfer.json", lambda b: b'{"best_epoch": 1}', BrokenFileError,
     r"transfer.json: not a merlib transfer record \(missing \['best_val_acc', 'config', 'files'\]\)"),
    ("curves.csv", None, DataLayoutError, r"curves.csv: missing"),
])
def test_load_transfer_names_the_broken_file(straight, tmp_path, name, damage, error, message):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    if damage is None:
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_bytes(damage((tmp_path / name).read_bytes()))
    with pytest.raises(error, match=rf"^{tmp_path}/{message}.*rerun `merlib train-macro --out {tmp_path}`$"):
        load_transfer(tmp_path)


def test_load_transfer_needs_arch_and_image_size_only(straight, tmp_path):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    rec = json.loads((tmp_path / "transfer.json").read_text())
    rec["config"]["renamed_in_a_later_version"] = rec["config"].pop("lr")
    (tmp_path / "transfer.json").write_text(json.dumps(rec))
    assert load_transfer(tmp_path).image_size == 64  # an older record still loads
    del rec["config"]["image_size"]
    (tmp_path / "transfer.json").write_text(json.dumps(rec))
    with pytest.raises(BrokenFileError, match=r"transfer.json: its config lacks a valid arch and image_size "
                                              r"\(got arch='mobilevit_xxs', image_size=None\)"):
        load_transfer(tmp_path)


def test_resume_names_a_setting_of_another_version(straight, macro, tmp_path):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    state["config"]["balanced"] = True  # a setting an earlier merlib had
    torch.save(state, tmp_path / "state.pt")
    with pytest.raises(ConfigError, match=r"was trained with balanced=True, this call has no setting balanced "
                                          r"\(another merlib version\)"):
        train_macro(macro, tiny_train_cfg(epochs=3), tmp_path)


def test_load_transfer_refuses_weights_of_another_image_size(straight, tmp_path):
    shutil.copytree(straight.out_dir, tmp_path, dirs_exist_ok=True)
    rec = json.loads((tmp_path / "transfer.json").read_text())
    rec["config"]["image_size"] = 128
    (tmp_path / "transfer.json").write_text(json.dumps(rec))
    with pytest.raises(BrokenFileError, match=r"model.safetensors: written for \{'arch': 'mobilevit_xxs', "
                                              r"'image_size': '64'\}, but .*transfer.json says "
                                              r"arch='mobilevit_xxs', image_size=128"):
        load_transfer(tmp_path)


def test_validation_uses_batchnorm_statistics_of_the_current_weights(tmp_path):
    """Stale BatchNorm running averages put eval-mode validation near chance early on
    (0.33 at epochs 1-2 and best 0.625 here before recalibration, 0.79 after)."""
    from merlib.config import Profile
    from merlib.training.crops import synthetic_crop_set

    crops = synthetic_crop_set(10, 12, size=64, seed=1)
    cfg = Profile.smoke().macro.replace(epochs=3, batch_size=8, num_threads=1, lr=0.01)
    res = train_macro(crops, cfg, tmp_path / "t")
    assert res.best_val_acc >= 0.75
    # The saved best epoch carries those statistics: reloaded, it scores what was recorded.
    from merlib.evaluation.splits import holdout_subjects
    from merlib.models.backbone import input_normalisation
    from merlib.training.batches import CropDataset
    from merlib.training.engine import predict

    _, val_idx = holdout_subjects(crops.groups, cfg.val_fraction, seed=cfg.seed)
    model = create_backbone(cfg.arch, image_size=cfg.image_size, drop_rate=cfg.drop_rate)
    model.load_state_dict(load_transfer(tmp_path / "t").model_state())
    mean, std = input_normalisation(model)
    val = crops.subset(val_idx)
    _, proba = predict(model, CropDataset(val.X, val.y, image_size=cfg.image_size, mean=mean, std=std),
                       torch.device("cpu"))
    assert (proba.argmax(1) == val.y).mean() == pytest.approx(res.best_val_acc)
