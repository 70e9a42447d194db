"""The full method at the paper's settings on one device and data root, timed, as a JSON record.

    # the record a GPU run commits (hours on the full data; see the README's "real data")
    .venv/bin/python bench/paper_profile.py --root data/synthme --device cuda \\
        --out bench/records/paper-profile-$(date +%F).json
    # a CPU miniature of the same code path (minutes): one epoch each, one grid point,
    # two crops per subject and class
    .venv/bin/python bench/paper_profile.py --root build/test-data/synthme-tiny --device cpu \\
        --out /tmp/paper-profile-tiny.json --macro-epochs 1 --micro-epochs 1 --grid one --per-subject-class 2

The paper profile (:meth:`merlib.config.Profile.paper`): MobileViT-S at 256 px, macro SGD
(lr 0.01, batch 32, 100 epochs), fine-tuning with Adam and gradual unfreezing, the grid
search over batch size, lr and epochs on inner subject-wise folds, an SVM on the learned
features. Stages, each timed (wall clock) with its peak memory:

- ``preprocess``: the composite's and the macro set's apex frames aligned
  (:func:`~merlib.training.crops.prepare_crop_sets`, cached under ``--work``);
- ``train_macro``: transfer learning, best epoch on held-out macro subjects;
- ``loso``: leave-one-subject-out with the grid search, run in this process (one device);
- ``bootstrap``: UF1, UAR and accuracy with 95% subject-bootstrap intervals;
- ``fit``, ``export``, ``predict``: the deployable model on every subject at the settings
  the search chose most often, its ONNX bundle, one apex frame through ``predict``.

Then ``train_macro`` and ``loso`` run again from scratch, same seed, into fresh folders,
and the record says whether the second run's predictions and probabilities are
bit-identical to the first's (``agreement``). Every override of the paper's settings is
listed under ``overrides``; ``paper_settings`` is true only when there is none.

Peak memory: ``peak_rss_mib`` is the process's resident-set high-water mark when the stage
ends (it never decreases, so a stage's own peak is at most that); on CUDA,
``cuda_max_allocated_mib`` is torch's peak allocation within the stage.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Bootstrap resamples behind every interval (as the book's chapters).
N_RESAMPLES = 1000
#: Where the record says it comes from.
SCRIPT = "bench/paper_profile.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="data root (SynthME or the licensed datasets)")
    ap.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="JSON record to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--macro-epochs", type=int, default=None, help="override the profile's 100 (tiny checks)")
    ap.add_argument("--micro-epochs", type=int, default=None,
                    help="override the fine-tuning epochs and the grid's epochs (20, 40) with this one value")
    ap.add_argument("--grid", choices=("paper", "one"), default="paper",
                    help="paper: the profile's 12-point grid; one: only the profile's batch size and lr")
    ap.add_argument("--per-subject-class", type=int, default=None,
                    help="keep at most this many crops of each class per subject (tiny checks)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the profile's, 4)")
    ap.add_argument("--runs", type=int, choices=(1, 2), default=2,
                    help="2: train_macro and loso again from scratch, to compare (default)")
    ap.add_argument("--work", type=Path, default=None,
                    help="folder for crops, checkpoints and runs (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    for name in ("macro_epochs", "micro_epochs", "per_subject_class", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            ap.error(f"--{name.replace('_', '-')}: expected an int >= 1, got {value}")
    return args


def peak_rss_mib() -> float:
    """This process's resident-set high-water mark, MiB (Linux reports KiB)."""
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@contextmanager
def stage(name: str, stages: dict[str, dict[str, Any]], device: str) -> Iterator[None]:
    """Time the block; record its wall time and peak memory under ``stages[name]``."""
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda:
        # Queued kernels would otherwise be timed in the next stage.
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize(dev)
    entry: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 3), "peak_rss_mib": round(peak_rss_mib(), 1)}
    if cuda:
        entry["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    stages[name] = entry
    print(f"{name}: {entry}", flush=True)


def subsample(crops: Any, per_subject_class: int | None) -> Any:
    """The first ``per_subject_class`` crops of each (subject, class), in table order."""
    if per_subject_class is None:
        return crops
    keys = pd.Series(crops.groups) + "|" + crops.meta["label"].astype(str).to_numpy()
    keep = keys.groupby(keys).cumcount().to_numpy() < per_subject_class
    return crops.subset(np.flatnonzero(keep))


def build_profile(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The paper profile on ``--device`` with the requested overrides, and those overrides."""
    from merlib.config import get_profile

    prof = get_profile("paper", args.device)
    overrides: dict[str, Any] = {}
    macro = {"seed": args.seed}
    micro = {"seed": args.seed}
    search: dict[str, Any] = {}
    if args.threads is not None:
        macro["num_threads"] = micro["num_threads"] = args.threads
        overrides["threads"] = args.threads
    if args.macro_epochs is not None:
        macro["epochs"] = overrides["macro_epochs"] = args.macro_epochs
    if args.micro_epochs is not None:
        micro["epochs"] = overrides["micro_epochs"] = args.micro_epochs
        search["epochs"] = (args.micro_epochs,)
    if args.grid == "one":
        search.update(batch_size=(prof.micro.batch_size,), lr=(prof.micro.lr,))
        overrides["grid"] = "one point: the profile's batch size and lr"
    if args.per_subject_class is not None:
        overrides["per_subject_class"] = args.per_subject_class
    return (type(prof)(prof.name, prof.macro.replace(**macro), prof.micro.replace(**micro),
                       prof.search.replace(**search)), overrides)


def run_method(crops: dict[str, Any], prof: Any, out: Path, stages: dict[str, dict[str, Any]],
               device: str) -> tuple[Any, Any]:
    """Macro transfer, then LOSO with the grid search: (TransferResult, LosoResult)."""
    from merlib.evaluation.protocol import evaluate_loso
    from merlib.training.transfer import train_macro

    with stage("train_macro", stages, device):
        transfer = train_macro(crops["macro"], prof.macro, out / "transfer", resume=False)
    with stage("loso", stages, device):
        # One process: the device is one GPU (Dask workers would each open a context on it).
        result = evaluate_loso(crops["composite"], prof.micro, out / "loso", transfer=transfer,
                               search=prof.search, n_workers=1, resume=False)
    return transfer, result


def agreement(first: tuple[Any, Any], second: tuple[Any, Any]) -> dict[str, Any]:
    """How the second run's transferred weights and predictions compare with the first's."""
    import torch

    (t1, r1), (t2, r2) = first, second
    w1, w2 = t1.extractor_state(), t2.extractor_state()
    weights_same = set(w1) == set(w2) and all(torch.equal(w1[k], w2[k]) for k in w1)
    p1, p2 = r1.predictions, r2.predictions
    preds = [c for c in p1.columns if c.startswith("pred_")]
    probs = [c for c in p1.columns if c.startswith("p_")]
    differing = int((p1[preds].to_numpy() != p2[preds].to_numpy()).any(axis=1).sum())
    a, b = p1[probs].to_numpy(np.float64), p2[probs].to_numpy(np.float64)
    return {
        "transfer_weights_bit_identical": bool(weights_same),
        "predictions_identical": differing == 0,
        "samples_with_a_different_prediction": differing,
        "probabilities_bit_identical": bool(np.array_equal(a, b, equal_nan=True)),
        "max_abs_probability_difference": float(np.nanmax(np.abs(a - b))) if a.size else 0.0,
        "grid_choices_identical": bool(r1.folds["grid_index"].equals(r2.folds["grid_index"])),
        "uf1_svm": [r1.score("uf1", "svm"), r2.score("uf1", "svm")],
    }


def determinism() -> dict[str, Any]:
    """The settings that decide whether two runs compute the same sums (read after a run:
    :func:`merlib.training.engine.seed_everything` set them)."""
    import torch

    env = ("CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY",
           "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "LD_PRELOAD")
    out: dict[str, Any] = {
        "torch_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_enabled": torch.backends.mkldnn.enabled,
        "loso_workers": 1,
    }
    out["env"] = {k: os.environ.get(k) for k in env}
    return out


def versions() -> dict[str, Any]:
    import onnxruntime
    import sklearn
    import timm
    import torch

    from merlib.provenance import code_version

    return {"python": platform.python_version(), "merlib": code_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "timm": timm.__version__,
            "numpy": np.__version__, "scikit_learn": sklearn.__version__, "onnxruntime": onnxruntime.__version__}


def scores_with_intervals(result: Any, seed: int) -> list[dict[str, Any]]:
    """UF1 / UAR / accuracy with 95% subject-bootstrap intervals, SVM and softmax heads,
    the composite and each part."""
    from merlib.evaluation.bootstrap import bootstrap_table

    table = bootstrap_table(result.predictions, ["pred_svm", "pred_softmax"], n_resamples=N_RESAMPLES, seed=seed)
    return json.loads(table.round(4).to_json(orient="records"))


def deploy(crops: dict[str, Any], prof: Any, result: Any, transfer: Any, out: Path, root: Path,
           stages: dict[str, dict[str, Any]], device: str) -> dict[str, Any]:
    """fit (every subject, the most chosen grid point), export, predict one apex frame."""
    from merlib.evaluation.variants import most_chosen
    from merlib.inference.bundle import export_bundle, load_bundle
    from merlib.inference.predict import Predictor, fit_model, prepare_images

    composite = crops["composite"]
    cfg = most_chosen(result, prof.micro)
    with stage("fit", stages, device):
        training = fit_model(composite, cfg, out / "model", transfer=transfer)
    with stage("export", stages, device):
        meta = load_bundle(out / "model").meta
        images = prepare_images(composite.X[:8], int(meta["image_size"]), float(meta["mean"]), float(meta["std"]))
        # torchscript: the quicker exporter (the graph is checked against torch either way).
        onnx = export_bundle(out / "model", out / "bundle", check_images=images, exporter="torchscript")
    frame = root / composite.meta["frame_path"].iloc[0]
    with stage("predict", stages, device):
        row = Predictor(out / "bundle").predict_images([frame]).iloc[0]
    return {"settings": {k: getattr(cfg, k) for k in ("batch_size", "lr", "epochs")},
            "svm": training["svm_search"], "train_acc": training["train_acc"],
            "export_agreement": onnx["agreement"]["fp32"], "predicted": {"image": str(frame), "label": row.get("label"),
                                                                         "status": row["status"]}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from merlib.provenance import Provenance, machine_summary
    from merlib.training.crops import prepare_crop_sets
    from merlib.training.engine import resolve_device

    resolve_device(args.device)  # a bad name, or CUDA without a GPU, fails before any work
    prof, overrides = build_profile(args)
    root = args.root.expanduser().resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="paper-profile-"))
    stages: dict[str, dict[str, Any]] = {}
    t_start = time.perf_counter()
    try:
        prov = Provenance.for_data(root, profile="paper", device=args.device, seed=args.seed, **overrides)
        with stage("preprocess", stages, args.device), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*composite samples present")
            crops = prepare_crop_sets(root, work / "faces", sets=("composite", "macro"), seed=args.seed,
                                      allow_missing=True, provenance=prov)
        crops = {k: subsample(v, args.per_subject_class) for k, v in crops.items()}
        first = run_method(crops, prof, work / "run-1", stages, args.device)
        with stage("bootstrap", stages, args.device):
            scores = scores_with_intervals(first[1], args.seed)
        deployed = deploy(crops, prof, first[1], first[0], work / "run-1", root, stages, args.device)
        record: dict[str, Any] = {
            "title": "The full method at the paper's settings, timed",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "script": SCRIPT, "command": " ".join([SCRIPT, *(argv if argv is not None else sys.argv[1:])]),
            "paper_settings": not overrides, "overrides": overrides,
            "device": args.device, "machine": machine_summary(args.device), "provenance": prov.as_dict(),
            "seed": args.seed, "profile": prof.as_dict(),
            "data": {"root": str(root), "kind": prov.data_kind, "fingerprint": prov.data_fingerprint,
                     "composite_crops": len(crops["composite"]), "macro_crops": len(crops["macro"]),
                     "composite_subjects": int(len(set(crops["composite"].groups)))},
            "macro": {"best_epoch": first[0].best_epoch, "best_val_acc": first[0].best_val_acc},
            "loso": {"selection": first[1].selection, "folds": len(first[1].folds),
                     "grid_points": len(prof.search.batch_size) * len(prof.search.lr) * len(prof.search.epochs),
                     "tasks": first[1].tasks},
            "scores": scores, "deployed": deployed, "stages": stages,
        }
        if args.runs == 2:
            again: dict[str, dict[str, Any]] = {}
            second = run_method(crops, prof, work / "run-2", again, args.device)
            record["second_run"] = {"stages": again, "agreement": agreement(first, second)}
        record["determinism"] = determinism()
        record["versions"] = versions()
        record["total_seconds"] = round(time.perf_counter() - t_start, 1)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, default=str) + "\n")
    print(f"record -> {args.out} ({record['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    from merlib.errors import MerlibError

    try:
        sys.exit(main())
    except MerlibError as err:  # bad settings or data: one line, as the merlib command
        sys.exit(f"paper_profile: error: {err}")
