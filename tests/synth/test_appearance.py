"""SynthME's realism options: appearance per action unit, real AU statistics, nuisances."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from merlib.synth import REALISM_FIELDS, SynthConfig, SynthConfigError, realism_of
from merlib.synth.appearance import DEPTH, REFERENCE_AMPLITUDE_IOD, shading_map
from merlib.synth.au import (AU_FIELDS, REAL_AU_SHARES, REAL_COMBINATIONS, REAL_MEAN_AUS, Expression,
                             expression_field, real_combination, sample_expression)
from merlib.synth.render import blink_displacement, sample_nuisance


@pytest.fixture(scope="module")
def identity():
    """A SynthME subject in template coordinates (an upright face, IOD 128 px)."""
    from merlib.synth import _identity
    from merlib.synth.morph import IdentitySpec
    from merlib.synth.sources import fetch_faces

    pool = fetch_faces(None)
    spec = IdentitySpec("casme2/sub01", tuple(f.id for f in pool.faces[:2]), (0.5, 0.5), (False, False), False)
    return _identity(str(pool.root), spec)


def _expression(aus: tuple[int, ...], amplitude: float = REFERENCE_AMPLITUDE_IOD, side: int = 1,
                asymmetry: float = 0.0) -> Expression:
    weights = tuple(1.0 for _ in aus)
    d = expression_field(aus, weights, side, asymmetry)
    if aus:
        d *= amplitude / np.linalg.norm(d, axis=1).max()
    return Expression("negative", aus, weights, side, asymmetry, amplitude, d)


def _region(pts: np.ndarray, centre: np.ndarray, half: float) -> tuple[slice, slice]:
    x, y = (int(round(v)) for v in centre)
    h = int(round(half))
    return slice(y - h, y + h), slice(x - h, x + h)


def test_au4_furrows_the_glabella_and_leaves_the_cheeks(identity):
    pts, SHAPE = identity.landmarks, identity.image.shape[:2]
    m = shading_map(SHAPE, pts, _expression((4,)), 1.0, 1.0, np.random.default_rng(0))
    assert m.shape == SHAPE and m.dtype == np.float32
    glabella = m[_region(pts, 0.5 * (pts[21] + pts[22]), 8)]
    cheek = m[_region(pts, pts[48] + np.array([-20.0, -25.0]), 8)]
    assert glabella.min() < -0.1 * DEPTH[4]       # a dark furrow between the brows
    assert np.abs(cheek).max() < 1e-3             # nothing where AU4 does not act
    # The two vertical furrows mirror each other.
    mid = int(round(0.5 * (pts[21, 0] + pts[22, 0])))
    band = m[int(pts[21, 1]) - 15:int(pts[27, 1]) + 5]
    left, right = band[:, mid - 20:mid], band[:, mid:mid + 20][:, ::-1]
    assert left.sum() == pytest.approx(right.sum(), rel=0.15)


def test_depth_scales_with_amplitude_strength_and_skin(identity):
    pts, SHAPE, rng = identity.landmarks, identity.image.shape[:2], np.random.default_rng
    ref = shading_map(SHAPE, pts, _expression((12,)), 1.0, 1.0, rng(0))
    micro = shading_map(SHAPE, pts, _expression((12,), amplitude=0.03), 1.0, 1.0, rng(0))
    np.testing.assert_allclose(micro, ref * (0.03 / REFERENCE_AMPLITUDE_IOD), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(shading_map(SHAPE, pts, _expression((12,)), 2.0, 0.5, rng(0)), ref,
                               rtol=1e-5, atol=1e-7)
    assert shading_map(SHAPE, pts, _expression(()), 1.0, 1.0, rng(0)) is None
    assert shading_map(SHAPE, pts, _expression((12,)), 0.0, 1.0, rng(0)) is None


def test_a_unilateral_au_creases_one_side_only(identity):
    pts, SHAPE = identity.landmarks, identity.image.shape[:2]
    mid = int(round(pts[27, 0]))
    for side, dark_half in ((1, slice(0, mid)), (-1, slice(mid, None))):
        m = shading_map(SHAPE, pts, _expression((14,), side=side), 1.0, 1.0, np.random.default_rng(0))
        other = slice(mid, None) if side == 1 else slice(0, mid)
        assert m[:, dark_half].min() < -0.05 and np.abs(m[:, other]).max() < 1e-3


def test_asymmetry_deepens_one_half(identity):
    pts, SHAPE = identity.landmarks, identity.image.shape[:2]
    mid = int(round(pts[27, 0]))
    m = shading_map(SHAPE, pts, _expression((12,), asymmetry=0.25), 1.0, 1.0, np.random.default_rng(0))
    assert np.abs(m[:, :mid]).sum() > 1.4 * np.abs(m[:, mid:]).sum()  # 1.25 / 0.75


def test_real_combinations_match_the_composite_statistics():
    for label, shares in REAL_AU_SHARES.items():
        rng = np.random.default_rng(0)
        draws = [real_combination(label, rng) for _ in range(3000)]
        assert all(a in AU_FIELDS for d in draws for a in d)
        counts = Counter(a for d in draws for a in d)
        for au, share in shares.items():
            assert counts[au] / len(draws) == pytest.approx(share, abs=0.11), (label, au)
        assert np.mean([len(d) for d in draws]) == pytest.approx(REAL_MEAN_AUS[label], abs=0.15)
        listed = Counter(d for d in draws if d in dict(REAL_COMBINATIONS[label]))
        top = max(REAL_COMBINATIONS[label], key=lambda c: c[1])[0]
        assert listed.most_common(1)[0][0] == top
    with pytest.raises(ValueError, match="label 'others'"):
        real_combination("others", np.random.default_rng(0))


def test_sample_expression_takes_given_aus():
    e = sample_expression("disgust", (0.03, 0.03), np.random.default_rng(0), aus=(7,))
    assert e.aus == (7,) and e.amplitude_iod == pytest.approx(0.03)
    assert np.linalg.norm(e.displacement, axis=1).max() == pytest.approx(0.03)
    with pytest.raises(ValueError, match="AU \\[99\\]"):
        sample_expression("disgust", (0.03, 0.03), np.random.default_rng(0), aus=(99,))


def test_flicker_is_drawn_last_and_alone_when_asked():
    plain = sample_nuisance(30, 100.0, 0.02, 0.5, np.random.default_rng(4))
    lit = sample_nuisance(30, 100.0, 0.02, 0.5, np.random.default_rng(4), flicker=0.03)
    # The other nuisances of the clip are the same draws with or without flicker.
    np.testing.assert_array_equal(plain.shift, lit.shift)
    assert plain.gain is None and lit.gain.shape == (30,)
    only = [sample_nuisance(30, 100.0, 0.0, 0.0, np.random.default_rng(i), flicker=0.03).gain for i in range(50)]
    assert np.std(np.concatenate(only)) == pytest.approx(0.03, rel=0.1)


def test_nuisances(identity):
    assert sample_nuisance(30, 100.0, 0.0, 0.0, np.random.default_rng(0)) is None
    ends = np.array([sample_nuisance(30, 100.0, 0.02, 0.0, np.random.default_rng(i)).shift[-1]
                     for i in range(400)])
    # The head's displacement over the clip spreads by head_motion_iod * IOD per axis.
    assert ends.std(axis=0) == pytest.approx([2.0, 2.0], rel=0.15)
    n = sample_nuisance(40, 100.0, 0.0, 1.0, np.random.default_rng(3))
    assert n.blink is not None and n.blink.max() == pytest.approx(1.0, abs=0.05)
    assert n.blink.min() == 0.0 and 5 <= (n.blink > 0).sum() <= 12  # about a quarter of the clip
    pts = identity.landmarks.astype(np.float64)
    d = blink_displacement(pts)
    np.testing.assert_allclose(pts[37] + d[37], pts[37] + 0.9 * (pts[41] - pts[37]))
    assert not d[[36, 39, 40, 41, 42, 45, 46, 47]].any()


@pytest.mark.parametrize("field, value", [("appearance", "wrinkles"), ("au_statistics", "casme"),
                                          ("appearance_strength", -1.0), ("head_motion_iod", 0.5),
                                          ("blink_rate", 1.5), ("weak_fraction", True), ("au_style_deg", 60.0),
                                          ("flicker", 0.5), ("apex_error", 1.5)])
def test_bad_realism_option_is_named(field, value):
    with pytest.raises(SynthConfigError, match=field):
        SynthConfig(**{field: value}).validate()


def test_record_keeps_the_old_marker_for_the_old_generator():
    assert not set(REALISM_FIELDS) & set(SynthConfig().record())
    rec = SynthConfig(appearance="facs", blink_rate=0.2).record()
    assert rec["appearance"] == "facs" and rec["blink_rate"] == 0.2 and "head_motion_iod" not in rec
    filled = realism_of(json.loads(json.dumps(rec)))
    assert filled == {"appearance": "facs", "appearance_strength": 1.0, "au_statistics": "recipes",
                      "au_style_deg": 0.0, "head_motion_iod": 0.0, "blink_rate": 0.2, "weak_fraction": 0.0,
                      "flicker": 0.0, "apex_error": 0.0}


def test_realism_renders_the_same_neutral_frames_and_changes_the_expressive_ones(identity):
    """One clip rendered with and without appearance: the onset frame (intensity 0) is the
    same bytes, the apex differs, and only inside the face."""
    from merlib.synth.render import CAMERAS, render_clip

    e = _expression((4, 7), amplitude=0.15)
    ints = np.array([0.0, 1.0])
    shade = shading_map(identity.image.shape[:2], identity.landmarks, e, 1.0, 1.0, np.random.default_rng(0))
    plain = render_clip(identity, CAMERAS["samm"], e.displacement, ints, np.random.default_rng(1))
    looked = render_clip(identity, CAMERAS["samm"], e.displacement, ints, np.random.default_rng(1),
                         shading=shade)
    np.testing.assert_array_equal(plain[0], looked[0])
    diff = np.abs(plain[1].astype(int) - looked[1].astype(int))
    assert diff.max() >= 10
    ys, xs = np.nonzero(diff > 3)
    # Everything that changed lies within ~1.5 IOD of the face's centre in the frame.
    centre = np.array([CAMERAS["samm"].width * 0.5, CAMERAS["samm"].height * 0.45])
    reach = np.hypot(xs - centre[0], ys - centre[1]).max()
    assert reach < 1.6 * CAMERAS["samm"].iod_px


def test_subject_style_turns_regions_mirror_symmetrically_and_keeps_amplitudes():
    from merlib.synth.au import IMAGE_LEFT, MIDLINE, MIRROR, STYLE_REGIONS, styled, subject_style

    assert not subject_style(0.0, np.random.default_rng(0)).any()
    a = subject_style(20.0, np.random.default_rng(1))
    assert np.all(a[list(MIDLINE)] == 0.0)
    for region in STYLE_REGIONS.values():
        turned = {abs(round(float(a[i]), 12)) for i in region if i not in MIDLINE}
        assert len(turned) == 1  # one angle per region, its sign mirrored
    for i in IMAGE_LEFT:
        assert a[MIRROR[i]] == pytest.approx(-a[i])
    from merlib.synth.au import expression_field

    e = expression_field((6, 12), (1.0, 1.0), 1, 0.0)  # no asymmetry: a mirror-symmetric field
    d = styled(e, a)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), np.linalg.norm(e, axis=1))
    # A mirror-symmetric expression stays mirror-symmetric: x flips, y stays.
    np.testing.assert_allclose(d[MIRROR, 0], -d[:, 0], atol=1e-12)
    np.testing.assert_allclose(d[MIRROR, 1], d[:, 1], atol=1e-12)
    assert np.abs(d - e).max() > 1e-2


def test_au_style_is_one_per_subject_and_keeps_each_clips_amplitude():
    from merlib.synth.plan import _micro_clip

    plain, style = SynthConfig(seed=3), SynthConfig(seed=3, au_style_deg=25.0)
    clips = [("casme2", "sub01", "EP02_01f", "happiness", "positive"),
             ("casme2", "sub01", "EP03_02", "happiness", "positive"),
             ("casme2", "sub02", "EP02_01f", "happiness", "positive")]
    corner = 54  # a mouth corner: every positive sample moves it (AU12 or AU14)
    turn = []
    for clip in clips:
        a = _micro_clip(plain, *clip).expression.displacement
        b = _micro_clip(style, *clip).expression.displacement
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), np.linalg.norm(a, axis=1))
        assert np.linalg.norm(a[corner]) > 0
        turn.append(np.arctan2(b[corner, 1], b[corner, 0]) - np.arctan2(a[corner, 1], a[corner, 0]))
    # sub01's two clips turn the same way; sub02 another.
    assert turn[0] == pytest.approx(turn[1]) and abs(turn[0]) > 1e-3
    assert abs(turn[2] - turn[0]) > 1e-3


def test_flicker_brightens_the_whole_frame_by_its_gain(identity):
    from merlib.synth.render import CAMERAS, Nuisance, render_clip

    e = _expression((4, 7), amplitude=0.03)
    ints = np.array([0.0, 1.0])
    still = Nuisance(np.zeros((2, 2)), np.zeros(2))
    plain = render_clip(identity, CAMERAS["samm"], e.displacement, ints, np.random.default_rng(1), nuisance=still)
    lit = render_clip(identity, CAMERAS["samm"], e.displacement, ints, np.random.default_rng(1),
                      nuisance=Nuisance(np.zeros((2, 2)), np.zeros(2), gain=np.array([0.0, 0.08])))
    np.testing.assert_array_equal(plain[0], lit[0])
    ratio = lit[1].astype(float).mean() / plain[1].astype(float).mean()
    assert ratio == pytest.approx(1.08, abs=0.01)


def test_apex_error_moves_the_given_apex_off_the_truth_and_nothing_else():
    from merlib.data.frames import middle_frame
    from merlib.synth.plan import _micro_clip

    plain, noisy = SynthConfig(seed=5), SynthConfig(seed=5, apex_error=0.3)
    moved = {"casme2": 0, "smic": 0}
    for i in range(30):
        for dataset, subject, sample, emotion in (("casme2", "sub01", f"EP{i:02d}_01", "disgust"),
                                                  ("smic", "s01", f"s01_ne_{i:02d}", "negative")):
            a = _micro_clip(plain, dataset, subject, sample, emotion, "negative")
            b = _micro_clip(noisy, dataset, subject, sample, emotion, "negative")
            assert a.record.frames == b.record.frames and np.array_equal(a.expression.displacement,
                                                                         b.expression.displacement)
            # The truth is where the intensity peaks, in both.
            for c in (a, b):
                assert c.apex_frame == c.record.frames[int(np.argmax(c.intensities))]
            if dataset == "casme2":
                assert a.record.apex == a.apex_frame  # without the option the sheet tells the truth
                assert b.apex_frame == a.apex_frame  # the true apex stays; the coder's moves
                assert b.onset_frame < b.record.apex <= b.offset_frame
                moved[dataset] += b.record.apex != b.apex_frame
            else:
                middle = middle_frame(list(a.record.frames))
                assert a.apex_frame == middle  # the readers' middle frame was the truth
                moved[dataset] += b.apex_frame != middle
    # With an SD of 0.3 of the rise, most given apexes are off by at least one frame.
    assert moved["casme2"] >= 15 and moved["smic"] >= 5
