"""Shared run definitions: settings of each study, folder names, reuse from disk, inner curves."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from merlib.config import FinetuneConfig, Profile, SearchConfig, TrainConfig
from merlib.errors import ConfigError, DataLayoutError
from merlib.evaluation import variants as S
from merlib.training.crops import synthetic_crop_set


@pytest.fixture(scope="module")
def profile() -> Profile:
    net = dict(arch="mobilevit_xxs", image_size=32, batch_size=8, num_threads=1)
    return Profile("tiny", TrainConfig(**net, epochs=1),
                   FinetuneConfig(**net, epochs=1, lr=0.001, svm_C=(1.0,), svm_kernels=("linear",),
                                  svm_inner_splits=2),
                   SearchConfig(batch_size=(8,), lr=(0.001, 0.0003), epochs=(1,), inner_splits=2))


@pytest.fixture(scope="module")
def crops():
    return synthetic_crop_set(n_subjects=3, per_subject=6, size=32, seed=1)


def test_each_study_changes_one_thing(profile):
    cfg, search, macro = S.settings(S.get_study("full"), profile)
    assert cfg == profile.micro and search == profile.search and macro == profile.macro
    cfg, search, macro = S.settings(S.get_study("no_l2"), profile)
    assert cfg.l2 == 0.0 and cfg.replace(l2=profile.micro.l2) == profile.micro and search is not None
    assert S.settings(S.get_study("no_transfer"), profile)[2] is None
    assert S.settings(S.get_study("no_grid"), profile)[1] is None
    assert S.settings(S.get_study("sampler"), profile)[0].balance == "sampler"
    assert S.settings(S.get_study("leaky"), profile)[1].selection == "leaky_test"
    cfg, _, macro = S.settings(S.get_study("resnet18_no_transfer+softmax"), profile)
    assert cfg.arch == "resnet18" and macro is None
    assert S.get_study("resnet18_no_transfer+softmax").column == "pred_softmax"
    assert S.get_study("deit_tiny").label == "DeiT-tiny, transfer, SVM"


def test_fixed_versions_and_bad_names(profile):
    fixed = S.get_study("no_l2@fixed")
    assert fixed.name == "no_l2@fixed" and not fixed.search and fixed.changes == (("l2", 0.0),)
    assert S.settings(fixed, profile)[1] is None
    with pytest.raises(ConfigError, match="study: expected one of"):
        S.get_study("no_such")
    with pytest.raises(ConfigError, match="leaky selection is a grid search"):
        S.get_study("leaky").fixed()
    with pytest.raises(ConfigError, match=r"changes: \['arch'\]"):
        S.Study("x", "x", changes=(("arch", "resnet18"),))
    soft = S.get_study("full").with_classifier("softmax")
    assert soft.column == "pred_softmax" and soft.name == "full+softmax"
    assert soft.label.endswith(", softmax head")
    assert S.get_study("resnet18@fixed").with_classifier("softmax").label == \
        "ResNet18, transfer, softmax (fixed settings)"


def test_run_folders_share_a_run_between_heads_only(profile, tmp_path):
    d = lambda name: S.run_dir(S.get_study(name), profile, tmp_path, "fp1")  # noqa: E731
    assert d("full") == d("no_svm")                      # the softmax row is the same run
    assert d("no_grid") == d("full@fixed")
    names = ["full", "no_transfer", "no_l2", "no_grid", "sampler", "leaky", "resnet18", "resnet18_no_transfer"]
    assert len({d(n) for n in names}) == len(names)
    assert d("no_l2").name.startswith("mobilevit_xxs-transfer-grid-l20.0-")
    assert S.run_dir(S.get_study("full"), profile, tmp_path, "fp2") != d("full")
    assert S.run_dir(S.get_study("full"), profile, tmp_path, "fp1", "macro2") != d("full")
    assert S.run_dir(S.get_study("no_transfer"), profile, tmp_path, "fp1", "macro2") == d("no_transfer")
    seed1 = S.chapter_profile("smoke", seed=1)
    assert S.run_dir(S.get_study("full"), seed1, tmp_path, "fp1") != \
        S.run_dir(S.get_study("full"), S.chapter_profile("smoke"), tmp_path, "fp1")


def test_transfer_folder_ignores_epochs(profile, tmp_path):
    a = S.transfer_dir(tmp_path, profile.macro, "fp1")
    assert a == S.transfer_dir(tmp_path, profile.macro.replace(epochs=5, num_threads=2), "fp1")
    assert a != S.transfer_dir(tmp_path, profile.macro.replace(lr=0.5), "fp1")
    assert a != S.transfer_dir(tmp_path, profile.macro, "fp2")
    assert a.name.startswith("mobilevit_xxs-32px-")


def test_run_once_then_read_back(profile, crops, tmp_path):
    study = S.Study("scratch_grid", "scratch, grid", transfer=False)
    first = S.run_study(study, crops, profile, tmp_path)
    assert not first.reused and first.result.tasks["computed"] > 0
    again = S.run_study(study, crops, profile, tmp_path)
    assert again.reused and again.result.out_dir == first.result.out_dir
    pd.testing.assert_frame_equal(again.result.metrics, first.result.metrics, check_dtype=False)
    pd.testing.assert_frame_equal(again.predictions, first.predictions, check_dtype=False)
    assert again.result.selection == first.result.selection
    pd.testing.assert_frame_equal(again.result.search.chosen, first.result.search.chosen, check_dtype=False)
    assert again.result.search.params_for(0) == first.result.search.params_for(0)
    # The softmax head of the same run costs nothing.
    soft = S.run_study(study.with_classifier("softmax"), crops, profile, tmp_path)
    assert soft.reused and soft.predictions.columns[-1] == "pred_scratch_grid+softmax"
    # A record of other settings in that folder is not trusted: the run is redone.
    record = json.loads((first.result.out_dir / "run.json").read_text())
    record["config"]["lr"] = 0.5
    (first.result.out_dir / "run.json").write_text(json.dumps(record))
    redo = S.run_study(study, crops, profile, tmp_path)
    assert not redo.reused and redo.result.tasks["reused"] == redo.result.tasks["total"]
    # A run computed by other code is not read back either (its tasks are then redone).
    for key_file in (first.result.out_dir / "tasks" / "run_key.json", tmp_path / S.FITS_DIR / "run_key.json"):
        key = json.loads(key_file.read_text())
        key["code"] = "older-code"
        key_file.write_text(json.dumps(key))
    with pytest.warns(Warning):
        stale = S.run_study(study, crops, profile, tmp_path)
    assert not stale.reused and stale.result.tasks["computed"] == stale.result.tasks["total"]
    pd.testing.assert_frame_equal(stale.result.metrics, first.result.metrics, check_dtype=False)


def test_runs_share_fits(profile, crops, tmp_path):
    """The grid search's final fits at the fixed settings are the fixed run's fits, and the
    leaky search reuses both: the second and third runs train only what is new."""
    fixed = S.run_study(S.get_study("no_transfer").fixed(), crops, profile, tmp_path)
    n_folds = len(fixed.predictions["fold"].unique())
    assert fixed.result.tasks == {"total": n_folds, "reused": 0, "computed": n_folds}
    grid = S.run_study("no_transfer", crops, profile, tmp_path)
    chosen = grid.result.search.chosen
    at_fixed = chosen[(chosen["lr"] == profile.micro.lr) & (chosen["batch_size"] == profile.micro.batch_size)
                      & (chosen["epochs"] == profile.micro.epochs)]
    assert grid.result.tasks["reused"] == len(at_fixed)
    # Those folds' predictions are the fixed run's, row for row.
    fixed_pred = fixed.predictions.set_index("sample").iloc[:, -1]
    grid_pred = grid.predictions.set_index("sample").iloc[:, -1]
    rows = fixed.predictions["fold"].isin(at_fixed["fold"]).to_numpy()
    samples = fixed.predictions["sample"][rows]
    assert (fixed_pred[samples].to_numpy() == grid_pred[samples].to_numpy()).all()
    leaky = S.run_study(S.Study("leaky_scratch", "leaky", transfer=False, selection="leaky_test"), crops,
                        profile, tmp_path)
    n_points = len(profile.search.lr) * len(profile.search.batch_size) * len(profile.search.epochs)
    assert leaky.result.tasks["total"] == n_folds * n_points
    assert leaky.result.tasks["reused"] >= n_folds  # every fold's fit at the fixed settings


def test_transfer_study_needs_the_macro_set(profile, crops, tmp_path):
    with pytest.raises(ConfigError, match="'macro' entry"):
        S.run_study("full@fixed", crops, profile, tmp_path)


def test_read_run_names_missing_files(tmp_path):
    with pytest.raises(DataLayoutError, match=r"missing \['run.json'"):
        S.read_run(tmp_path)


def test_combined_predictions(profile, crops, tmp_path):
    study = S.Study("scratch_fixed", "scratch", transfer=False, search=False)
    run = S.run_study(study, crops, profile, tmp_path)
    soft = S.run_study(study.with_classifier("softmax"), crops, profile, tmp_path)
    both = S.combined_predictions([run, soft])
    assert list(both.columns[-2:]) == ["pred_scratch_fixed", "pred_scratch_fixed+softmax"]
    np.testing.assert_array_equal(both["pred_scratch_fixed"], run.result.predictions["pred_svm"])
    other = S.StudyRun(study, run.result.__class__(run.result.predictions.iloc[::-1].reset_index(drop=True),
                                                  *[getattr(run.result, f) for f in
                                                    ("metrics", "folds", "curves", "selection", "search",
                                                     "seconds")]), True)
    with pytest.raises(ConfigError, match="other samples or folds"):
        S.combined_predictions([run, other])
    chosen = S.most_chosen(run.result, profile.micro)
    assert chosen == profile.micro                       # no search: the fixed settings


def test_inner_split_curves_hold_out_training_subjects(profile, crops):
    curves = S.inner_split_curves(crops, profile.micro.replace(epochs=2), val_fraction=0.3, seed=0)
    assert curves["epoch"].tolist() == [1, 2]
    assert {"train_acc", "val_acc", "val_uf1"} <= set(curves.columns)
    assert (curves["n_train"] + curves["n_val"] == len(crops)).all()
    assert curves["n_val"].iloc[0] == 6                  # one of three subjects, all its samples
    assert curves["val_acc"].between(0, 1).all()
    again = S.inner_split_curves(crops, profile.micro.replace(epochs=2), val_fraction=0.3, seed=0)
    pd.testing.assert_frame_equal(curves, again)


def test_shortened_rows_are_fixed_and_cheaper(profile, tmp_path):
    short = S.get_study("no_l2").shortened({"epochs": 2, "batch_size": 16})
    assert short.name == "no_l2@short" and not short.search
    assert short.label == "no L2 regularisation (l2 = 0) (short: batch_size 16, epochs 2)"
    cfg, search, _ = S.settings(short, profile)
    assert (cfg.l2, cfg.epochs, cfg.batch_size, search) == (0.0, 2, 16, None)
    ref = S.get_study("no_grid").shortened({"epochs": 2, "batch_size": 16})
    assert ref.name == "no_grid@short"
    d = lambda s: S.run_dir(s, profile, tmp_path, "fp1")  # noqa: E731
    assert d(ref) != d(S.get_study("no_grid")) and d(short) != d(S.get_study("no_l2@fixed"))
    assert S.get_study("no_l2").shortened({}) == S.get_study("no_l2@fixed")
    assert S.get_study("deit_tiny").shortened({"epochs": 2}).with_classifier("softmax").label == \
        "DeiT-tiny, transfer, softmax (short: epochs 2)"


def test_package_exports():
    import merlib.evaluation as ev

    assert ev.run_study is S.run_study and ev.get_study("no_l2") == S.STUDIES["no_l2"]
    assert all(getattr(ev, name) is not None for name in ev.__all__)
