"""End to end: a SynthME clip rendered to a video gets, from ``predict``, the class LOSO
gives that sample (issue 10).

The model is ``fit`` on every subject but one, as the LOSO fold of that subject trains
(:func:`merlib.evaluation.fold.fit_predict`, same settings and seed); the held-out
subject's clip is written to a lossless video, spotted and classified. Same model, same
crop: the same class.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merlib.config import Profile
from merlib.inference.bundle import export_bundle
from merlib.inference.predict import Predictor, fit_model
from merlib.inference.video import grey_of, open_source, render_sample_video

#: The held-out subject and its clip: SAMM's subject 019 has one composite sample, so
#: the fold trains on the 41 others (three classes; holding out CASME II's sub17 would
#: leave one class, and a constant classifier agrees with anything).
HELD_OUT = ("samm", "019", "019_4_1")


@pytest.fixture(scope="module")
def fold(synth_root: Path, tmp_path_factory: pytest.TempPathFactory):
    from merlib.evaluation.fold import fit_predict
    from merlib.training.crops import prepare_crop_sets

    with warnings.catch_warnings():
        # A SynthME root without its composite list says which samples it expects.
        warnings.filterwarnings("ignore", message=".*composite samples present")
        crops = prepare_crop_sets(synth_root, sets=("composite",), allow_missing=True)["composite"]
    dataset, subject, sample = HELD_OUT
    groups = crops.groups
    test = np.flatnonzero(groups == f"{dataset}/{subject}")
    train = np.flatnonzero(groups != f"{dataset}/{subject}")
    row = int(test[list(crops.meta["sample"].iloc[test]).index(sample)])
    cfg = Profile.smoke().micro.replace(epochs=1)
    loso = fit_predict(crops, train, test, cfg, None, seed=0)
    work = tmp_path_factory.mktemp("e2e")
    fit_model(crops.subset(train), cfg, work / "model", seed=0)
    export_bundle(work / "model", work / "bundle", exporter="torchscript")
    clip = render_sample_video(synth_root, dataset, subject, sample, work / "clip.avi")
    return {"crops": crops, "row": row, "loso": int(loso["pred_svm"][list(test).index(row)]),
            "bundle": work / "bundle", "clip": clip}


def test_predict_on_the_video_gives_the_loso_class(fold) -> None:
    crops, row, clip = fold["crops"], fold["row"], fold["clip"]
    predictor = Predictor(fold["bundle"])
    labels = predictor.labels
    # Same model: the fitted bundle classifies the sample's pre-processed crop as LOSO did.
    assert predictor.classify(crops.X[row:row + 1]).loc[0, "label"] == labels[fold["loso"]]

    table, info = predictor.predict_clip(open_source(clip.path))
    assert info["decodes"] == 1 and info["frames"] == clip.n_frames
    assert len(table) == 1, table
    got = table.iloc[0]
    inter = min(got["end_frame"], clip.end) - max(got["start_frame"], clip.start) + 1
    union = max(got["end_frame"], clip.end) - min(got["start_frame"], clip.start) + 1
    assert inter / union >= 0.5, (got, clip)
    assert abs(got["apex_frame"] - clip.apex) <= 0.1 * clip.fps
    assert got["apex_landmarks"] == "detected"
    assert got["label"] == labels[fold["loso"]]


def test_the_video_apex_crop_is_the_preprocessing_crop(fold) -> None:
    """Same crop: a lossless video's annotated apex frame, aligned the way predict aligns
    a spotted apex, is pixel for pixel the crop pre-processing made from the frame file
    (the tracker's landmarks would give another crop: predict detects again there)."""
    crops, row, clip = fold["crops"], fold["row"], fold["clip"]
    frame = next(f for f in open_source(clip.path) if f.index == clip.apex)
    crop, source = Predictor(fold["bundle"]).align_apex(grey_of(frame), None)
    assert source == "detected"
    np.testing.assert_array_equal(crop, crops.X[row])


def test_a_clip_too_long_for_the_buffer_is_decoded_again(fold) -> None:
    """``buffer_mb=0``: the frames are not kept, the intervals are decoded a second time,
    and the result is the same as from the buffer."""
    predictor, clip = Predictor(fold["bundle"]), fold["clip"]
    once, info_once = predictor.predict_clip(open_source(clip.path))
    twice, info_twice = predictor.predict_clip(open_source(clip.path), buffer_mb=0)
    assert (info_once["decodes"], info_twice["decodes"]) == (1, 2)
    assert info_once["timing"].seconds["reread"] < 1e-3 < info_twice["timing"].seconds["reread"]
    pd.testing.assert_frame_equal(once, twice)


def test_stage_timings_of_prediction_on_images(fold) -> None:
    from merlib.reporting.timing import stage_timings

    table = stage_timings([fold["clip"].apex_path], Predictor(fold["bundle"]))
    assert list(table.index) == ["read", "grey", "detect", "landmarks", "align", "model", "SVM", "sum of stages"]
    assert (table["images"] == 1).all() and (table["ms per image"] > 0).all()
    assert table.loc["sum of stages", "ms per image"] == pytest.approx(table["ms per image"].iloc[:-1].sum())


def test_measure_latency_rows_and_agreement() -> None:
    from merlib.errors import ConfigError
    from merlib.inference.latency import measure_latency, native_size

    assert native_size("deit_tiny") == 224 and native_size("mobilevit_s") == 256
    rows = measure_latency("mobilevit_xxs", ["onnxruntime"], rounds=1, warmup=0, image_size=64,
                           exporter="torchscript")
    assert [(r.runtime, r.image_size) for r in rows] == [("eager", 64), ("onnxruntime", 64)]
    assert rows[0].speedup_vs_eager == 1.0 and rows[1].median_ms > 0
    assert rows[1].argmax_agree == 1.0 and rows[1].max_logit_diff < 1e-4
    with pytest.raises(ConfigError, match="runtimes: expected a subset"):
        measure_latency("mobilevit_xxs", ["tensorrt"])


def test_no_interval_at_the_start_of_a_long_mjpg_video(fold, synth_root: Path, tmp_path: Path) -> None:
    """A CASME II clip with 100 still frames either side, MJPG: the first frame decodes a
    few grey levels off the identical frames after it and the tracker settles over the
    next frames; that was spotted as an interval at frame 1 (SpotConfig.margin_s)."""
    clip = render_sample_video(synth_root, "casme2", "sub17", "EP01_13", tmp_path / "long.avi", pad=100,
                               fourcc="MJPG")
    table, info = Predictor(fold["bundle"]).predict_clip(open_source(clip.path))
    assert info["frames"] == clip.n_frames == 229
    assert len(table) == 1, table
    assert abs(table.loc[0, "apex_frame"] - clip.apex) <= 0.1 * clip.fps
