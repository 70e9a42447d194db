"""Does the network learn what a linear model finds in the same pixels? One table of
network variants beside simple references, on the same folds.

    .venv/bin/python bench/learning_probe.py --data synthetic
    .venv/bin/python bench/learning_probe.py --data data/synthme [--folds 6]
    .venv/bin/python bench/learning_probe.py --data build/probe/amp5 --variants "smoke;smoke,epochs=12"
    .venv/bin/python bench/learning_probe.py --data data/synthme --no-eye-mask

``--data synthetic`` is :func:`merlib.training.crops.synthetic_crop_set` (a known, linear
cue per class); a folder is a SynthME (or real) data root whose composite is
pre-processed through the crop cache (:func:`merlib.training.crops.prepare_crop_sets`;
``--no-eye-mask`` aligns without the eye mask into ``build/probe/faces-nomask``).

Folds: leave-one-subject-out (:func:`merlib.evaluation.splits.loso_folds`), or with
``--folds K`` K subject-wise group folds (cheaper; every row of one table uses the same
folds, so rows compare).

Rows
----
- ``majority``: the training folds' most frequent class.
- ``pixels+LR``: standardised pixels at ``--size`` px, logistic regression (balanced
  class weights, C=1).
- ``HOG+LR``: HOG (9 orientations, 8 px cells, 2x2 blocks) at 128 px, same regression.
- one row per network variant: ``smoke`` is the smoke profile's fine-tuning config as
  it stands (random init: no transfer here); ``smoke,l2=0,epochs=12`` changes fields of
  it (any :class:`~merlib.config.FinetuneConfig` field; values are parsed as Python
  literals). Both heads are scored: the SVM on pre-logits features and the softmax.

Columns: pooled UF1 / UAR of each head; ``fit_train`` the last epoch's training accuracy
(train mode: batch statistics, dropout, augmentation); ``eval_train`` the accuracy of the
softmax head on the unaugmented training crops in eval mode (running statistics), the
mode every prediction uses, averaged over folds; ``s/fold`` wall seconds per fold.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from merlib.config import FinetuneConfig, Profile, parse_overrides
from merlib.data.schema import LABELS
from merlib.evaluation.metrics import uar_score, uf1_score
from merlib.evaluation.splits import loso_folds
from merlib.training.batches import CropDataset, resize_crops
from merlib.training.crops import CropSet, synthetic_crop_set

DEFAULT_VARIANTS = ("smoke;smoke,l2=0;smoke,drop_rate=0;smoke,perturb_p=0;smoke,epochs=12;"
                    "smoke,epochs=12,l2=0;smoke,epochs=12,lr=0.003")


def parse_variant(spec: str, base: FinetuneConfig) -> FinetuneConfig:
    """``"smoke,l2=0,epochs=12"`` -> ``base`` with those fields replaced."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts or parts[0] != "smoke":
        raise SystemExit(f"--variants: each variant starts with 'smoke', got {spec!r}")
    changes = parse_overrides(",".join(parts[1:]), "--variants") if parts[1:] else {}
    return base.replace(**changes)


def load_crops(data: str, *, size: int, no_eye_mask: bool, subjects: int, per_subject: int,
               signal: float) -> CropSet:
    if data == "synthetic":
        return synthetic_crop_set(subjects, per_subject, size, signal=signal)
    from merlib.training.crops import prepare_crop_sets

    if not no_eye_mask:
        return prepare_crop_sets(data, sets=["composite"], allow_missing=True, workers=1)["composite"]
    from merlib.faces.config import AlignConfig
    from merlib.faces.run import build_jobs, preprocess, write_outputs
    from merlib.provenance import Provenance
    from merlib.training.crops import load_crop_set

    prov = Provenance.for_data(data)
    store = Path("build/probe/faces-nomask") / prov.data_fingerprint
    jobs = build_jobs(data, ["composite"], allow_missing=True)
    run = preprocess(jobs, data, store, AlignConfig(mask_eyes=False), workers=1, progress=False)
    write_outputs(run, store, prov)
    return load_crop_set(store, set="composite")


def make_folds(crops: CropSet, k: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    if k is None:
        return [(f.train_idx, f.test_idx) for f in loso_folds(crops.groups)]
    cv = GroupKFold(n_splits=k, shuffle=True, random_state=0)
    return [(a.astype(np.int64), b.astype(np.int64))
            for a, b in cv.split(crops.X, crops.y, crops.groups)]


def _score(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    return uf1_score(y, pred), uar_score(y, pred)


def reference_rows(crops: CropSet, folds, size: int) -> list[dict]:
    from skimage.feature import hog

    y = crops.y
    pixels = resize_crops(crops.X, size).reshape(len(crops), -1).numpy().astype(np.float32) / 255
    small = resize_crops(crops.X, 128)[:, 0].numpy()
    hogs = np.stack([hog(im, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for im in small])
    rows = []
    for name, X in (("majority", None), (f"pixels+LR ({size} px)", pixels), ("HOG+LR (128 px)", hogs)):
        t0 = time.perf_counter()
        pred = np.empty_like(y)
        for tr, te in folds:
            if X is None:
                counts = np.bincount(y[tr], minlength=len(LABELS))
                pred[te] = int(np.argmax(counts))
                continue
            lr = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
            pred[te] = lr.fit(X[tr], y[tr]).predict(X[te])
        uf1, uar = _score(y, pred)
        rows.append({"row": name, "uf1_svm": uf1, "uar_svm": uar, "uf1_softmax": np.nan,
                     "uar_softmax": np.nan, "fit_train": np.nan, "eval_train": np.nan,
                     "s/fold": (time.perf_counter() - t0) / len(folds)})
    return rows


def network_row(crops: CropSet, folds, name: str, cfg: FinetuneConfig, seed: int) -> dict:
    """What :func:`merlib.evaluation.fold.fit_predict` does per fold (fine-tune, embed,
    SVM; no transfer here), plus the accuracy on the training crops in eval mode."""
    from merlib.models.backbone import input_normalisation
    from merlib.training.engine import derive_seed, predict
    from merlib.training.finetune import finetune
    from merlib.training.svm import fit_svm, search_settings

    y = crops.y
    pred_svm, pred_soft = np.empty_like(y), np.empty_like(y)
    fit_acc, eval_acc = [], []
    t0 = time.perf_counter()
    for i, (tr, te) in enumerate(folds):
        fold_seed = derive_seed(seed, "probe", i)
        train, test = crops.subset(tr), crops.subset(te)
        result = finetune(train, cfg, seed=fold_seed)
        mean, std = input_normalisation(result.model)
        view = dict(image_size=cfg.image_size, mean=mean, std=std)
        f_train, p_train = predict(result.model, CropDataset(train.X, train.y, **view), cfg.device,
                                   early_grid=cfg.svm_early_grid)
        f_test, p_test = predict(result.model, CropDataset(test.X, test.y, **view), cfg.device,
                                   early_grid=cfg.svm_early_grid)
        svm, _ = fit_svm(f_train, train.y, train.groups, **search_settings(cfg), seed=fold_seed)
        pred_svm[te], pred_soft[te] = svm.predict(f_test), p_test.argmax(1)
        fit_acc.append(float(result.curves["train_acc"].iloc[-1]))
        eval_acc.append(float((p_train.argmax(1) == train.y).mean()))
    uf1_svm, uar_svm = _score(y, pred_svm)
    uf1_soft, uar_soft = _score(y, pred_soft)
    return {"row": name, "uf1_svm": uf1_svm, "uar_svm": uar_svm, "uf1_softmax": uf1_soft,
            "uar_softmax": uar_soft, "fit_train": np.mean(fit_acc), "eval_train": np.mean(eval_acc),
            "s/fold": (time.perf_counter() - t0) / len(folds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="synthetic", help="'synthetic' or a data root")
    ap.add_argument("--size", type=int, default=64, help="pixels for pixels+LR and the smoke base config")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help="';'-separated variants")
    ap.add_argument("--folds", type=int, default=None, help="K group folds instead of LOSO")
    ap.add_argument("--no-eye-mask", action="store_true")
    ap.add_argument("--subjects", type=int, default=12)
    ap.add_argument("--per-subject", type=int, default=12)
    ap.add_argument("--signal", type=float, default=12.0, help="synthetic cue, grey levels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-references", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="CSV of the table")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    crops = load_crops(args.data, size=args.size, no_eye_mask=args.no_eye_mask, subjects=args.subjects,
                       per_subject=args.per_subject, signal=args.signal)
    folds = make_folds(crops, args.folds)
    base = Profile.smoke().micro.replace(num_threads=1, image_size=args.size)
    print(f"{args.data}{' (no eye mask)' if args.no_eye_mask else ''}: {len(crops)} crops, "
          f"{len(np.unique(crops.groups))} subjects, classes {np.bincount(crops.y, minlength=3).tolist()}, "
          f"{len(folds)} folds ({'LOSO' if args.folds is None else 'group k-fold'})", flush=True)
    rows = [] if args.no_references else reference_rows(crops, folds, args.size)
    for r in rows:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}, flush=True)
    for spec in [s.strip() for s in args.variants.split(";") if s.strip()]:
        rows.append(network_row(crops, folds, spec, parse_variant(spec, base), args.seed))
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    table = pd.DataFrame(rows)
    print()
    print(table.to_string(index=False, float_format="%.3f"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
