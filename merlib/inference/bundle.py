"""The deployable model: a folder holding everything prediction needs, and no pickle.

``merlib fit`` writes a *model folder*; ``merlib export`` copies it into a *bundle* and
adds the ONNX graph(s). Both have the same layout:

==========================  ===============================================================
``bundle.json``             format and merlib version, arch, input size and normalisation,
                            labels, alignment settings (:class:`~merlib.faces.config.AlignConfig`),
                            classifier choice, SVM settings, training record, provenance;
                            for a bundle also the graphs, their agreement with torch and the
                            precision used by default
``weights.safetensors``     the fine-tuned network's state (torch, safetensors)
``svm.safetensors``         the SVM as arrays (:mod:`merlib.inference.svm`)
``model.onnx``              bundle only: fp32 graph, image -> (logits, features); OpenVINO's
                            bf16 runs this graph too (bf16 is a runtime setting)
``model.int8.onnx``         bundle only, optional: statically quantised graph
==========================  ===============================================================

:meth:`Bundle.open` runs a bundle's graph in the runtime that serves its precision
(onnxruntime for fp32 and int8, OpenVINO for bf16).

A bundle records :data:`BUNDLE_FORMAT`; reading one of another format (an older or newer
merlib that laid the files out differently) raises :class:`IncompatibleBundleError`
naming both versions, instead of failing somewhere inside prediction.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy, save_file as save_numpy
from safetensors.torch import load_file as load_torch, save_file as save_torch
from torch import nn

import merlib
from merlib.data.schema import LABELS
from merlib.errors import ConfigError, DataLayoutError
from merlib.faces.config import AlignConfig
from merlib.inference.svm import ArraySVM

#: Layout version of model folders and bundles; bump when the files change meaning.
#: 2: the SVM may read the early grid (``svm_early_grid`` in ``finetune``), which a
#: merlib reading only format 1 would not compute. A bundle without it is still written
#: as format 1, so older merlib versions keep reading it.
BUNDLE_FORMAT = 2
READ_FORMATS: tuple[int, ...] = (1, 2)
META_FILE = "bundle.json"
WEIGHTS_FILE = "weights.safetensors"
SVM_FILE = "svm.safetensors"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


class IncompatibleBundleError(ConfigError):
    """A model folder or bundle written in another layout version (names both)."""


def _versions() -> dict[str, str]:
    from merlib._torch_compat import import_timm

    out = {"merlib": merlib.__version__, "torch": torch.__version__, "timm": import_timm().__version__}
    for name in ("onnxruntime", "openvino"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


def save_model(out_dir: str | os.PathLike, model: nn.Module, svm_arrays: dict[str, np.ndarray],
               svm_info: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write a model folder (:data:`META_FILE`, weights, SVM); returns the folder.

    Parameters
    ----------
    out_dir : path
    model : torch.nn.Module
        From :func:`~merlib.models.backbone.create_backbone`.
    svm_arrays, svm_info
        From :func:`~merlib.inference.svm.svm_to_arrays`.
    meta : dict
        Must hold ``arch``, ``image_size``, ``mean``, ``std``, ``align`` (an AlignConfig
        dict), ``classifier``; anything else JSON-ready is kept (training record,
        provenance).
    """
    missing = [k for k in ("arch", "image_size", "mean", "std", "align", "classifier") if k not in meta]
    if missing:
        raise ConfigError(f"meta: missing {missing}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_torch(state, str(out / WEIGHTS_FILE))
    save_numpy({k: np.ascontiguousarray(v) for k, v in svm_arrays.items()}, str(out / SVM_FILE))
    record = {"format": "merlib-model", "bundle_format": BUNDLE_FORMAT if early_grid_of(meta) else 1,
              "versions": _versions(),
              "labels": list(LABELS), "svm": svm_info, "onnx": None, **meta}
    _write_json(out / META_FILE, record)
    return out


def early_grid_of(meta: dict[str, Any]) -> int:
    """The ``svm_early_grid`` recorded in a model's ``finetune`` settings (0 in bundles
    written before it existed)."""
    return int(meta.get("finetune", {}).get("svm_early_grid", 0))


def _write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """``bundle.json`` of a model folder or bundle, checked for a compatible format.

    Raises
    ------
    DataLayoutError
        ``path`` is not a folder with a readable ``bundle.json``.
    IncompatibleBundleError
        A format not in :data:`READ_FORMATS`.
    """
    root = Path(path)
    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise DataLayoutError(f"model: {root} is not a model folder or bundle (no {META_FILE}; "
                              f"make one with `merlib fit` / `merlib export`)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataLayoutError(f"model: {meta_path} is not valid JSON ({err})") from err
    fmt = meta.get("bundle_format")
    made_by = meta.get("versions", {}).get("merlib", "an unknown merlib")
    if fmt not in READ_FORMATS:
        newer = isinstance(fmt, int) and fmt > BUNDLE_FORMAT
        raise IncompatibleBundleError(
            f"model: {root} has bundle format {fmt!r} (written by merlib {made_by}); merlib "
            f"{merlib.__version__} reads formats {', '.join(map(str, READ_FORMATS))}: "
            + ("upgrade merlib" if newer else "export it again with this merlib (`merlib fit` / `merlib export`)"))
    for name in (WEIGHTS_FILE, SVM_FILE):
        if not (root / name).is_file():
            raise DataLayoutError(f"model: {root} lacks {name}")
    return meta


@dataclass
class Bundle:
    """A loaded model folder or bundle.

    Attributes
    ----------
    root : Path
    meta : dict
        ``bundle.json``.
    svm : ArraySVM
    """

    root: Path
    meta: dict[str, Any]
    svm: ArraySVM

    @property
    def align(self) -> AlignConfig:
        return AlignConfig.from_dict(self.meta["align"])

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def early_grid(self) -> int:
        """The ``svm_early_grid`` the SVM was fitted with (:func:`early_grid_of`)."""
        return early_grid_of(self.meta)

    def torch_model(self) -> nn.Module:
        """The fp32 network, eval mode, weights loaded."""
        from merlib.models.backbone import create_backbone, load_weights

        model = create_backbone(self.meta["arch"], num_classes=len(self.labels),
                                image_size=int(self.meta["image_size"]))
        try:
            load_weights(model, load_torch(str(self.root / WEIGHTS_FILE)))
        except (ValueError, RuntimeError) as err:
            saved = self.meta.get("versions", {}).get("timm", "?")
            raise IncompatibleBundleError(f"model: {self.root / WEIGHTS_FILE} does not fit {self.meta['arch']} "
                                          f"as built by this timm (saved with timm {saved}): {err}") from err
        return model.eval()

    def onnx_path(self, precision: str | None = None) -> Path:
        """The graph of ``precision`` (default: the bundle's default; bf16's is the fp32 graph)."""
        onnx = self.meta.get("onnx")
        if not onnx:
            raise ConfigError(f"model: {self.root} is a model folder without an ONNX graph; "
                              f"run `merlib export` (or use runtime 'torch')")
        precision = precision or onnx["default"]
        if precision not in onnx["graphs"]:
            raise ConfigError(f"precision: {self.root} holds {sorted(onnx['graphs'])}, got {precision!r}")
        return self.root / onnx["graphs"][precision]

    def open(self, runtime: str | None = None, precision: str | None = None, threads: int = 2):
        """The bundle's graph in a runtime (:func:`~merlib.inference.runtime.open_model`).

        Parameters
        ----------
        runtime : {"onnxruntime", "openvino"}, optional
            Default: OpenVINO for bf16, onnxruntime otherwise.
        precision : {"fp32", "bf16", "int8"}, optional
            Default: the bundle's default.
        threads : int, default=2

        Returns
        -------
        OnnxModel or OpenVinoModel
            ``run(images) -> (logits, features)``.
        """
        from merlib.inference.runtime import open_model

        path = self.onnx_path(precision)
        precision = precision or self.meta["onnx"]["default"]
        runtime = runtime or ("openvino" if precision == "bf16" else "onnxruntime")
        return open_model(path, runtime, precision, threads)


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read a model folder or bundle (see :func:`read_meta` for the errors)."""
    root = Path(path)
    meta = read_meta(root)
    arrays = load_numpy(str(root / SVM_FILE))
    return Bundle(root, meta, ArraySVM(arrays, meta["svm"]))


def export_bundle(model_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                  check_images: np.ndarray | None = None, calibration: np.ndarray | None = None,
                  precision: str = "fp32", exporter: str = "dynamo") -> dict[str, Any]:
    """Copy a model folder into a bundle with its ONNX graph(s), checked against torch.

    Parameters
    ----------
    model_dir : path
        ``merlib fit`` output.
    out_dir : path
        The bundle (created; may be ``model_dir`` itself).
    check_images : ndarray of shape (N, 1, S, S), float32, optional
        Held-out crops, normalised: the agreement of each precision with torch is
        measured on them. Without them, 16 uniform-noise images are used (this checks the
        graph, not the decisions on faces) and the record says so.
    calibration : ndarray of shape (M, 1, S, S), float32, optional
        Training crops for int8 calibration (required for ``precision`` int8 or auto).
    precision : {"fp32", "bf16", "int8", "auto"}
        ``bf16`` checks the fp32 graph run by OpenVINO in bf16 (needs OpenVINO and a CPU
        with bf16); ``int8`` writes and checks the quantised graph; either is then the
        default regardless of its agreement (which is recorded). ``auto`` checks int8,
        and bf16 where this machine can run it, and makes the default the first of bf16
        (the quickest measured), int8 whose argmax agreement with fp32 torch is at least
        :data:`~merlib.inference.export.MIN_AGREEMENT`; else fp32.
    exporter : {"dynamo", "torchscript"}

    Returns
    -------
    dict
        The ``onnx`` record written into ``bundle.json``: ``graphs`` (precision -> file),
        ``runtimes`` (precision -> the runtime that serves it), ``agreement`` (precision
        -> :class:`~merlib.inference.export.Agreement` as a dict), ``default``,
        ``default_rule``, and how the check was made.
    """
    from merlib.inference.export import MIN_AGREEMENT, OPSET, check_agreement, export_onnx, quantize_int8
    from merlib.inference.runtime import OnnxModel, OpenVinoModel, bf16_supported

    if precision not in ("fp32", "bf16", "int8", "auto"):
        raise ConfigError(f"precision: expected one of ('fp32', 'bf16', 'int8', 'auto'), got {precision!r}")
    if precision == "bf16" and not bf16_supported():
        raise ConfigError("precision: bf16 needs OpenVINO (pip install openvino==2026.4.1, as pyproject.toml "
                          "pins it) and a CPU with AVX512_BF16 or AMX")
    if precision in ("int8", "auto") and (calibration is None or len(calibration) == 0):
        raise ConfigError("calibration: int8 needs training crops to calibrate on (--crops)")
    src, out = Path(model_dir), Path(out_dir)
    bundle = load_bundle(src)
    if out.resolve() != src.resolve():
        out.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_FILE, SVM_FILE):
            shutil.copyfile(src / name, out / name)
    model = bundle.torch_model()
    size = int(bundle.meta["image_size"])
    if check_images is None:
        check_images = np.random.default_rng(0).random((16, 1, size, size), dtype=np.float32)
        check_source = "16 uniform-noise images (no held-out crops given)"
    else:
        check_source = f"{len(check_images)} held-out crops"
    grid = bundle.early_grid
    graph = export_onnx(model, size, out / ONNX_FILES["fp32"], exporter=exporter, early_grid=grid)
    record: dict[str, Any] = {"graphs": {"fp32": ONNX_FILES["fp32"]}, "runtimes": {"fp32": "onnxruntime"},
                              "default": "fp32", "opset": OPSET, "exporter": exporter, "check_images": check_source,
                              "agreement": {"fp32": check_agreement(model, OnnxModel(graph), check_images,
                                                                          early_grid=grid).as_dict()}}
    if precision == "bf16" or (precision == "auto" and bf16_supported()):
        record["graphs"]["bf16"] = ONNX_FILES["fp32"]
        record["runtimes"]["bf16"] = "openvino"
        record["agreement"]["bf16"] = check_agreement(model, OpenVinoModel(graph, precision="bf16"),
                                                      check_images, early_grid=grid).as_dict()
    if precision in ("int8", "auto"):
        q = quantize_int8(graph, calibration)
        (out / ONNX_FILES["int8"]).write_bytes(q)
        record["graphs"]["int8"] = ONNX_FILES["int8"]
        record["runtimes"]["int8"] = "onnxruntime"
        record["agreement"]["int8"] = check_agreement(model, OnnxModel(q), check_images,
                                                      early_grid=grid).as_dict()
    if precision == "auto":
        agreeing = [p for p in ("bf16", "int8")
                    if p in record["agreement"] and record["agreement"][p]["argmax_agree"] >= MIN_AGREEMENT]
        record["default"] = agreeing[0] if agreeing else "fp32"
        record["default_rule"] = (f"the first of bf16, int8 (quickest first) whose argmax agreement with fp32 "
                                  f"is >= {MIN_AGREEMENT}, else fp32")
    else:
        record["default"] = precision
        record["default_rule"] = "chosen by the caller"
    meta = dict(bundle.meta, format="merlib-bundle", onnx=record, versions=_versions())
    _write_json(out / META_FILE, meta)
    return record
