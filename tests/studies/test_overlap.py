"""Source-face overlap between SynthME subjects (:mod:`merlib.studies.overlap`).

The record-reading and pair logic is tested on hand-made tables; the whole measurement
runs on the session's tiny root (``synth_root``: 3 micro, 4 macro subjects, seed 0).
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from merlib.synth import MARKER, TRUTH
from merlib.errors import DataLayoutError
from merlib.studies.overlap import (
    composite_subjects, identity_sources, nearest_subjects, shared_pairs, source_overlap,
)


def _sources(rows: list[tuple[str, tuple[str, ...], tuple[float, ...]]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["key", "faces", "weights"])
    table.insert(1, "dataset", table["key"].str.split("/").str[0])
    table.insert(2, "subject", table["key"].str.split("/").str[1])
    table.insert(3, "micro", table["dataset"].isin(["casme2", "samm", "smic"]))
    table["primary"] = [f[0] for f in table["faces"]]
    return table


SOURCES = _sources([
    ("casme2/a", ("f1", "f2"), (0.6, 0.4)),
    ("samm/b", ("f1", "f3"), (0.5, 0.5)),
    ("smic/c", ("f4", "f2"), (0.55, 0.45)),
    ("smic/d", ("f5", "f6"), (0.5, 0.5)),
    ("ckplus/e", ("f5", "f3", "f2"), (0.4, 0.3, 0.3)),
])


def test_pairs_name_the_shared_faces_and_how_much_weight_they_carry():
    pairs = shared_pairs(SOURCES).set_index(["key_a", "key_b"])
    assert set(pairs.index) == {("casme2/a", "samm/b"), ("casme2/a", "smic/c"),
                                ("casme2/a", "ckplus/e"), ("samm/b", "ckplus/e"),
                                ("smic/c", "ckplus/e"), ("smic/d", "ckplus/e")}
    ab = pairs.loc[("casme2/a", "samm/b")]
    assert ab["shared"] == "f1" and ab["same_primary"] and ab["micro"]
    assert ab["shared_weight"] == pytest.approx(0.5)
    assert pairs.loc[("casme2/a", "smic/c"), "shared_weight"] == pytest.approx(0.4)
    assert not pairs.loc[("smic/d", "ckplus/e"), "micro"]


def test_nearest_subject_shares_a_face_or_not_and_chance_is_the_random_rate():
    keys = ["casme2/a", "samm/b", "smic/c", "smic/d"]
    features = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.2, 5.0]])
    near = nearest_subjects(SOURCES, keys, features).set_index("key")
    assert near.loc["casme2/a", "nearest"] == "samm/b" and near.loc["casme2/a", "shares_primary"]
    assert near.loc["smic/c", "nearest"] == "smic/d" and not near.loc["smic/c", "shares_source"]
    assert near.loc["casme2/a", "chance"] == pytest.approx(2 / 3)  # b and c share, d not
    # A subject without features is left out on both sides.
    features[1] = np.nan
    near = nearest_subjects(SOURCES, keys, features).set_index("key")
    assert "samm/b" not in near.index and near.loc["casme2/a", "nearest"] != "samm/b"


@pytest.fixture(scope="module")
def result(synth_root):
    start = time.perf_counter()
    out = source_overlap(synth_root)
    out_s = time.perf_counter() - start
    print(f"\nsource overlap of {synth_root.name}: {out.summary} ({out_s:.1f} s)")
    return out


def test_the_record_matches_the_truth(synth_root, result):
    truth = pd.read_csv(synth_root / TRUTH, dtype=str, keep_default_na=False)
    first = truth.drop_duplicates(["dataset", "subject"])
    faces = dict(zip(result.sources["key"], result.sources["faces"]))
    assert set(faces) == {f"{d}/{s}" for d, s in zip(first["dataset"], first["subject"])}
    for d, s, src in zip(first["dataset"], first["subject"], first["source_faces"]):
        assert "+".join(faces[f"{d}/{s}"]) == src
    assert all(np.isclose(sum(w), 1.0, atol=1e-5) for w in result.sources["weights"])


def test_the_tiny_roots_micro_subjects_share_no_face(result):
    """Three micro subjects of two faces each fit in a 21-face pool without sharing."""
    s = result.summary
    assert s["micro_subjects"] == 3 and s["micro_pairs"] == 3
    assert s["micro_sharing_any"] == s["micro_pairs_sharing"] == s["micro_sharing_primary"] == 0
    assert result.pairs[result.pairs["micro"]].empty


def test_every_composite_test_subject_gets_a_nearest_training_subject(synth_root, result):
    keys = composite_subjects(synth_root)
    assert len(keys) == 3 and set(result.nearest["key"]) == set(keys)
    assert set(result.nearest["nearest"]) <= set(keys)
    s = result.summary
    assert s["test_subjects"] == 3
    assert s["nn_shares_source"] == s["chance"] == 0.0  # nobody shares, so neither can


def test_older_roots_fall_back_to_the_truths_source_faces(synth_root, tmp_path):
    marker = json.loads((synth_root / MARKER).read_text())
    marker.pop("identities")
    (tmp_path / MARKER).write_text(json.dumps(marker))
    (tmp_path / TRUTH).write_bytes((synth_root / TRUTH).read_bytes())
    old = source_overlap(tmp_path, features=False)
    assert old.sources["weights"].map(lambda w: np.isnan(w).all()).all()
    assert old.summary["micro_subjects"] == 3 and np.isnan(old.summary["nn_shares_source"])
    (tmp_path / TRUTH).write_text("dataset,subject\ncasme2,sub01\n")
    with pytest.raises(DataLayoutError, match="no source_faces column"):
        identity_sources(tmp_path)


def test_a_folder_that_is_no_synthme_root_is_refused(tmp_path):
    with pytest.raises(DataLayoutError, match="not a SynthME root"):
        identity_sources(tmp_path)
