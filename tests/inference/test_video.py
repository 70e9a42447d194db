"""Spotting and prediction on a SynthME clip rendered to a video file."""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merlib.data.schema import LABELS
from merlib.inference.commands import add_parsers
from merlib.inference.predict import NoFaceError, Predictor, predict_path
from merlib.inference.video import VideoReadError, open_source


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="merlib")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def test_spotting_finds_the_simulated_interval(bundle_dir: Path, clip_video, tmp_path: Path) -> None:
    video, truth = clip_video
    source = open_source(video)
    assert source.fps == 60.0 and source.n_frames == truth["n"]
    table, info = Predictor(bundle_dir).predict_clip(source, annotate=tmp_path / "ann.mp4")
    assert len(table) == 1, table
    row = table.iloc[0]
    # Within 0.1 s: near its apex the simulated expression's raised cosine is flat, so
    # the motion is too (measured: 0-6 frames off at 60 fps, depending on the codec).
    assert abs(row["apex_frame"] - truth["apex"]) <= 0.1 * 60
    inter = min(row["end_frame"], truth["end"]) - max(row["start_frame"], truth["start"]) + 1
    union = max(row["end_frame"], truth["end"]) - min(row["start_frame"], truth["start"]) + 1
    assert inter / union >= 0.5  # the MEGC spotting criterion
    assert row["apex_s"] == pytest.approx(row["apex_frame"] / 60.0)
    assert row["label"] in LABELS
    assert row[[f"p_{c}" for c in LABELS]].sum() == pytest.approx(1.0, abs=1e-5)
    assert info["frames"] == truth["n"] and info["frames_with_face"] == truth["n"]
    assert info["timing"].fps > 0
    written = cv2.VideoCapture(str(tmp_path / "ann.mp4"))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == truth["n"]
    written.release()


def test_predict_command_end_to_end(bundle_dir: Path, clip_video, synth_root: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    video, truth = clip_video
    args = _parser().parse_args(["predict", "--model", str(bundle_dir), "--input", str(video),
                                 "--out", str(tmp_path / "p.csv")])
    assert args.func(args) == 0
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns[:7]) == ["start_frame", "apex_frame", "end_frame", "start_s", "apex_s", "end_s", "score"]
    assert len(table) == 1 and "frames/s" in capsys.readouterr().out
    # The apex frame as an image: one row with probabilities.
    apex = synth_root / "CASME2" / "CASME2_RAW_selected" / "sub17" / "EP05_04" / "img51.jpg"
    images, info = predict_path(Predictor(bundle_dir), apex)
    assert info["kind"] == "images" and images.loc[0, "status"] == "ok" and images.loc[0, "label"] in LABELS


def test_bad_inputs_are_clear_errors(bundle_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(VideoReadError, match="broken.mp4: "):
        open_source(broken)
    with pytest.raises(VideoReadError, match="no such file"):
        open_source(tmp_path / "missing.avi")
    blank = tmp_path / "blank.avi"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    for _ in range(5):
        writer.write(np.full((120, 160, 3), 128, np.uint8))
    writer.release()
    with pytest.raises(NoFaceError, match="no face found in any of the 5 frames"):
        Predictor(bundle_dir).predict_clip(open_source(blank))
    still = tmp_path / "wall.png"
    cv2.imwrite(str(still), np.full((120, 160), 90, np.uint8))
    with pytest.raises(NoFaceError, match="no face in 1 image"):
        predict_path(Predictor(bundle_dir), still)


def test_tracker_drops_a_face_that_left(clip_video) -> None:
    from merlib.inference.video import FaceTracker, grey_of

    video, _ = clip_video
    face_frame = grey_of(next(iter(open_source(video))))
    tracker = FaceTracker(detect_every=2)
    seen = [tracker.update(g) is not None for g in [face_frame] * 3 + [np.full_like(face_frame, 128)] * 5]
    # Tracked while the face is there; carried over one failed detection; dropped at the second.
    assert seen[:3] == [True, True, True]
    assert seen[-1] is False


def test_four_expressions_in_one_shot(synth_root: Path, tmp_path: Path) -> None:
    """The clip played forward, backward, forward, backward with neutral pauses: one
    continuous shot with four movements; each is spotted once, nothing else is."""
    from merlib.data.frames import list_frames
    from merlib.faces.pipeline import FRAME_NUMBER
    from merlib.faces.apex import MotionCropper, spot
    from merlib.inference.video import FaceTracker, grey_of

    folder = synth_root / "CASME2" / "CASME2_RAW_selected" / "sub17" / "EP01_13"
    frames = [cv2.imread(str(p)) for _, p in list_frames(folder, FRAME_NUMBER)]
    seq, truth = [frames[0]] * 40, []
    for k in range(4):
        clip = frames if k % 2 == 0 else frames[::-1]
        truth.append((len(seq), len(seq) + len(clip) - 1))
        seq += clip + [clip[-1]] * 40
    video = tmp_path / "four.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 60.0, seq[0].shape[1::-1])
    for image in seq:
        writer.write(image)
    writer.release()
    tracker, cropper = FaceTracker(), MotionCropper()
    crops = []
    for frame in open_source(video):
        grey = grey_of(frame)
        crops.append(cropper(grey, tracker.update(grey).points))
    intervals, _ = spot(np.stack(crops), 60.0)
    assert len(intervals) == 4
    for iv, (start, end) in zip(intervals, truth):
        overlap = min(iv.end, end) - max(iv.start, start) + 1
        assert overlap / (max(iv.end, end) - min(iv.start, start) + 1) >= 0.5
