"""The ``merlib fit``, ``merlib export`` and ``merlib predict`` subcommands.

:func:`add_parsers` adds them to the ``merlib`` command's subparsers (``merlib/cli.py``
registers them); each handler is thin and calls :mod:`merlib.inference`.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path


def _cmd_fit(args: argparse.Namespace) -> int:
    from merlib.config import get_profile
    from merlib.inference.predict import fit_model
    from merlib.training.crops import load_crop_set

    profile = get_profile(args.profile, args.device)
    changes = {k: v for k, v in (("seed", args.seed), ("num_threads", args.threads), ("epochs", args.epochs),
                                 ("lr", args.lr), ("batch_size", args.batch_size),
                                 ("classifier", args.classifier)) if v is not None}
    cfg = profile.micro.replace(**changes)
    crops = load_crop_set(args.crops, set=args.set)
    record = fit_model(crops, cfg, args.out, transfer=args.transfer)
    print(f"{record['n_crops']} crops of {record['subjects']} subjects, {cfg.arch} at {cfg.image_size}px, "
          f"{cfg.epochs} epochs ({profile.name} profile), {record['seconds']:.1f} s -> {args.out}")
    svm = record["svm_search"]
    print(f"training accuracy {record['train_acc']:.4f}; SVM C={svm['C']} kernel={svm['kernel']}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from merlib.inference.bundle import export_bundle, load_bundle
    from merlib.inference.predict import prepare_images
    from merlib.training.crops import load_crop_set

    check = calib = None
    if args.crops is not None:
        bundle = load_bundle(args.model)
        crops = load_crop_set(args.crops, set=args.set)
        # Calibrate on some subjects, check agreement on the others: held out from the
        # calibration, as the issue asks of the agreement figures.
        groups = crops.groups
        subjects = sorted(set(groups))
        held = set(subjects[::2]) if len(subjects) > 1 else set(subjects)
        is_held = [g in held for g in groups]
        meta = bundle.meta
        images = prepare_images(crops.X, int(meta["image_size"]), float(meta["mean"]), float(meta["std"]))
        check = images[is_held]
        calib = images[[not h for h in is_held]] if len(subjects) > 1 else images
    record = export_bundle(args.model, args.out, check_images=check, calibration=calib,
                           precision=args.precision, exporter=args.exporter)
    print(f"bundle -> {args.out} (default precision {record['default']}; checked on {record['check_images']})")
    for name, agree in record["agreement"].items():
        print(f"{name}: max |logit diff| {agree['max_logit_diff']:.3g}, argmax agreement "
              f"{agree['argmax_agree']:.4f} on {agree['n']} images")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from merlib.inference.predict import Predictor, predict_path

    predictor = Predictor(args.model, runtime=args.runtime, precision=args.precision, threads=args.threads)
    table, info = predict_path(predictor, args.input, clip=args.clip or None, fps=args.fps, annotate=args.annotate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    if info["kind"] == "images":
        failed = int((table["status"] == "failed").sum())
        print(f"{len(table)} image(s), {failed} without a usable face -> {args.out}")
    else:
        timing = info["timing"]
        print(f"{info['frames']} frames ({info['frames_with_face']} with a face) at {info['fps']:g} fps: "
              f"{len(table)} interval(s) -> {args.out}")
        print(f"processed at {timing.fps:.1f} frames/s; seconds per stage: "
              + json.dumps({k: round(v, 3) for k, v in timing.seconds.items()}))
        if args.annotate is not None:
            print(f"annotated video -> {args.annotate}")
    return 0


def add_parsers(sub: argparse._SubParsersAction,
                parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add ``fit``, ``export`` and ``predict`` to the ``merlib`` subparsers.

    Parameters
    ----------
    sub : argparse subparsers
    parents : sequence of ArgumentParser
        The flags every ``merlib`` command takes (:func:`merlib.cli.common_flags`), passed
        in rather than imported so that this module does not depend on the command.
    """
    parents = list(parents)
    s = sub.add_parser("fit", parents=parents,
                       help="train the deployed model on every subject: fine-tuned network + SVM")
    s.add_argument("--crops", type=Path, required=True,
                   help="`merlib preprocess` output folder, or crops.npz with crops.csv beside it")
    s.add_argument("--set", default="composite", help="set to read from a preprocess folder (default: %(default)s)")
    s.add_argument("--out", type=Path, required=True, help="model folder to write")
    s.add_argument("--transfer", type=Path, default=None, help="`merlib train-macro` output folder")
    s.add_argument("--profile", choices=["smoke", "paper"], default="smoke")
    s.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    s.add_argument("--epochs", type=int, default=None, help="override the profile (e.g. the grid's choice)")
    s.add_argument("--lr", type=float, default=None, help="override the profile's learning rate")
    s.add_argument("--batch-size", type=int, default=None, help="override the profile's batch size")
    s.add_argument("--classifier", choices=["svm", "softmax"], default=None, help="what `label` is in predictions")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--threads", type=int, default=None, help="torch threads")
    s.set_defaults(func=_cmd_fit)

    s = sub.add_parser("export", parents=parents,
                       help="bundle a fitted model: weights, ONNX graph, SVM arrays, settings")
    s.add_argument("--model", type=Path, required=True, help="`merlib fit` output folder")
    s.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    s.add_argument("--runtime", choices=["onnxruntime"], default="onnxruntime",
                   help="the graph format written (ONNX); `merlib predict --runtime` runs it in "
                        "onnxruntime or OpenVINO")
    s.add_argument("--precision", choices=["fp32", "bf16", "int8", "auto"], default="fp32",
                   help="auto: try bf16 (CPUs with AMX / AVX512_BF16), then int8; each is the default "
                        "only if it agrees with fp32 on >= 99%% of crops")
    s.add_argument("--crops", type=Path, default=None,
                   help="crops to check agreement on (and to calibrate int8); half the subjects each")
    s.add_argument("--set", default="composite", help="set to read from a preprocess folder")
    s.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo")
    s.set_defaults(func=_cmd_export)

    s = sub.add_parser("predict", parents=parents,
                       help="classify images, or spot and classify micro-expressions in a video")
    s.add_argument("--model", type=Path, required=True, help="bundle (`merlib export`) or model folder")
    s.add_argument("--input", type=Path, required=True,
                   help="an image, a folder of images, a video file, or a folder of frames with --clip")
    s.add_argument("--out", type=Path, required=True, help="predictions CSV")
    s.add_argument("--clip", action="store_true", help="take a folder of frames as one clip (spotting)")
    s.add_argument("--fps", type=float, default=None, help="frame rate of a frame folder (default 30)")
    s.add_argument("--annotate", type=Path, default=None, help="write the clip with boxes and labels (mp4)")
    s.add_argument("--runtime", choices=["auto", "onnxruntime", "openvino", "torch"], default="auto",
                   help="auto: the runtime that serves the precision (OpenVINO for bf16)")
    s.add_argument("--precision", choices=["fp32", "bf16", "int8"], default=None, help="default: the bundle's")
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=_cmd_predict)
