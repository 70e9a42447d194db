"""The method learns: the real LOSO path, at the smoke profile's settings, on crops whose
classes carry a strong, known cue, scores far above the majority class.

Without this, a change that sends every prediction to one class (a broken head, labels
scrambled on the way to training, a frozen network) would pass every other test. The
negative control trains the same path on labels shuffled within each training subject
and must fall to chance: the threshold below separates the two.
"""
from __future__ import annotations

import numpy as np
import pytest

from merlib.config import Profile
from merlib.evaluation.baselines import majority_class_predictions
from merlib.evaluation.protocol import evaluate_loso
from merlib.scores import uf1_score
from merlib.training.crops import CropSet, synthetic_crop_set

#: The learning bar: UF1 this far above the majority class's on the same folds.
MARGIN = 0.35


@pytest.fixture(scope="module")
def crops() -> CropSet:
    # 6 subjects x 9 crops, every class 3 times per subject, over casme2/samm/smic.
    return synthetic_crop_set(n_subjects=6, per_subject=9, size=64, signal=60.0, seed=3)


def _cfg():
    # The smoke profile's fine-tuning as the book runs it, one C, one thread.
    return Profile.smoke().micro.replace(svm_C=(1.0,), num_threads=1)


def _uf1s(result) -> tuple[float, float, float]:
    p = result.predictions
    majority = majority_class_predictions(p).astype(object).to_numpy()
    return (uf1_score(p["label"], p["pred_svm"]), uf1_score(p["label"], p["pred_softmax"]),
            uf1_score(p["label"], majority))


@pytest.mark.slow
def test_the_method_learns_a_strong_cue(crops, tmp_path):
    svm, softmax, majority = _uf1s(evaluate_loso(crops, _cfg(), tmp_path / "loso", n_workers=1))
    print(f"\nUF1 svm {svm:.3f}, softmax {softmax:.3f}, majority {majority:.3f}")
    assert svm >= majority + MARGIN
    assert softmax >= majority + MARGIN


@pytest.mark.slow
def test_shuffled_labels_do_not_pass_the_bar(crops, tmp_path):
    """The negative control: the same path on labels shuffled within each subject."""
    rng = np.random.default_rng(0)
    meta = crops.meta.copy()
    for _, idx in meta.groupby("subject").groups.items():
        meta.loc[idx, "label"] = rng.permutation(meta.loc[idx, "label"].to_numpy())
    shuffled = CropSet(crops.X, meta, crops.source, crops.data_kind)
    svm, softmax, majority = _uf1s(evaluate_loso(shuffled, _cfg(), tmp_path / "loso", n_workers=1))
    print(f"\nshuffled: UF1 svm {svm:.3f}, softmax {softmax:.3f}, majority {majority:.3f}")
    assert svm < majority + MARGIN and softmax < majority + MARGIN
