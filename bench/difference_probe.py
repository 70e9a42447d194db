"""The network (on the difference input, or the paper's apex crop) against HOG + SVM on the
same input, on one generated SynthME root, over several training seeds: the settings probe
behind the development notes (``bench/records/devnote-*.json``).

    .venv/bin/python bench/difference_probe.py --seed 1 --amplitude 5
    .venv/bin/python bench/difference_probe.py --seed 1 --amplitude 5 --micro-subjects 24 \\
        --macro-subjects 16 --train-seeds 0 1 2 --set base --set drop_rate=0.2
    .venv/bin/python bench/difference_probe.py --input apex --realism realistic --seed 7 \
        --amplitude 1 --micro-subjects 24 --set base --set image_size=128 --set svm_early_grid=4

The root (``--seed``, subject counts, ``--amplitude``) is generated once under ``--base``
(:func:`merlib.studies.amplitude.synth_root`); a seed other than the book's (0) gives other
identities, so settings chosen here are not chosen on the book's test folds. Its
composite is pre-processed through the crop cache; with ``--input difference`` the
difference images are made at 64 px with gain ``--gain``
(:func:`merlib.training.difference.difference_crops`), with ``--input apex`` the network
and HOG read the aligned apex crops (HOG at 64 px, the network at its ``image_size``).
``--realism`` picks the generator's preset (:data:`merlib.synth.REALISM_PRESETS`).

Each ``--set`` is one network setting: ``base`` is chapter 07's (the smoke profile's
fine-tuning, MobileViT-XXS at 64 px, 3 epochs, the paper's dropout 0.5, no transfer);
``drop_rate=0.2,epochs=6`` changes fields of it (any :class:`~merlib.config.FinetuneConfig`
field, read by :func:`~merlib.config.parse_overrides`). ``--transfer`` starts every
setting from macro-trained weights, as the paper's method (chapter 02's no-grid run): the
smoke profile's macro training at the setting's arch and image size, changed by
``--macro epochs=20`` for every setting or by ``macro.epochs=20`` in one ``--set``. Every
setting runs once per ``--train-seeds`` value (the fine-tuning seed: initial weights,
batch order, augmentation), all on the same leave-one-subject-out folds.

Printed: one row per setting and training seed (composite UF1 of the SVM and softmax
heads, and with ``svm_early_grid`` > 0 of the SVM on the pooled vector alone of the same
networks; ``m_uf1`` the SVM head minus HOG + SVM, ``d_maj`` minus the majority class and
``d_first`` minus the first setting's SVM head (its first training seed), each paired over
the same resampled subjects, with its 95% interval), then per setting the mean and
standard deviation of the SVM head's UF1 over the training seeds. The subject bootstrap
does not see the training seed's spread; the second table does. Folds are stored under
``--base`` and read back on a rerun.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from merlib.config import FinetuneConfig, TrainConfig, get_profile, parse_overrides
from merlib.evaluation.handcrafted import merge_predictions, reference_predictions
from merlib.evaluation.protocol import evaluate_loso
from merlib.evaluation.splits import loso_folds
from merlib.evaluation.variants import macro_transfer
from merlib.parallel import keep_local_clusters
from merlib.paths import settings_digest
from merlib.studies import amplitude as amp
from merlib.training.crops import prepare_crop_sets
from merlib.training.difference import DIFFERENCE_GAIN, difference_crops

SIZE = 64


def parse_setting(spec: str, cfg: FinetuneConfig) -> tuple[FinetuneConfig, dict[str, object]]:
    """``"base"`` or ``"field=value,macro.field=value"``: the fine-tuning ``cfg`` with the
    plain fields changed, and the ``macro.`` fields (changes to the macro training)."""
    if spec == "base":
        return cfg, {}
    items = parse_overrides(spec, "--set")
    macro = {k.removeprefix("macro."): v for k, v in items.items() if k.startswith("macro.")}
    tuned = {k: v for k, v in items.items() if not k.startswith("macro.")}
    return FinetuneConfig.from_dict({**cfg.as_dict(), **tuned}), macro


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1, help="generator seed of the root (0: the book's identities)")
    ap.add_argument("--amplitude", type=float, default=5.0)
    ap.add_argument("--micro-subjects", type=int, default=12)
    ap.add_argument("--macro-subjects", type=int, default=4)
    ap.add_argument("--gain", type=float, default=DIFFERENCE_GAIN)
    ap.add_argument("--input", choices=("difference", "apex"), default="difference")
    ap.add_argument("--realism", choices=("none", "realistic"), default="none")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--transfer", action="store_true",
                    help="start from macro-trained weights, as the paper's method (the smoke profile's macro "
                         "training at each setting's arch and image size, on this root's macro set)")
    ap.add_argument("--macro", default=None,
                    help="with --transfer: changes to the smoke profile's macro training, field=value,... "
                         "(e.g. epochs=20): the transfer set's training, measured apart from the fine-tuning")
    ap.add_argument("--set", dest="settings", action="append", default=None,
                    help="a network setting (repeatable; default: base); macro.FIELD=VALUE changes the "
                         "macro training of that setting (with --transfer)")
    ap.add_argument("--pair-with", type=Path, default=None,
                    help="a finished run folder (its predictions.csv) of the same composite, e.g. one on a root "
                         "that differs only in its macro set: every setting is paired with its SVM head instead "
                         "of with the first setting")
    ap.add_argument("--base", type=Path, default=Path("build/probe/difference"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="CSV of the per-run table")
    args = ap.parse_args()

    keep_local_clusters()
    from merlib.synth import SynthConfig, generator_settings

    generator = generator_settings(SynthConfig.preset(args.realism).record())
    root = amp.synth_root(args.base, args.amplitude, seed=args.seed, micro_subjects=args.micro_subjects,
                          macro_subjects=args.macro_subjects, generator=generator)
    sets = prepare_crop_sets(root, sets=["composite", "macro"] if args.transfer else ["composite"], seed=0,
                             allow_missing=True)
    crops = sets["composite"]
    if args.input == "difference":
        diff, left_out = difference_crops(crops, root, size=SIZE, gain=args.gain, cache_dir=args.base / "clips")
        work = args.base / "runs" / f"{root.name}_gain{args.gain:g}"
    else:
        diff, left_out = crops, []
        work = args.base / "runs" / f"{root.name}_apex"
    refs = reference_predictions(diff, ["majority", "hog_svm"], folds=loso_folds(diff.groups), cache_dir=work / "references")
    iod = amp.composite_amplitudes(amp.read_truth(root), diff.meta)
    base = get_profile("smoke", "cpu").micro.replace(image_size=SIZE, epochs=3)
    key = ["dataset", "subject", "sample", "label"]
    rows = []
    first_preds = None
    if args.pair_with is not None:
        paired = pd.read_csv(args.pair_with / "predictions.csv", dtype={k: str for k in key})
        first_preds = paired[[*key, "pred_svm"]].rename(columns={"pred_svm": "pred_first"})
    for spec in args.settings or ["base"]:
        for train_seed in args.train_seeds:
            cfg, macro_changes = parse_setting(spec, base)
            cfg = cfg.replace(seed=train_seed)
            t0 = time.perf_counter()
            transfer, name = None, "loso"
            if args.transfer:
                macro = get_profile("smoke", "cpu").macro.replace(arch=cfg.arch, image_size=cfg.image_size,
                                                                  seed=train_seed)
                changes = {**(parse_overrides(args.macro, "--macro") if args.macro else {}), **macro_changes}
                transfer_work, name = work, "loso-transfer"
                if changes:
                    macro = TrainConfig.from_dict({**macro.as_dict(), **changes})
                    # Folds are keyed by the fine-tuning alone, so other transferred weights get a
                    # folder of their own; so does the macro training, because a transfer folder
                    # resumed to more epochs no longer serves the shorter run.
                    name += f"-macro-{settings_digest(macro.as_dict())}"
                    transfer_work = work / name.removeprefix("loso-transfer-")
                transfer = macro_transfer(sets["macro"], macro, transfer_work)
            res = evaluate_loso(diff, cfg, amp.run_folder(work, name, cfg), transfer=transfer,
                                n_workers=args.workers)
            preds = merge_predictions(res.predictions, refs[[*key, "fold", "pred_majority", "pred_hog_svm"]])
            pooled = ["pred_svm_pooled"] if "pred_svm_pooled" in preds.columns else []
            # The first setting is the one the others are paired with.
            first = first_preds is not None
            if first:
                preds = preds.merge(first_preds, on=key, how="left", validate="one_to_one")
                if preds["pred_first"].isna().any():
                    raise SystemExit(f"--pair-with {args.pair_with}: {int(preds['pred_first'].isna().sum())} "
                                     "samples of this composite are not in its predictions.csv")
            table = amp.study_table(preds, args.amplitude, iod, SIZE, seed=0,
                                    references=["pred_majority", "pred_softmax", "pred_hog_svm", *pooled,
                                                *(["pred_first"] if first else [])]).set_index("classifier")
            if first_preds is None:
                first_preds = preds[[*key, "pred_svm"]].rename(columns={"pred_svm": "pred_first"})
            rows.append({"setting": spec, "transfer": args.transfer, "train_seed": train_seed, "uf1_svm": table.loc["svm", "uf1"],
                         "uf1_softmax": table.loc["softmax", "uf1"], "uf1_hog_svm": table.loc["hog_svm", "uf1"],
                         "m_uf1": table.loc["hog_svm", "m_uf1"], "m_lo": table.loc["hog_svm", "m_uf1_lo"],
                         "m_hi": table.loc["hog_svm", "m_uf1_hi"],
                         # svm_early_grid > 0: the paper's head (pooled vector) of the same networks
                         "uf1_svm_pooled": table.loc["svm_pooled", "uf1"] if pooled else float("nan"),
                         # paired with majority, and with the first setting's SVM head
                         "d_maj": table.loc["svm", "d_uf1"], "d_maj_lo": table.loc["svm", "d_uf1_lo"],
                         "d_maj_hi": table.loc["svm", "d_uf1_hi"],
                         "d_first": table.loc["first", "m_uf1"] if first else float("nan"),
                         "d_first_lo": table.loc["first", "m_uf1_lo"] if first else float("nan"),
                         "d_first_hi": table.loc["first", "m_uf1_hi"] if first else float("nan"),
                         "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    runs = pd.DataFrame(rows)
    print(f"\n{root} (SIMULATED), {len(diff)} samples, {len(set(diff.groups))} subjects, "
          f"{len(left_out)} without an aligned onset/apex pair; {args.input} input"
          + (f" at {SIZE} px, gain {args.gain:g}" if args.input == "difference" else ""))
    print(runs.to_string(index=False, float_format="%.3f"))
    summary = runs.groupby("setting", sort=False)["uf1_svm"].agg(["mean", "std", "min", "max", "count"])
    summary["svm_pooled"] = runs.groupby("setting", sort=False)["uf1_svm_pooled"].mean()
    summary["hog_svm"] = runs.groupby("setting", sort=False)["uf1_hog_svm"].first()
    print("\nSVM-head UF1 over training seeds (std: sample standard deviation)")
    print(summary.to_string(float_format="%.3f"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        runs.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
