"""``fit`` (train the deployed model on every subject) and prediction on images and clips.

:func:`fit_model` is LOSO's per-fold work without a test subject: fine-tune on all the
crops (:func:`~merlib.training.finetune.finetune`), extract their features
(:func:`~merlib.training.engine.predict`), fit the SVM with its own subject-wise search
(:func:`~merlib.training.svm.fit_svm`), and save a model folder
(:mod:`merlib.inference.bundle`).

:class:`Predictor` runs a model folder or bundle:

- :meth:`Predictor.predict_images`: each image is aligned as in pre-processing
  (:func:`~merlib.faces.pipeline.process_frame`) and classified; one row per image.
- :meth:`Predictor.predict_clip`: a video or a folder of frames taken as a clip. The face
  is tracked (:class:`~merlib.inference.video.FaceTracker`), movements are spotted
  (:func:`~merlib.faces.apex.spot`), each interval's apex is placed by optical
  flow from its start (:func:`merlib.faces.apex.estimate_apex`), and only the apex frames
  go through the alignment and the network; one row per interval. With ``annotate`` the
  clip is written again with the face box, the intervals and their labels.

An apex frame is aligned exactly as pre-processing aligns a dataset's apex frame: the
face is detected again on that frame and its landmarks fitted in the detector's box
(:func:`~merlib.faces.pipeline.find_landmarks`), not taken from the tracker (whose box
is carried between detections and gives slightly different landmarks). Given the same
frame pixels, the crop is therefore the crop of :mod:`merlib.faces.pipeline`, and the
class the one LOSO gives that crop (``tests/inference/test_end_to_end.py``). What still
differs from a dataset sample: the apex is *spotted*, not annotated (a few frames off on
the flat top of an expression), and a lossy video codec changes the pixels.

Labels: ``label`` is the bundle's classifier (the SVM unless it was fitted with
``classifier="softmax"``); ``p_<class>`` are the network's softmax probabilities and
``svm_<class>`` the SVM's one-vs-rest scores (an SVC gives no calibrated probabilities).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch

from merlib.config import FinetuneConfig
from merlib.errors import ConfigError, MerlibError
from merlib.faces.config import AlignConfig
from merlib.faces.pipeline import align, find_landmarks, process_frame
from merlib.inference.bundle import Bundle, IncompatibleBundleError, load_bundle, save_model
from merlib.faces.apex import Interval, MotionCropper, SpotConfig, estimate_apex, spot
from merlib.inference.svm import svm_to_arrays
from merlib.inference.video import (IMAGE_SUFFIXES, FaceTracker, FolderSource, draw_annotation, grey_of,
                                    open_source)
from merlib.training.batches import resize_crops
from merlib.training.crops import CropSet

#: ``auto``: the runtime that serves the chosen precision (OpenVINO for bf16, else
#: onnxruntime; :meth:`~merlib.inference.bundle.Bundle.open`).
RUNTIMES: tuple[str, ...] = ("auto", "onnxruntime", "openvino", "torch")


class NoFaceError(MerlibError, ValueError):
    """No face could be found where one is needed (names the input)."""


def _align_settings(crops: CropSet) -> dict[str, Any]:
    """The alignment the crops were made with: the preprocess run's, else the defaults
    at the crops' size (an .npz crop set does not record it)."""
    src = Path(crops.source) if crops.source else None
    run = src / "run.json" if src is not None and src.is_dir() else None
    if run is not None and run.is_file():
        return dict(json.loads(run.read_text())["config"])
    return AlignConfig(crop_size=int(crops.X.shape[1])).as_dict()


def fit_model(crops: CropSet, cfg: FinetuneConfig, out_dir: str | os.PathLike, *,
              transfer: Any = None, seed: int | None = None) -> dict[str, Any]:
    """Train the deployable model on every crop and write a model folder.

    Parameters
    ----------
    crops : CropSet
        Every subject's crops (no test subject is held out: LOSO estimates how well this
        does; fit trains what is deployed).
    cfg : FinetuneConfig
        The settings (e.g. a profile's, or those the grid search chose).
    out_dir : path
    transfer : path, TransferResult or dict, optional
        ``merlib train-macro`` output, as for LOSO.
    seed : int, optional

    Returns
    -------
    dict
        The training record written into ``bundle.json`` (``n_crops``, ``subjects``,
        ``svm`` search result, ``train_acc``, ``seconds``).
    """
    from merlib.evaluation.fold import resolve_transfer
    from merlib.models.backbone import input_normalisation
    from merlib.training.batches import CropDataset
    from merlib.training.engine import predict, resolve_device
    from merlib.training.finetune import finetune
    from merlib.training.svm import fit_svm, search_settings

    if len(crops) < 2:
        raise ConfigError(f"crops: expected at least 2 crops to train on, got {len(crops)}")
    t0 = time.perf_counter()
    state = resolve_transfer(transfer, cfg)
    result = finetune(crops, cfg, transfer_state=state, seed=seed)
    model = result.model.cpu().eval()
    mean, std = input_normalisation(model)
    features, _ = predict(model, CropDataset(crops.X, crops.y, image_size=cfg.image_size, mean=mean, std=std),
                          resolve_device("cpu"), early_grid=cfg.svm_early_grid)
    svm, info = fit_svm(features, crops.y, crops.groups, **search_settings(cfg),
                        seed=cfg.seed if seed is None else seed)
    arrays, svm_info = svm_to_arrays(svm)
    training = {"n_crops": len(crops), "subjects": int(len(np.unique(crops.groups))),
                "crops_source": crops.source, "crops_fingerprint": crops.fingerprint(),
                "data_kind": crops.data_kind, "svm_search": info,
                "train_acc": float(result.curves["train_acc"].iloc[-1]),
                "transfer": None if transfer is None else str(getattr(transfer, "out_dir", transfer))
                if not isinstance(transfer, dict) else "tensors", "seconds": time.perf_counter() - t0}
    from merlib.provenance import code_version

    meta = {"arch": cfg.arch, "image_size": cfg.image_size, "mean": mean, "std": std,
            "align": _align_settings(crops), "classifier": cfg.classifier, "finetune": cfg.as_dict(),
            "training": training, "provenance": {"data_kind": crops.data_kind, "code_version": code_version()}}
    save_model(out_dir, model, arrays, svm_info, meta)
    return training


def prepare_images(crops: np.ndarray, size: int, mean: float, std: float) -> np.ndarray:
    """Aligned crops uint8 (N, S, S) -> network input float32 (N, 1, size, size), resized
    and normalised exactly as training's :class:`~merlib.training.batches.CropDataset`."""
    x = resize_crops(np.asarray(crops, np.uint8), size).numpy().astype(np.float32) / 255.0
    return ((x - mean) / std).astype(np.float32)


@dataclass
class Timing:
    """Wall-clock seconds per stage of :meth:`Predictor.predict_clip`.

    ``decode``, ``track`` (detection + landmarks), ``motion`` (motion crops), ``spot``
    (first pass); ``reread`` (decoding frames again: only when the clip was too long to
    keep its grey frames in memory, see ``buffer_mb``), ``apex`` (optical-flow apex
    refinement), ``classify`` (detection and alignment of the apex frames, network, SVM);
    ``annotate`` (writing the annotated copy, not counted in :attr:`fps`).
    """

    frames: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("decode", "track", "motion", "spot", "reread", "apex", "classify", "annotate"), 0.0))

    @property
    def total(self) -> float:
        """Seconds of everything but writing the annotated copy."""
        return float(sum(v for k, v in self.seconds.items() if k != "annotate"))

    @property
    def fps(self) -> float:
        return self.frames / self.total if self.total > 0 else float("nan")


class Predictor:
    """A model folder or bundle, ready to classify crops, images and clips.

    Parameters
    ----------
    model : path or Bundle
    runtime : {"auto", "onnxruntime", "openvino", "torch"}, default="auto"
        The graph runtimes need a bundle (``merlib export``); ``auto`` picks the one that
        serves ``precision`` (OpenVINO for bf16); ``torch`` runs the weights.
    precision : {"fp32", "bf16", "int8"}, optional
        Which graph of the bundle (default: the bundle's default).
    threads : int, default=2
    """

    def __init__(self, model: str | os.PathLike | Bundle, runtime: str = "auto",
                 precision: str | None = None, threads: int = 2) -> None:
        if runtime not in RUNTIMES:
            raise ConfigError(f"runtime: expected one of {RUNTIMES}, got {runtime!r}")
        self.bundle = model if isinstance(model, Bundle) else load_bundle(model)
        self.labels = self.bundle.labels
        self.size = int(self.bundle.meta["image_size"])
        self.mean, self.std = float(self.bundle.meta["mean"]), float(self.bundle.meta["std"])
        self.align_cfg = self.bundle.align
        self.runtime = runtime
        # dlib's detector and landmark model load on first use (the landmark model is a
        # 100 MB file): load them now, so a clip's timing does not include it.
        from merlib.faces import landmarks as lm

        blank = np.zeros((64, 64), np.uint8)
        lm.detect_faces(blank)
        lm.landmarks_68(blank, (8, 8, 56, 56))
        if runtime != "torch":
            self._graph = self.bundle.open(None if runtime == "auto" else runtime, precision, threads)
        else:
            torch.set_num_threads(threads)
            self._torch = self.bundle.torch_model()

    def forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network alone: logits (N, n_classes) and the SVM's features (N, F) of
        prepared images (N, 1, S, S) float32 (:meth:`prepare`): the pre-logits vector,
        with the early grid in front for a model trained with ``svm_early_grid`` > 0."""
        if self.runtime != "torch":
            return self._graph.run(images)
        from merlib.inference.export import torch_outputs

        return torch_outputs(self._torch, images, early_grid=self.bundle.early_grid)

    def prepare(self, crops: np.ndarray) -> np.ndarray:
        """:func:`prepare_images` with this model's size and normalisation."""
        return prepare_images(crops, self.size, self.mean, self.std)

    def classify(self, crops: np.ndarray) -> pd.DataFrame:
        """One row per crop: ``label``, ``p_<class>`` (softmax), ``svm_<class>``.

        Parameters
        ----------
        crops : ndarray of shape (N, S, S), uint8
            Aligned as the bundle's ``align`` settings say.
        """
        logits, features = self.forward(self.prepare(crops))
        if self.bundle.svm.n_features not in (None, features.shape[1]):
            raise IncompatibleBundleError(
                f"model: {self.bundle.root} gives {features.shape[1]} features, its SVM was fitted on "
                f"{self.bundle.svm.n_features} (svm_early_grid {self.bundle.early_grid} in bundle.json)")
        z = logits - logits.max(1, keepdims=True)
        proba = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        scores = self.bundle.svm.scores_by_label(features, len(self.labels))
        codes = (self.bundle.svm.predict(features) if self.bundle.meta["classifier"] == "svm"
                 else proba.argmax(1))
        table = pd.DataFrame({"label": [self.labels[c] for c in codes]})
        for i, name in enumerate(self.labels):
            table[f"p_{name}"] = proba[:, i]
        for i, name in enumerate(self.labels):
            table[f"svm_{name}"] = scores[:, i]
        return table

    def predict_images(self, paths: list[Path]) -> pd.DataFrame:
        """One row per image: ``file``, ``status``, ``reason``, then :meth:`classify`'s.

        An image without a usable face keeps its row (status ``failed``, the reason,
        no label). Raises :class:`NoFaceError` when no image has a face.
        """
        results = [process_frame(p, self.align_cfg, neighbours=False) for p in paths]
        ok = [i for i, r in enumerate(results) if r.crop is not None]
        if not ok:
            first = results[0].meta["reason"] if results else "no images"
            raise NoFaceError(f"input: no face in {len(paths)} image(s) "
                              f"({paths[0] if paths else ''}: {first})")
        classified = self.classify(np.stack([results[i].crop for i in ok]))
        rows = pd.DataFrame({"file": [str(p) for p in paths],
                             "status": [r.meta["status"] for r in results],
                             "reason": [r.meta["reason"] for r in results]})
        classified.index = ok
        return rows.join(classified)

    def predict_clip(self, source: Any, *, spot_cfg: SpotConfig = SpotConfig(), detect_every: int = 15,
                     annotate: str | os.PathLike | None = None,
                     buffer_mb: float = 1024.0) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Spot and classify the micro-expressions of a clip.

        Parameters
        ----------
        source : frame source
            :func:`~merlib.inference.video.open_source` output.
        spot_cfg : SpotConfig
        detect_every : int
            Frames between face detections (tracked in between).
        annotate : path, optional
            Write the clip with the face box, intervals and labels drawn (mp4v codec).
        buffer_mb : float, default=1024
            The grey frames are kept in memory during the first pass (so the clip is
            decoded once) while they take at most this many MiB (640x480: about 3,500
            frames); a longer clip drops them and decodes the frames of its intervals a
            second time (``timing.seconds["reread"]``).

        Returns
        -------
        table : DataFrame
            One row per interval: ``start_frame``, ``apex_frame``, ``end_frame``,
            ``start_s``, ``apex_s``, ``end_s``, ``score``, then :meth:`classify`'s columns.
        info : dict
            ``frames``, ``fps`` (the clip's), ``frames_with_face``, ``signal`` (ndarray),
            ``timing`` (:class:`Timing`), ``decodes`` (1, or 2 when the frames of the
            intervals were decoded again, not counting ``annotate``'s pass).
        """
        timing = Timing()
        tracker, cropper = FaceTracker(self.align_cfg, detect_every), MotionCropper(spot_cfg)
        faces, crops = [], []
        # The grey frames, kept for the apex estimation and the alignment of the apex
        # frames (None once they outgrow buffer_mb).
        buffered: list[np.ndarray] | None = []
        held, limit = 0, buffer_mb * 2 ** 20
        t = time.perf_counter()
        for frame in source:
            t1 = time.perf_counter()
            timing.seconds["decode"] += t1 - t
            grey = grey_of(frame)
            if buffered is not None:
                held += grey.nbytes
                buffered.append(grey)
                if held > limit:
                    buffered = None
            face = tracker.update(grey)
            t2 = time.perf_counter()
            timing.seconds["track"] += t2 - t1
            faces.append(face)
            crops.append(cropper(grey, face.points) if face is not None else None)
            t = time.perf_counter()
            timing.seconds["motion"] += t - t2
        n = len(faces)
        if n == 0:
            raise NoFaceError(f"input: {source.name} holds no frames")
        valid = np.array([c is not None for c in crops])
        if not valid.any():
            raise NoFaceError(f"input: no face found in any of the {n} frames of {source.name}")
        blank = np.zeros_like(next(c for c in crops if c is not None))
        # Frames without a face get the nearest earlier crop (or a blank one before the
        # first face): they carry no motion, and no apex is put on them (``valid``).
        filled, last = [], blank
        for c in crops:
            last = c if c is not None else last
            filled.append(last)
        t = time.perf_counter()
        intervals, signal = spot(np.stack(filled), source.fps, spot_cfg, valid)
        timing.seconds["spot"] += time.perf_counter() - t
        timing.frames = n

        # The frames of each interval: the apex is refined there with the optical-flow
        # apex estimator of merlib.faces.apex (flow from the interval's start, the
        # neutral reference), then only the apex frames, aligned as pre-processing
        # aligns an apex frame, go to the network. They come from the buffer; only a
        # clip too long for it is decoded a second time.
        t = time.perf_counter()
        wanted = {i for iv in intervals for i in range(iv.start, iv.end + 1)}
        greys: dict[int, np.ndarray] = {}
        decodes = 1
        if buffered is not None:
            greys = {i: buffered[i] for i in wanted}
            buffered = None
        elif wanted:
            decodes = 2
            last = max(wanted)
            for frame in source:
                if frame.index in wanted:
                    greys[frame.index] = grey_of(frame)
                if frame.index >= last:
                    break
        t2 = time.perf_counter()
        timing.seconds["reread"] += t2 - t
        intervals = [self._refine_apex(iv, greys, faces) for iv in intervals]
        t = time.perf_counter()
        timing.seconds["apex"] += t - t2
        apex_crops, landmark_source = {}, {}
        for iv in intervals:
            apex_crops[iv.apex], landmark_source[iv.apex] = self.align_apex(greys[iv.apex], faces[iv.apex])
        table = pd.DataFrame([{"start_frame": iv.start, "apex_frame": iv.apex, "end_frame": iv.end,
                               "start_s": iv.start / source.fps, "apex_s": iv.apex / source.fps,
                               "end_s": iv.end / source.fps, "score": iv.score, "apex_method": self.apex_method,
                               "apex_landmarks": landmark_source[iv.apex]}
                              for iv in intervals],
                             columns=["start_frame", "apex_frame", "end_frame", "start_s", "apex_s", "end_s", "score",
                                      "apex_method", "apex_landmarks"])
        labels: list[str] = []
        if intervals:
            classified = self.classify(np.stack([apex_crops[iv.apex] for iv in intervals]))
            table = pd.concat([table, classified], axis=1)
            labels = list(classified["label"])
        timing.seconds["classify"] += time.perf_counter() - t
        if annotate is not None:
            t = time.perf_counter()
            self._write_annotated(source, annotate, faces, intervals, signal, labels)
            timing.seconds["annotate"] += time.perf_counter() - t
        info = {"frames": n, "fps": source.fps, "frames_with_face": int(valid.sum()), "signal": signal,
                "timing": timing, "decodes": decodes}
        return table, info

    #: How the apex of a spotted interval is placed (a column of the clip table).
    apex_method = "optical flow from the interval start (merlib.faces.apex)"

    def align_apex(self, grey: np.ndarray, face: Any) -> tuple[np.ndarray, str]:
        """The apex frame's crop as pre-processing makes it, and where its landmarks came
        from: ``detected`` (a fresh detection, :func:`find_landmarks`, as for a dataset's
        apex frame) or ``tracked`` (no face detected there: the tracker's landmarks)."""
        det = find_landmarks(grey, self.align_cfg)
        if det.status != "failed":
            return align(grey, det.points, self.align_cfg).crop, "detected"
        return align(grey, face.points, self.align_cfg).crop, "tracked"

    def _refine_apex(self, iv: Interval, greys: dict[int, np.ndarray], faces: list) -> Interval:
        """``iv`` with its apex at the peak of optical-flow motion from its start frame,
        measured in the tracked face box (kept when that frame has no face)."""
        box = faces[iv.start].box if faces[iv.start] is not None else faces[iv.apex].box
        h, w = greys[iv.apex].shape
        x1, y1, x2, y2 = (int(v) for v in box)
        m = round(0.1 * (x2 - x1))  # the brows and chin sit at a detector box's edges
        box = (max(0, x1 - m), max(0, y1 - m), min(w, x2 + m), min(h, y2 + m))
        est = estimate_apex(np.stack([greys[i] for i in range(iv.start, iv.end + 1)]), box=box)
        apex = iv.start + est.index
        return replace(iv, apex=apex) if faces[apex] is not None else iv

    @staticmethod
    def _write_annotated(source: Any, annotate: str | os.PathLike, faces: list, intervals: list,
                         signal: np.ndarray, labels: list[str]) -> None:
        """The clip again (mp4v) with the face box, the motion value and, inside a
        spotted interval, the interval and its label."""
        writer = None
        try:
            for frame in source:
                if writer is None:
                    h, w = frame.image.shape[:2]
                    writer = cv2.VideoWriter(str(annotate), cv2.VideoWriter_fourcc(*"mp4v"), source.fps, (w, h))
                    if not writer.isOpened():
                        raise ConfigError(f"annotate: OpenCV cannot write {annotate}")
                active = [k for k, iv in enumerate(intervals) if iv.start <= frame.index <= iv.end]
                lines = [f"frame {frame.index}  t={frame.time_s:.2f}s  motion={signal[frame.index]:.2f}"]
                lines += [f"ME {k + 1}: frames {intervals[k].start}-{intervals[k].end}, apex "
                          f"{intervals[k].apex}: {labels[k]}" for k in active]
                writer.write(draw_annotation(frame.image, faces[frame.index], lines, bool(active)))
        finally:
            if writer is not None:
                writer.release()


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def predict_path(predictor: Predictor, path: str | os.PathLike, *, clip: bool | None = None,
                 fps: float | None = None, annotate: str | os.PathLike | None = None,
                 spot_cfg: SpotConfig = SpotConfig()) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Predict on an image, a folder of images, a video, or a folder of frames as a clip.

    Parameters
    ----------
    path : path
    clip : bool, optional
        For a folder: True takes it as a clip (spotting), False as separate images. The
        default: a video file is a clip, an image is an image, a folder is images.
    fps : float, optional
        Frame rate of a folder clip (default 30) or an override for a video.

    Returns
    -------
    table, info
        ``info["kind"]`` is ``images`` or ``clip``.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"input: {p} does not exist")
    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
        if clip:
            raise ConfigError(f"input: {p} is a single image; --clip needs a video or a folder of frames")
        return predictor.predict_images([p]), {"kind": "images"}
    if p.is_dir() and not clip:
        images = list_images(p)
        if not images:
            raise ConfigError(f"input: {p} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return predictor.predict_images(images), {"kind": "images"}
    source = FolderSource(p, fps if fps is not None else 30.0) if p.is_dir() else open_source(p, fps)
    table, info = predictor.predict_clip(source, spot_cfg=spot_cfg, annotate=annotate)
    return table, {**info, "kind": "clip"}
