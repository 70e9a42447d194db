"""Chapter 04's Table 2 in the library: each row's study, its reference, the runs and pairs.

No training: ``run_study`` is replaced by a recorder that returns a run of the study it
was given, so the tests see which studies would run, in which order, under which names.
"""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from merlib.errors import ConfigError
from merlib.evaluation import variants as S

SHORT = {"epochs": 2, "batch_size": 16}
BOOK_ABLATIONS = ["no_transfer", "no_svm", "no_l2", "no_grid", "sampler"]


@pytest.fixture(scope="module")
def profile():
    return S.chapter_profile("smoke")


@pytest.fixture
def recorded(monkeypatch):
    """The studies ``run_study`` was called with (names as passed), in call order."""
    calls = []

    def fake_run_study(study, crops, profile, work, *, n_workers=1, scheduler=None, progress=False):
        calls.append((study if isinstance(study, str) else study.name, n_workers))
        study = S.get_study(study) if isinstance(study, str) else study
        return S.StudyRun(study, SimpleNamespace(seconds=float(len(calls))), len(calls) % 2 == 0)

    monkeypatch.setattr(S, "run_study", fake_run_study)
    return calls


def fake_runs(*studies: S.Study) -> dict[str, S.StudyRun]:
    return {s.name: S.StudyRun(s, SimpleNamespace(seconds=1.0), False) for s in studies}


# ------------------------------------------------------------------ each row's study

def test_ablations_run_at_fixed_settings_and_comparisons_shortened():
    study = lambda name, **kw: S.table2_study(name, ["resnet18", "deit_tiny_no_transfer"], **kw)  # noqa: E731
    assert study("no_l2", short_settings=SHORT) == S.get_study("no_l2@fixed")
    assert study("no_transfer", short_settings=SHORT).name == "no_transfer@fixed"
    assert study("sampler", short_settings=SHORT).name == "sampler@fixed"
    # Only the names in `comparison` are shortened, and with the given changes.
    short = study("resnet18", short_settings=SHORT)
    assert short == S.get_study("resnet18").shortened(SHORT) and short.name == "resnet18@short"
    assert dict(short.changes) == SHORT and not short.search
    assert study("deit_tiny_no_transfer", short_settings=SHORT).name == "deit_tiny_no_transfer@short"
    assert study("mobilenetv2_100", short_settings=SHORT).name == "mobilenetv2_100@fixed"
    # Without short settings a comparison row is just the fixed version.
    for empty in ({}, None):
        assert study("resnet18", short_settings=empty) == S.get_study("resnet18@fixed")


def test_rows_that_keep_their_study():
    # no_svm is the full run's softmax head: it keeps the grid search (and so reads the full run).
    assert S.table2_study("no_svm", short_settings=SHORT) == S.get_study("no_svm")
    assert S.table2_study("no_svm", ["no_svm"], short_settings=SHORT) == S.get_study("no_svm")
    # no_grid has no search to remove; it is not shortened either (chapter 02's run).
    assert S.table2_study("no_grid", ["no_grid"], short_settings=SHORT) == S.get_study("no_grid")
    # fixed_ablations=False: every study as STUDIES defines it.
    for name in [*BOOK_ABLATIONS, "resnet18", "deit_tiny_no_transfer"]:
        assert S.table2_study(name, ["resnet18"], fixed_ablations=False, short_settings=SHORT) == S.get_study(name)
    with pytest.raises(ConfigError, match="study: expected one of"):
        S.table2_study("no_such")


# ------------------------------------------------------------------ references

@pytest.mark.parametrize("study, short_settings, expected", [
    ("full", SHORT, "full"),
    ("no_l2", SHORT, "full"),                    # grid-search rows (fixed_ablations=False)
    ("resnet18", SHORT, "full"),
    ("no_svm", SHORT, "full"),
    ("leaky", SHORT, "full"),
    ("no_grid", SHORT, "full"),                  # the fixed reference itself
    ("no_grid", None, "full"),
    ("no_l2@fixed", SHORT, "no_grid"),           # fixed ablations
    ("no_transfer@fixed", None, "no_grid"),
    ("resnet18@fixed", {}, "no_grid"),           # a comparison row without short settings
])
def test_reference_of_named_studies(study, short_settings, expected):
    assert S.reference_of(S.get_study(study), short_settings) == expected


def test_reference_of_short_rows_and_their_softmax_heads():
    short = S.get_study("resnet18_no_transfer").shortened(SHORT)
    assert S.reference_of(short, SHORT) == "no_grid@short"
    assert S.reference_of(short.with_classifier("softmax"), SHORT) == "no_grid@short"
    reference = S.get_study("no_grid").shortened(SHORT)
    assert reference.name == "no_grid@short" and S.reference_of(reference, SHORT) == "no_grid@short"
    # Without short settings there is no short reference to compare with.
    assert S.reference_of(short, None) == "no_grid"


# ------------------------------------------------------------------ the runs

def test_book_runs_order_names_and_references(profile, recorded, tmp_path):
    comparison = ["resnet18", "resnet18_no_transfer"]
    runs = S.table2_runs({}, profile, tmp_path, ablations=BOOK_ABLATIONS, comparison=comparison,
                         fixed_ablations=True, short_settings=SHORT, n_workers=2)
    # The dict order is Table 2's row order; each backbone is followed by its softmax head.
    assert list(runs) == ["full", "no_transfer@fixed", "no_svm", "no_l2@fixed", "no_grid", "sampler@fixed",
                          "resnet18@short", "resnet18@short+softmax", "resnet18_no_transfer@short",
                          "resnet18_no_transfer@short+softmax", "no_grid@short"]
    assert all(r.study.name == name for name, r in runs.items())
    # A softmax head is the same run read through the other head: no call of its own.
    assert [name for name, _ in recorded] == ["full", "no_transfer@fixed", "no_svm", "no_l2@fixed", "no_grid",
                                              "sampler@fixed", "resnet18@short", "resnet18_no_transfer@short",
                                              "no_grid@short"]
    assert {w for _, w in recorded} == {2}
    assert runs["resnet18@short+softmax"].result is runs["resnet18@short"].result
    assert runs["resnet18@short+softmax"].study.column == "pred_softmax"
    assert dict(runs["no_grid@short"].study.changes) == SHORT
    # The run folders are those of the named studies (cached runs are read back, not retrained).
    fp = lambda s: S.run_dir(s, profile, tmp_path, "crops", "macro")  # noqa: E731
    assert fp(runs["no_grid@short"].study) == fp(S.get_study("no_grid").shortened(SHORT))
    assert fp(runs["no_l2@fixed"].study) == fp(S.get_study("no_l2@fixed"))


def test_references_added_only_when_needed(profile, recorded, tmp_path):
    run = lambda **kw: S.table2_runs({}, profile, tmp_path, **kw)  # noqa: E731
    # no_grid missing from the ablations: run last, after the rows compared with it.
    assert list(run(ablations=["no_l2"], comparison=[], short_settings=SHORT)) == ["full", "no_l2@fixed", "no_grid"]
    # Short comparison rows without fixed ablations: only their own reference.
    assert list(run(ablations=["no_svm"], comparison=["deit_tiny"], short_settings={"batch_size": 16})) == \
        ["full", "no_svm", "deit_tiny@short", "deit_tiny@short+softmax", "no_grid@short"]
    # No short settings: the comparison rows are fixed and compared with no_grid.
    assert list(run(ablations=[], comparison=["deit_tiny"], short_settings={})) == \
        ["full", "deit_tiny@fixed", "deit_tiny@fixed+softmax", "no_grid"]
    # Grid-search rows need no reference but the full method.
    assert list(run(ablations=["no_l2", "no_svm"], comparison=["resnet18"], fixed_ablations=False,
                    short_settings=SHORT)) == ["full", "no_l2", "no_svm", "resnet18", "resnet18+softmax"]
    recorded.clear()
    assert list(run(ablations=[], comparison=[])) == ["full"] and recorded == [("full", 1)]


def test_runs_name_a_bad_parameter(profile, recorded, tmp_path):
    with pytest.raises(ConfigError, match="ablations: expected a list of study names"):
        S.table2_runs({}, profile, tmp_path, ablations="no_l2", comparison=[])
    with pytest.raises(ConfigError, match="comparison: expected a list of study names"):
        S.table2_runs({}, profile, tmp_path, ablations=[], comparison="resnet18")
    assert recorded == []


def test_labels_name_the_short_reference(profile, recorded, tmp_path):
    runs = S.table2_runs({}, profile, tmp_path, ablations=["no_grid"], comparison=["resnet18"],
                         short_settings=SHORT)
    labels = S.table2_labels(runs, SHORT)
    assert list(labels) == list(runs)
    assert labels["no_grid@short"] == "MobileViT: transfer, SVM, L2 (short: batch_size 16, epochs 2)"
    assert labels["resnet18@short+softmax"] == "ResNet18, transfer, softmax (short: batch_size 16, epochs 2)"
    assert labels["no_grid"] == "no grid search (fixed settings)"
    assert S.table2_labels(fake_runs(S.get_study("full")), None) == {"full": S.get_study("full").label}
    # With short settings the reference's label is there even before its run is.
    assert list(S.table2_labels(fake_runs(S.get_study("full")), {"epochs": 2})) == ["full", "no_grid@short"]


def test_run_times_one_row_per_run(profile, recorded, tmp_path):
    runs = S.table2_runs({}, profile, tmp_path, ablations=["no_svm", "no_l2"], comparison=[])
    times = S.run_times(runs, S.table2_labels(runs))
    assert list(times.columns) == ["row", "settings", "seconds", "read back from disk"]
    assert times["settings"].tolist() == ["grid search", "grid search", "fixed", "fixed"]
    assert times["seconds"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert times["read back from disk"].tolist() == [False, True, False, True]
    with pytest.raises(ConfigError, match=r"labels: no label for the runs \['no_grid'\]"):
        S.run_times(runs, {"full": "x", "no_svm": "y", "no_l2@fixed": "z"})


# ------------------------------------------------------------------ the pairs

def test_pairs_group_rows_by_reference():
    short = lambda name: S.get_study(name).shortened(SHORT)  # noqa: E731
    runs = fake_runs(S.get_study("full"), S.get_study("no_transfer@fixed"), S.get_study("no_svm"),
                     S.get_study("no_l2@fixed"), S.get_study("no_grid"), short("resnet18"),
                     short("resnet18").with_classifier("softmax"), short("no_grid"))
    assert S.table2_pairs(runs, SHORT) == {
        "no_grid": ["pred_no_transfer@fixed", "pred_no_l2@fixed"],
        "full": ["pred_no_svm", "pred_no_grid"],
        "no_grid@short": ["pred_resnet18@short", "pred_resnet18@short+softmax"],
    }
    # Keys in the order their first row comes; no reference is compared with itself.
    assert list(S.table2_pairs(runs, SHORT)) == ["no_grid", "full", "no_grid@short"]


def test_pairs_of_grid_search_rows_and_of_the_full_run_alone():
    runs = fake_runs(S.get_study("full"), S.get_study("no_l2"), S.get_study("resnet18"),
                     S.get_study("resnet18").with_classifier("softmax"))
    assert S.table2_pairs(runs) == {"full": ["pred_no_l2", "pred_resnet18", "pred_resnet18+softmax"]}
    assert S.table2_pairs(fake_runs(S.get_study("full"))) == {}


# ------------------------------------------------------------------ Figures 6-8

def test_figure_settings_from_the_most_chosen_grid_point(profile):
    folds = pd.DataFrame({"grid_index": [3, 1, 3], "batch_size": [32, 8, 32], "lr": [1e-3, 1e-4, 1e-3],
                          "epochs": [4, 2, 4]})
    settings = S.figure_settings(SimpleNamespace(folds=folds), profile)
    assert list(settings) == ["Figure 6: no grid search", "Figure 7: no L2", "Figure 8: grid search and L2 (full)"]
    best = profile.micro.replace(batch_size=32, lr=1e-3, epochs=4)
    assert settings["Figure 6: no grid search"] == profile.micro
    assert settings["Figure 8: grid search and L2 (full)"] == best
    assert settings["Figure 7: no L2"] == best.replace(l2=0.0)
    # A run without a search: Figures 6 and 8 are the fixed settings.
    fixed = S.figure_settings(SimpleNamespace(folds=folds.assign(grid_index=-1)), profile)
    assert fixed["Figure 8: grid search and L2 (full)"] == profile.micro == fixed["Figure 6: no grid search"]


def test_figure_curves_at_the_given_epochs(profile, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(S, "macro_transfer", lambda macro_crops, macro, work: ("transfer", macro_crops, macro))

    def fake_curves(crops, cfg, work, *, transfer=None, val_fraction=0.25, seed=0):
        seen.append((crops, cfg, work, transfer, val_fraction, seed))
        return pd.DataFrame({"epoch": range(1, cfg.epochs + 1)})

    monkeypatch.setattr(S, "cached_inner_split_curves", fake_curves)
    configs = {"a": profile.micro, "b": profile.micro.replace(l2=0.0)}
    curves = S.figure_curves({"composite": "C", "macro": "M"}, profile, tmp_path, configs, epochs=3,
                             val_fraction=0.3, seed=5)
    assert list(curves) == ["a", "b"] and all(len(c) == 3 for c in curves.values())
    assert [cfg for _, cfg, *_ in seen] == [c.replace(epochs=3) for c in configs.values()]
    assert {(c, w, t, v, s) for c, _, w, t, v, s in seen} == {("C", tmp_path, ("transfer", "M", profile.macro), 0.3, 5)}


# -- table2.csv ---------------------------------------------------------------------------

def test_table2_record_gives_each_run_its_interval_and_paired_differences(tmp_path):
    import numpy as np
    from sklearn.metrics import f1_score

    from merlib.evaluation.handcrafted import majority_predictions, reference_predictions
    from merlib.evaluation.splits import loso_folds
    from merlib.training.crops import synthetic_crop_set

    crops = synthetic_crop_set(6, 9, seed=3)
    base = majority_predictions(crops.meta, loso_folds(crops.groups))
    majority = base.pop("pred_majority")
    preds = base.assign(pred_full=base["label"], pred_no_svm="positive")
    rec = S.table2_record(preds, crops, references=("hog_svm",), cache_dir=tmp_path, n_resamples=200,
                          labels={"full": "full method"})
    assert list(rec.columns) == list(S.TABLE2_COLUMNS)
    assert list(rec["run"]) == ["full", "no_svm", "hog_svm"]
    assert list(rec["kind"]) == ["run", "run", "reference"]
    assert list(rec["label"]) == ["full method", "no_svm", "hog_svm"]
    full, const, hog = (rec.iloc[i] for i in range(3))
    # A perfect run: UF1 1 on every resample, and it beats the majority class by exactly
    # 1 - majority's UF1, with an interval above 0.
    assert (full["uf1"], full["uf1_lo"], full["uf1_hi"]) == (1.0, 1.0, 1.0)
    m = f1_score(base["label"].astype(str), majority.astype(str), average="macro")
    assert full["diff_vs_majority"] == pytest.approx(1.0 - m)
    assert full["diff_lo"] > 0
    assert const["uf1"] == pytest.approx(f1_score(base["label"].astype(str), preds["pred_no_svm"], average="macro"))
    assert const["diff_lo"] <= const["diff_vs_majority"] <= const["diff_hi"]
    # HOG on the same crops and folds: the cached reference, and no difference from itself.
    h = reference_predictions(crops, ["hog_svm"], folds=loso_folds(crops.groups), cache_dir=tmp_path)
    assert hog["uf1"] == pytest.approx(f1_score(h["label"].astype(str), h["pred_hog_svm"].astype(str),
                                                average="macro"))
    assert np.isnan(hog["diff_vs_hog"])
    assert full["diff_vs_hog"] == pytest.approx(1.0 - hog["uf1"])
    assert int(full["n"]) == len(crops)


def test_table2_record_needs_the_crops_for_references():
    preds = pd.DataFrame({"dataset": ["casme2", "casme2"], "subject": ["s1", "s2"], "sample": ["a", "b"],
                          "label": ["negative", "positive"], "fold": [0, 1], "pred_full": ["negative", "negative"]})
    with pytest.raises(ConfigError, match="crops:"):
        S.table2_record(preds, None, references=("hog_svm",))
