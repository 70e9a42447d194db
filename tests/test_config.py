"""Run-settings dataclasses: paper defaults, presets, dict round trip, errors that name."""
from __future__ import annotations

import json

import pytest
from sklearn.model_selection import ParameterGrid

from merlib.config import FinetuneConfig, Profile, SearchConfig, TrainConfig, get_profile
from merlib.errors import ConfigError


def test_defaults_are_the_papers():
    macro, micro = TrainConfig(), FinetuneConfig()
    assert (macro.arch, macro.image_size, macro.optimizer, macro.lr, macro.momentum,
            macro.batch_size, macro.epochs) == ("mobilevit_s", 256, "sgd", 0.01, 0.9, 32, 100)
    assert (macro.perturb_p, macro.perturb_max, macro.drop_rate, macro.l2) == (0.3, 20, 0.5, 0.01)
    assert (micro.optimizer, micro.lr, micro.batch_size, micro.classifier) == ("adam", 0.007, 64, "svm")
    assert macro.balance == micro.balance == "augment"


@pytest.mark.parametrize("name", ["smoke", "paper"])
def test_profiles_round_trip_through_json(name):
    p = get_profile(name, "cuda")
    assert p.macro.device == p.micro.device == "cuda"
    again = Profile.from_dict(json.loads(json.dumps(p.as_dict())))
    assert again == p and isinstance(again.micro.svm_C, tuple)


def test_smoke_is_small():
    p = Profile.smoke()
    assert p.micro.image_size <= 64 and p.macro.epochs <= 3
    assert len(ParameterGrid(p.search.param_grid())) <= 2


@pytest.mark.parametrize("cls, kwargs, name", [
    (TrainConfig, {"lr": -1.0}, "lr"),
    (TrainConfig, {"arch": "resnet1000"}, "arch"),
    (TrainConfig, {"val_fraction": 1.5}, "val_fraction"),
    (FinetuneConfig, {"classifier": "knn"}, "classifier"),
    (FinetuneConfig, {"unfreeze_start": 0.8, "unfreeze_end": 0.5}, "unfreeze_end"),
    (FinetuneConfig, {"device": "gpu"}, "device"),
    (SearchConfig, {"selection": "test"}, "selection"),
    (SearchConfig, {"lr": ()}, "lr"),
    # Before: accepted here, then a traceback deep in numpy/torch seeding.
    (TrainConfig, {"seed": -1}, "seed"),
    (FinetuneConfig, {"seed": 2**32}, "seed"),
    # Before: a TypeError from comparing a string (a JSON record, a papermill parameter).
    (TrainConfig, {"lr": "0.01"}, "lr"),
    (TrainConfig, {"drop_rate": float("nan")}, "drop_rate"),
    # Before: any non-empty tuple; a bad grid point failed only inside a Dask task.
    (SearchConfig, {"lr": (0.01, 0.0)}, "lr"),
    (SearchConfig, {"batch_size": (1,)}, "batch_size"),
    (SearchConfig, {"epochs": (3.5,)}, "epochs"),
])
def test_bad_values_name_parameter_and_value(cls, kwargs, name):
    with pytest.raises(ConfigError, match=rf"^{name}: expected .*, got "):
        cls(**kwargs)
    assert issubclass(ConfigError, ValueError)


def test_unknown_keys_are_an_error():
    with pytest.raises(ConfigError, match=r"unknown settings \['learning_rate'\]"):
        FinetuneConfig.from_dict({"learning_rate": 0.1})


def test_overrides_text_becomes_typed_values_and_bad_items_are_named():
    from merlib.config import parse_overrides

    assert parse_overrides("lr=0.001, epochs=6,arch=resnet18,bn_recalibrate=False") == {
        "lr": 0.001, "epochs": 6, "arch": "resnet18", "bn_recalibrate": False}
    cfg = Profile.smoke().micro
    out = FinetuneConfig.from_dict({**cfg.as_dict(), **parse_overrides("drop_rate=0.2,epochs=6")})
    assert out == cfg.replace(drop_rate=0.2, epochs=6)
    with pytest.raises(ConfigError, match=r"--set: 'epochs' is not field=value \(in 'lr=0.1,epochs'\)"):
        parse_overrides("lr=0.1,epochs", "--set")
    with pytest.raises(ConfigError, match=r"unknown settings \['lr_typo'\]"):
        FinetuneConfig.from_dict({**cfg.as_dict(), **parse_overrides("lr_typo=0.1")})
