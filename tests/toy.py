"""Tiny crop sets and configs for the training and evaluation tests (seconds, not minutes)."""
from __future__ import annotations

from merlib.config import FinetuneConfig, TrainConfig
from merlib.training.crops import CropSet, synthetic_crop_set

NET = dict(arch="mobilevit_xxs", image_size=64, batch_size=8, num_threads=1)


def tiny_crops(n_subjects: int = 4, per_subject: int = 6, seed: int = 0) -> CropSet:
    """4 subjects x 6 crops of 64 x 64, every class per subject, over casme2/samm/smic."""
    return synthetic_crop_set(n_subjects, per_subject, 64, seed=seed)


def tiny_train_cfg(**changes) -> TrainConfig:
    return TrainConfig(**{**NET, "epochs": 1, "val_fraction": 0.25, **changes})


def tiny_finetune_cfg(**changes) -> FinetuneConfig:
    return FinetuneConfig(**{**NET, "epochs": 1, "lr": 0.001, "svm_C": (1.0,), "svm_kernels": ("linear",),
                             "svm_inner_splits": 2, **changes})
