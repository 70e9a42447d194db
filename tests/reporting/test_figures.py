import matplotlib

matplotlib.use("Agg")
import cv2
import numpy as np
import matplotlib.pyplot as plt

from merlib.data.index import index_datasets
from merlib.data.layouts import ClipRecord, frame_path, write_annotations
from merlib.reporting.figures import apex_montage, onset_apex, pick_examples
from merlib.provenance import Provenance


def _clip(root, dataset, rec, values):
    for frame, value in zip(rec.frames, values):
        path = frame_path(dataset, root, rec, frame)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((16, 16), value, np.uint8))


def test_onset_apex_and_montage_read_the_annotated_frames(tmp_path):
    # CK+: onset = first frame, apex = last (the peak); values make each frame identifiable.
    recs = [
        ClipRecord("S005", "S005_001", "happy", (1, 2, 3), 1, 3, 3),
        ClipRecord("S005", "S005_002", "surprise", (1, 2, 3), 1, 3, 3),
    ]
    _clip(tmp_path, "ckplus", recs[0], [10, 30, 50])
    _clip(tmp_path, "ckplus", recs[1], [100, 100, 160])
    write_annotations("ckplus", tmp_path, recs)
    index = index_datasets(tmp_path)

    onset, apex = onset_apex(index.iloc[0], tmp_path)
    assert onset.shape == (16, 16) and onset.dtype == np.uint8
    assert int(onset.mean()) == 10 and int(apex.mean()) == 50

    examples = pick_examples(index, ("ckplus",))
    assert examples["label"].tolist() == ["positive", "surprise"]  # class order, one each

    fig = apex_montage(examples, tmp_path, Provenance.for_data(tmp_path), gain=2)
    axes = np.array(fig.axes).reshape(2, 3)
    assert "mean 40.00" in axes[0, 2].get_title()
    assert "mean 60.00" in axes[1, 2].get_title()
    # |apex - onset| x gain is what the third panel shows
    assert int(axes[0, 2].images[0].get_array().mean()) == 80
    plt.close(fig)
