"""SynthME: the simulated dataset generator.

Rendering tests share the session's tiny root (``synth_root`` in ``tests/conftest.py``:
3 micro, 4 macro subjects, seed 0, or the root ``make test`` made); two more roots are
generated here (the same configuration again, serially, and the next seed). The face
pool is fetched to the default cache (``$MERLIB_FACES_DIR`` or ``~/.cache/merlib/faces``)
on first use.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from merlib.data.composite import load_composite_list, megc2019_composite
from merlib.data.index import index_datasets
from merlib.data.schema import MACRO_DATASETS, MICRO_DATASETS
from merlib.synth import (
    COMPOSITE, MARKER, TRUTH, TRUTH_COLUMNS, SynthConfig, SynthConfigError, _check_output,
    _clear, _composite_csv, generate,
)
from merlib.synth.au import AU_FIELDS, MIRROR, RECIPES, sample_expression
from merlib.synth.morph import choose_sources, morph_identity
from merlib.synth.neutral import (
    NEUTRAL_ELEVATION, NEUTRAL_LIP_GAP, corner_elevation, expressiveness, lip_gap, mouth_is_open,
    neutral_shape,
)
from merlib.synth.plan import MACRO_CAPS, MICRO_SHARES, key_rng, make_plan, split_counts
from merlib.synth.sources import TEMPLATE, fetch_faces
from merlib.synth.warp import ThinPlateSpline, dense_field

SMALL = SynthConfig(seed=0, micro_subjects=6, macro_subjects=4)


@pytest.fixture(scope="session")
def pool():
    start = time.perf_counter()
    faces = fetch_faces()
    print(f"\nface pool: {len(faces)} faces at {faces.root} "
          f"({time.perf_counter() - start:.1f} s, incl. any fetch)")
    return faces


@pytest.fixture(scope="session")
def small_root(synth_root, pool) -> Path:
    return synth_root


@pytest.fixture(scope="session")
def marker(small_root) -> dict:
    return json.loads((small_root / MARKER).read_text())


@pytest.fixture(scope="session")
def truth(small_root) -> pd.DataFrame:
    return pd.read_csv(small_root / TRUTH, dtype=str, keep_default_na=False)


def _config(marker: dict, **changes) -> SynthConfig:
    """The configuration recorded in a root's marker (faces_dir: the default; realism
    options absent from the marker are at their defaults)."""
    from dataclasses import replace

    from merlib.synth import config_of_record

    return replace(config_of_record(marker), **changes)


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _dummy_faces(n: int = 20) -> tuple[list[str], list[float]]:
    return [f"face-{i:02d}" for i in range(n)], [(-1) ** i * 0.03 * i for i in range(n)]


# --- configuration and planning (no pixels) ---------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("micro_subjects", 2), ("micro_subjects", 69), ("macro_subjects", 3),
    ("amplitude_scale", 0.0), ("seed", -1), ("micro_amplitude_iod", (0.05, 0.01)),
    ("faces_per_identity", (1, 2)), ("neutral_faces", 1), ("distinct_sources", "yes"),
])
def test_bad_parameter_is_named_with_its_value(field, value):
    with pytest.raises(SynthConfigError, match=rf"{field} must be .*{re.escape(repr(value))}"):
        SynthConfig(**{field: value}).validate()


def test_refuses_a_non_empty_folder_that_is_not_synthme(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=f"refusing to write into {tmp_path}"):
        generate(tmp_path, SynthConfig(), progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_split_counts_follow_the_composite():
    assert split_counts(68, MICRO_SHARES) == {"casme2": 24, "samm": 28, "smic": 16}
    assert split_counts(3, MICRO_SHARES) == {"casme2": 1, "samm": 1, "smic": 1}
    assert sum(split_counts(24, MICRO_SHARES).values()) == 24
    macro = split_counts(60, dict.fromkeys(MACRO_CAPS, 1), MACRO_CAPS)
    assert macro["jaffe"] == 10 and sum(macro.values()) == 60


def test_key_rng_depends_on_key_not_call_order():
    a = key_rng(3, "x", "y").random(4)
    key_rng(3, "other").random(100)
    assert np.array_equal(a, key_rng(3, "x", "y").random(4))
    assert not np.array_equal(a, key_rng(4, "x", "y").random(4))


def test_plan_uses_exactly_the_composite_samples_of_the_chosen_subjects():
    ids, yaws = _dummy_faces()
    plan = make_plan(SynthConfig().validate(), ids, yaws)
    listed = load_composite_list()
    micro = [c for c in plan.clips if c.dataset in MICRO_DATASETS]
    chosen = {(c.dataset, c.record.subject) for c in micro}
    expected = listed[[(d, s) in chosen for d, s in zip(listed["dataset"], listed["subject"])]]
    got = {(c.dataset, c.record.subject, c.record.sample): c.label for c in micro if c.label}
    assert got == {(d, s, n): lab for d, s, n, lab in expected.itertuples(index=False)}
    extras = [c for c in micro if c.label is None]
    assert sorted(c.record.emotion for c in extras) == sorted(
        ["others"] * 8 + ["Other"] * 10)  # one per CASME II / SAMM subject (24 -> 8/10/6)
    assert not {c.record.sample for c in extras} & set(listed["sample"])
    # CASME II negatives are disgust or repression; SAMM ones one of its five emotions.
    for c in micro:
        if c.label == "negative" and c.dataset == "casme2":
            assert c.record.emotion in ("disgust", "repression")
        if c.label == "negative" and c.dataset == "samm":
            assert c.record.emotion in ("Anger", "Contempt", "Disgust", "Fear", "Sadness")
    crossing = [c for c in micro if c.dataset == "casme2"
                and c.record.frames[0] < 100 <= c.record.frames[-1]]
    assert crossing, "some CASME II clips must straddle frame 99 -> 100"
    # Distinct source combinations for every subject.
    combos = [frozenset(s.faces) for s in plan.identities]
    assert len(set(combos)) == len(combos) == 40


def test_root_records_the_composite_samples_it_simulates(tmp_path):
    """Written at `merlib synth` time: the expected list of the composite for this root."""
    ids, yaws = _dummy_faces()
    plan = make_plan(SMALL.validate(), ids, yaws)
    (tmp_path / COMPOSITE).write_text(_composite_csv(plan))
    record = pd.read_csv(tmp_path / COMPOSITE, dtype=str)
    listed = load_composite_list()
    assert list(record.columns) == ["dataset", "subject", "sample", "label"]
    labelled = {(c.dataset, c.record.subject, c.record.sample, c.label)
                for c in plan.clips if c.dataset in MICRO_DATASETS and c.label}
    assert set(record.itertuples(index=False, name=None)) == labelled
    # In the packaged list's order.
    order = {k: i for i, k in enumerate(zip(listed["dataset"], listed["subject"], listed["sample"]))}
    ranks = [order[k] for k in zip(record["dataset"], record["subject"], record["sample"])]
    assert ranks == sorted(ranks)
    (tmp_path / MARKER).write_text(json.dumps({"simulated": True}))
    from merlib.data.composite import expected_composite

    expected = expected_composite(tmp_path)
    assert len(expected.table) == len(record) and COMPOSITE in expected.source


def test_plan_is_deterministic_and_seed_dependent():
    ids, yaws = _dummy_faces()
    a = make_plan(SMALL.validate(), ids, yaws)
    b = make_plan(SMALL.validate(), ids, yaws)
    c = make_plan(SynthConfig(seed=1, micro_subjects=6, macro_subjects=4), ids, yaws)
    assert [x.record for x in a.clips] == [x.record for x in b.clips]
    assert a.identities == b.identities
    assert [x.record for x in a.clips] != [x.record for x in c.clips]


def test_apart_identities_get_distinct_primaries_and_fewest_shared_faces():
    ids, yaws = _dummy_faces(12)
    yaws = [0.0] * len(ids)  # all similar: only the sharing rules decide
    closed = [i % 3 != 0 for i in range(len(ids))]  # every third face smiles open
    apart = [f"micro/{i:02d}" for i in range(14)]
    keys = apart + [f"macro/{i:02d}" for i in range(6)]
    specs = choose_sources(ids, yaws, keys, np.random.default_rng(0), neutral=True,
                           closed_mouth=closed, apart=apart)
    micro = specs[:len(apart)]
    assert all(len(s.faces) == 2 for s in micro)  # the fewest sources
    primaries = [s.faces[0] for s in micro]
    assert len(set(primaries[:12])) == 12  # distinct while the pool allows it
    # 28 face uses over 12 faces: the fewest pairs sharing a face is 4 * 3 + 8 * 1 = 20.
    sharing = sum(bool(set(a.faces) & set(b.faces))
                  for i, a in enumerate(micro) for b in micro[i + 1:])
    assert sharing == 20
    assert len({frozenset(s.faces) for s in specs}) == len(specs)
    is_closed = dict(zip(ids, closed))
    for s in specs:
        assert s.neutral and any(is_closed[f] for f in s.faces), s
        mouth = s.mouth_weights or s.weights
        assert np.isclose(sum(mouth), 1.0, atol=1e-5)
        assert all(w == 0 for f, w in zip(s.faces, mouth) if not is_closed[f])


def test_ordinary_identities_leave_out_faces_dlib_barely_finds():
    ids, yaws = _dummy_faces(12)
    clarity = [0.3 if i in (2, 5) else 1.0 for i in range(len(ids))]
    apart = [f"micro/{i}" for i in range(12)]
    specs = choose_sources(ids, [0.0] * len(ids), apart + [f"macro/{i}" for i in range(10)],
                           np.random.default_rng(0), clarity=clarity, apart=apart)
    unclear = {ids[2], ids[5]}
    assert unclear <= {s.faces[0] for s in specs[:12]}  # micro subjects need every face
    assert not any(unclear & set(s.faces) for s in specs[12:])


def test_faces_nearest_to_neutral_lead_first_and_partners_turn_alike():
    ids, _ = _dummy_faces(8)
    yaws = [0.0, 0.1, 0.2, 0.05, 0.3, 0.15, 0.22, 0.02]
    expressive = [0.05, 0.04, 0.01, 0.03, 0.02, 0.06, 0.07, 0.08]
    specs = choose_sources(ids, yaws, ["a", "b", "c"], np.random.default_rng(0),
                           expressiveness=expressive, apart=["a", "b", "c"])
    assert [s.faces[0] for s in specs] == [ids[2], ids[4], ids[3]]
    assert specs[0].faces[1] == ids[6]  # yaw 0.22 beside the primary's 0.2


def test_without_options_sources_are_spread_as_before():
    ids, yaws = _dummy_faces()
    specs = choose_sources(ids, yaws, [f"k{i}" for i in range(30)], np.random.default_rng(1))
    assert all(not s.neutral and s.mouth_weights == () for s in specs)
    assert {len(s.faces) for s in specs} <= {2, 3}
    with pytest.raises(ValueError, match="closed-mouthed"):
        choose_sources(ids, yaws, ["k"], np.random.default_rng(1), neutral=True,
                       closed_mouth=[False] * len(ids))


# --- action units and warps --------------------------------------------------------------

def test_au_fields_are_unit_and_mirror_symmetric():
    for au, field in AU_FIELDS.items():
        assert np.isclose(np.linalg.norm(field, axis=1).max(), 1.0), au
        if au != 14:  # unilateral
            mirrored = field[MIRROR] * np.array([-1.0, 1.0])
            assert np.allclose(mirrored, field), au


def test_au_directions_match_facs():
    up = -1.0  # image y points down
    assert AU_FIELDS[1][21, 1] * up > 0 and AU_FIELDS[1][22, 1] * up > 0  # inner brows up
    assert AU_FIELDS[4][21, 1] > 0 and AU_FIELDS[4][21, 0] > 0  # brow down and inwards
    assert AU_FIELDS[12][48, 1] * up > 0 and AU_FIELDS[12][48, 0] < 0  # corner up, out
    assert AU_FIELDS[12][54, 0] > 0
    assert AU_FIELDS[15][48, 1] > 0 and AU_FIELDS[15][54, 1] > 0  # corners down
    assert AU_FIELDS[26][8, 1] > 0 and AU_FIELDS[26][57, 1] > 0  # jaw drops


@pytest.mark.parametrize("kind", sorted(RECIPES))
def test_expression_amplitude_is_the_largest_displacement(kind):
    expr = sample_expression(kind, (0.02, 0.04), np.random.default_rng(1))
    if kind == "neutral":
        assert expr.amplitude_iod == 0 and not expr.displacement.any()
        return
    assert 0.02 <= expr.amplitude_iod <= 0.04
    assert np.isclose(np.linalg.norm(expr.displacement, axis=1).max(), expr.amplitude_iod)


def test_tps_interpolates_and_dense_field_matches_direct_evaluation():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 200, size=(30, 2))
    vals = rng.normal(0, 3, size=(30, 2))
    tps = ThinPlateSpline.fit(pts, vals, scale=50.0, smoothing=0.0)
    assert np.allclose(tps(pts), vals, atol=1e-6)
    field = dense_field(tps, 97, 61, step=8)
    assert field.shape == (61, 97, 2) and field.dtype == np.float32
    probe = np.array([[0, 0], [96, 60], [40, 30], [7, 55]], float)
    direct = tps(probe)
    got = field[probe[:, 1].astype(int), probe[:, 0].astype(int)]
    assert np.allclose(got, direct, atol=0.05 * np.abs(vals).max())


# --- neutral base faces ------------------------------------------------------------------

def _mean_shape(pool) -> np.ndarray:
    return np.mean([f.landmarks for f in pool.faces], axis=0).astype(np.float64)


def test_neutral_shape_takes_out_a_smile_and_keeps_eyes_and_nose(pool):
    base = neutral_shape(_mean_shape(pool))
    iod = TEMPLATE.iod
    smile = base + iod * (0.15 * AU_FIELDS[12] + 0.10 * AU_FIELDS[25] + 0.1 * AU_FIELDS[2])
    assert corner_elevation(smile) > 0.05 and lip_gap(smile) > 0.05
    out = neutral_shape(smile)
    assert corner_elevation(out) == pytest.approx(NEUTRAL_ELEVATION, abs=0.015)
    assert lip_gap(out) == pytest.approx(NEUTRAL_LIP_GAP, abs=0.005)
    assert np.array_equal(out[27:48], smile[27:48])  # nose and eyes stay
    assert out[17:27, 1].mean() > smile[17:27, 1].mean()  # raised brows come down
    # A neutral face barely moves.
    assert np.abs(neutral_shape(base) - base).max() < 0.02 * iod


def _mouth_picture(teeth: bool) -> tuple[np.ndarray, np.ndarray]:
    """A face-free picture of lips (48-67) whose inner outline is 0.2 IOD tall, filled
    with teeth or with lip colour; eyes 128 px apart."""
    pts = np.zeros((68, 2))
    pts[36:42] = (192.0, 268.0)
    pts[42:48] = (320.0, 268.0)
    angles = np.linspace(np.pi, -np.pi, 12, endpoint=False)
    pts[48:60] = np.c_[256 + 60 * np.cos(angles), 400 - 30 * np.sin(angles)]
    inner = np.linspace(np.pi, -np.pi, 8, endpoint=False)
    pts[60:68] = np.c_[256 + 45 * np.cos(inner), 400 - 13 * np.sin(inner)]
    image = np.full((640, 512, 3), (150, 170, 200), np.uint8)  # skin
    cv2.fillPoly(image, [np.round(pts[48:60]).astype(np.int32)], (90, 80, 170))  # lips
    if teeth:
        cv2.fillPoly(image, [np.round(pts[60:68]).astype(np.int32)], (235, 240, 240))
    return image, pts


def test_open_mouths_are_told_from_closed_ones():
    assert mouth_is_open(*_mouth_picture(teeth=True))
    assert not mouth_is_open(*_mouth_picture(teeth=False))  # landmarks apart, lips shut


def test_expressiveness_is_how_far_the_neutralising_warp_moves_a_face(pool):
    base = neutral_shape(_mean_shape(pool))
    smile = base + TEMPLATE.iod * 0.15 * AU_FIELDS[12]
    assert expressiveness(neutral_shape(base)) < 0.005 < expressiveness(smile)


def test_neutral_identities_smile_less_as_dlib_sees_them(pool):
    """The morphs of the tiny root's subjects, with and without neutralisation."""
    from dataclasses import replace

    from merlib.synth import _closed_mouths
    from merlib.faces.landmarks import detect_faces, landmarks_68

    closed = _closed_mouths(pool)
    assert 0 < sum(closed) < len(pool)  # the pool has both kinds
    cfg = SynthConfig(seed=0, micro_subjects=3, macro_subjects=4).validate()
    plan = make_plan(cfg, [f.id for f in pool.faces], [f.yaw for f in pool.faces], closed)
    faces = {f.id: f for f in pool.faces}
    measured = {True: [], False: []}
    for spec in plan.identities:
        images = [pool.image(faces[i]) for i in spec.faces]
        points = [faces[i].landmarks for i in spec.faces]
        as_photographed = replace(spec, neutral=False, mouth_weights=())
        for neutral, variant in ((True, spec), (False, as_photographed)):
            ident = morph_identity(variant, images, points)
            grey = cv2.cvtColor(ident.image, cv2.COLOR_BGR2GRAY)
            boxes = detect_faces(grey, upsample=0)
            assert len(boxes) == 1, spec.key
            measured[neutral].append(corner_elevation(landmarks_68(grey, boxes[0])))
    before, after = np.mean(measured[False]), np.mean(measured[True])
    print(f"\nmouth-corner elevation (dlib, IOD) of {len(plan.identities)} identities: "
          f"{before:+.3f} -> {after:+.3f}")
    assert after < before - 0.03 and after < 0.04


# --- the face pool -----------------------------------------------------------------------

def test_pool_manifest(pool):
    assert len(pool) >= 15
    manifest = json.loads((pool.root / "pool.json").read_text())
    assert "iBUG 300-W" in manifest["landmark_model"]["licence"]
    for face in pool.faces:
        assert face.licence and face.version and len(face.photo_sha256) == 64
        assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
        assert "lenna" not in face.file
    eyes = np.stack([pool.faces[0].landmarks[36:42].mean(0), pool.faces[0].landmarks[42:48].mean(0)])
    assert np.allclose(eyes, TEMPLATE.eye_centres(), atol=0.5)
    assert fetch_faces(pool.root).digest == pool.digest  # reused, not rebuilt


# --- the rendered data -------------------------------------------------------------------

def test_marker_and_counts_match_the_parameters(marker, truth):
    assert marker["simulated"] is True and marker["generator"] == "merlib synth"
    assert marker["complete"] is True and len(marker["face_pool"]["digest"]) == 64
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    micro = split_counts(marker["micro_subjects"], MICRO_SHARES)
    macro = split_counts(marker["macro_subjects"], dict.fromkeys(MACRO_CAPS, 1), MACRO_CAPS)
    subjects = truth.groupby("dataset")["subject"].nunique().to_dict()
    assert subjects == {**micro, **macro}
    for dataset, counts in marker["counts"].items():
        rows = truth[truth["dataset"] == dataset]
        assert counts["subjects"] == subjects[dataset]
        for label in ("negative", "positive", "surprise"):
            assert counts[label] == int((rows["label"] == label).sum())
    per_subject = truth.groupby(["dataset", "subject"]).size()
    assert (per_subject["ckplus"] == 8).all() and (per_subject["oulu"] == 6).all()
    assert (per_subject["mug"] == 7).all() and per_subject["jaffe"].between(14, 21).all()
    extra = truth[(truth["label"] == "") & truth["dataset"].isin(["casme2", "samm"])]
    assert extra.groupby(["dataset", "subject"]).size().eq(1).all()
    assert len(extra) == micro["casme2"] + micro["samm"]


def test_marker_records_each_subjects_sources(marker, truth):
    assert marker["neutral_faces"] is True and marker["distinct_sources"] is True
    record = marker["identities"]
    subjects = truth.drop_duplicates(["dataset", "subject"])
    assert set(record) == {f"{d}/{s}" for d, s in zip(subjects["dataset"], subjects["subject"])}
    for row in subjects.itertuples(index=False):
        ident = record[f"{row.dataset}/{row.subject}"]
        assert "+".join(ident["faces"]) == row.source_faces
        assert np.isclose(sum(ident["weights"]), 1.0, atol=1e-5)
        assert np.isclose(sum(ident["mouth_weights"]), 1.0, atol=1e-5)
    micro = [v["faces"] for k, v in record.items() if k.split("/")[0] in MICRO_DATASETS]
    assert len({faces[0] for faces in micro}) == len(micro)  # the pool has enough faces


def test_truth_matches_the_readers_index(small_root, truth, marker):
    index = index_datasets(small_root)
    key = ["dataset", "subject", "sample"]
    merged = truth.merge(index.astype({k: str for k in key}), on=key, how="outer",
                         indicator=True, suffixes=("", "_index"))
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", key]
    assert (merged["label"] == merged["label_index"].fillna("")).all()
    # With apex_error the readers are given a coder's apex (or SMIC's middle frame), off
    # the true one by design; without it they are given the truth.
    exact = ("apex_frame", "onset_frame", "offset_frame") if not marker.get("apex_error") else (
        "onset_frame", "offset_frame")
    for col in exact:
        got = merged[col + "_index"].map(lambda v: "" if pd.isna(v) else str(int(v)))
        assert (merged[col] == got).all(), col
    if marker.get("apex_error"):
        clips = merged[merged["apex_frame"] != ""]
        given = clips["apex_frame_index"].astype(int)
        assert given.between(clips["onset_frame_index"].astype(int), clips["offset_frame_index"].astype(int)).all()
        micro = clips["dataset"].isin(MICRO_DATASETS)
        assert (given[micro] != clips.loc[micro, "apex_frame"].astype(int)).any()


def test_composite_needs_no_allow_missing_and_yields_exactly_the_simulated_subset(
        small_root, truth, recwarn):
    # A root made before roots recorded their subset derives it (with a warning).
    result = megc2019_composite(small_root)
    micro = truth[truth["dataset"].isin(MICRO_DATASETS) & (truth["label"] != "")]
    got = set(zip(result.table["dataset"], result.table["subject"], result.table["sample"]))
    assert got == set(zip(micro["dataset"], micro["subject"], micro["sample"]))
    assert result.missing.empty and result.n_expected == len(micro)
    if (small_root / COMPOSITE).is_file():
        assert COMPOSITE in result.expected


def test_dlib_finds_exactly_one_face_on_apex_frames(small_root):
    from merlib.faces.landmarks import detect_faces

    index = index_datasets(small_root)
    hits = []
    for path in index["apex_path"]:
        grey = cv2.imread(str(small_root / path), cv2.IMREAD_GRAYSCALE)
        hits.append(len(detect_faces(grey, upsample=1)) == 1)
    rate = float(np.mean(hits))
    print(f"\ndlib: exactly one face on {rate:.1%} of {len(hits)} apex frames")
    assert rate >= 0.95


def test_apex_amplitudes_lie_in_the_micro_and_macro_ranges(marker, truth):
    amp = truth["amplitude_iod"].astype(float)
    scale = marker["amplitude_scale"]
    micro = truth["dataset"].isin(MICRO_DATASETS)
    lo, hi = (scale * v for v in marker["micro_amplitude_iod"])
    if marker.get("weak_fraction"):
        lo *= 0.3  # a weak clip's range is scaled by a factor from [0.3, 0.6]
    assert amp[micro].between(lo, hi).all()
    moving = truth["dataset"].isin(MACRO_DATASETS) & ~truth["emotion"].isin(["NE", "neutral"])
    lo, hi = (scale * v for v in marker["macro_amplitude_iod"])
    assert amp[moving].between(lo, hi).all()
    assert (amp[~micro & ~moving] == 0).all()


def _onset_apex(root: Path, index: pd.DataFrame, dataset: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(onset, apex) grey float32 frames of every labelled clip of ``dataset``."""
    rows = index[(index["dataset"] == dataset) & index["label"].notna()]
    pairs = []
    for _, r in rows.iterrows():
        by_number = {int(re.findall(r"\d+", p.name)[-1]): p for p in (root / r["clip_dir"]).iterdir()}
        onset, apex = (cv2.imread(str(by_number[int(r[c])]), cv2.IMREAD_GRAYSCALE).astype(np.float32)
                       for c in ("onset_frame", "apex_frame"))
        pairs.append((onset, apex))
    return pairs


def test_neutral_frames_pass_through_the_same_resampling(small_root):
    index = index_datasets(small_root)
    change, sharp_ratio = {}, []
    for dataset in ("casme2", "samm", "ckplus", "mug"):
        pairs = _onset_apex(small_root, index, dataset)
        change[dataset] = float(np.mean([np.abs(a - o).mean() for o, a in pairs]))
        for onset, apex in pairs:
            lap = [cv2.Laplacian(x, cv2.CV_32F).var() for x in (onset, apex)]
            sharp_ratio.append(lap[1] / lap[0])
            assert not np.array_equal(onset, apex)
    print(f"\nmean |apex - onset|: {change}; apex/onset sharpness "
          f"{np.mean(sharp_ratio):.3f} +- {np.std(sharp_ratio):.3f}")
    assert min(change["ckplus"], change["mug"]) > max(change["casme2"], change["samm"])
    # Were neutral frames not resampled, they would be measurably sharper than apexes.
    assert 0.9 < float(np.mean(sharp_ratio)) < 1.1


def test_same_seed_gives_identical_files_for_any_worker_count(small_root, marker, tmp_path):
    again = generate(tmp_path / "again", _config(marker), progress=False, workers=1)
    assert (again / COMPOSITE).is_file()
    assert json.loads((again / MARKER).read_text())["composite"]["file"] == COMPOSITE
    assert _hashes(again) == _hashes(small_root)


def test_different_seed_differs(small_root, marker, tmp_path):
    other = _hashes(generate(tmp_path / "other", _config(marker, seed=marker["seed"] + 1),
                             progress=False))
    mine = _hashes(small_root)
    shared = set(other) & set(mine)
    assert not any(other[k] == mine[k] for k in shared)


def test_a_previous_root_is_cleared_but_not_one_with_foreign_files(tmp_path):
    root = tmp_path / "old"
    (root / "CASME2" / "sub01").mkdir(parents=True)
    (root / MARKER).write_text(json.dumps({"simulated": True}))
    assert sorted(p.name for p in _check_output(root)) == ["CASME2", MARKER]
    (root / "results.csv").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"also holds \['results.csv'\]"):
        _check_output(root)
    _clear([root / "CASME2", root / MARKER])
    assert sorted(p.name for p in root.iterdir()) == ["results.csv"]


def test_unreachable_sources_are_skipped_with_a_warning_then_too_few_faces_fail(
        tmp_path, monkeypatch):
    from merlib.synth import sources

    def unreachable(source, workdir):
        raise sources.FacePoolError(f"{source.name}: registry unreachable")
        yield  # a generator, like the real one

    monkeypatch.setattr(sources, "_photos", unreachable)
    with pytest.warns(UserWarning, match="skipped"), \
            pytest.raises(sources.FacePoolError, match=r"only 0 faces .*registry unreachable"):
        sources.fetch_faces(tmp_path / "pool")
