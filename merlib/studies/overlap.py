"""Source-face overlap between SynthME subjects: how appearance-independent LOSO is there.

Every SynthME subject is a morph of two or more pool photographs
(:mod:`merlib.synth.morph`), and the pool is small (about 21 faces), so subjects
share source faces. Leave-one-subject-out then does not hold a subject's *appearance*
out: a training subject that shares a face with the test subject looks partly like it.
This module measures that from a root's records:

* :func:`identity_sources`: which faces (and weights) make each subject, read from the
  ``identities`` record of ``SYNTHME.json`` (roots written before it existed: the
  ``source_faces`` column of ``SYNTHME_truth.csv``, weights unknown);
* :func:`shared_pairs`: every pair of subjects sharing a face;
* :func:`nearest_subjects`: each composite test subject's nearest other composite
  subject in a cheap pixel feature space (aligned grey crops of the clips' first,
  neutral frames), and whether the two share a face;
* :func:`source_overlap`: all of it with a summary.

A nearest neighbour that shares a face far more often than a random other subject would
(``chance``) says the appearance a model sees is driven by the source faces.

Example
-------
>>> from merlib.studies.overlap import source_overlap
>>> result = source_overlap("data/synthme")                        # doctest: +SKIP
>>> result.summary["micro_sharing_any"], result.summary["nn_shares_source"]  # doctest: +SKIP
"""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from merlib.data.schema import MICRO_DATASETS
from merlib.errors import DataLayoutError

__all__ = ["OverlapResult", "identity_sources", "shared_pairs", "composite_subjects",
           "subject_features", "nearest_subjects", "source_overlap"]

#: Aligned crop used as features: side in pixels and in inter-ocular distances (tighter
#: than the method's 2.5 IOD, so the dataset's backdrop barely shows).
FEATURE_SIZE = 32
FEATURE_SIDE_IOD = 1.8


@dataclass(frozen=True)
class OverlapResult:
    """What :func:`source_overlap` measured.

    Attributes
    ----------
    sources : DataFrame
        :func:`identity_sources`.
    pairs : DataFrame
        :func:`shared_pairs`.
    nearest : DataFrame
        :func:`nearest_subjects` (empty when features were not computed).
    summary : dict
        ``micro_subjects``; ``micro_sharing_any`` and ``micro_sharing_primary`` (micro
        subjects sharing any face / their primary face with another micro subject);
        ``micro_pairs_sharing`` of ``micro_pairs``; ``test_subjects``;
        ``nn_shares_source`` and ``nn_shares_primary`` (share of test subjects whose
        nearest training subject shares a face / the primary face), ``chance`` (the
        same share for a random training subject), NaN without features.
    """

    sources: pd.DataFrame
    pairs: pd.DataFrame
    nearest: pd.DataFrame
    summary: dict


def _key(dataset: str, subject: str) -> str:
    return f"{dataset}/{subject}"


def identity_sources(root: str | os.PathLike) -> pd.DataFrame:
    """Source faces of every subject of a SynthME root.

    Returns
    -------
    DataFrame
        One row per subject: ``key`` (``dataset/subject``), ``dataset``, ``subject``,
        ``micro`` (bool), ``faces`` (tuple of face ids, primary first), ``weights``
        (tuple of float; NaNs when the root records none), ``primary``.

    Raises
    ------
    DataLayoutError
        The root has neither an ``identities`` record in ``SYNTHME.json`` nor a
        ``source_faces`` column in ``SYNTHME_truth.csv``.
    """
    from merlib.synth import MARKER, TRUTH

    root = Path(root)
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError) as err:
        raise DataLayoutError(f"{root}: no readable {MARKER} ({err}); not a SynthME root?") from None
    rows = []
    record = marker.get("identities") if isinstance(marker, dict) else None
    if record:
        for key, ident in record.items():
            dataset, subject = key.split("/", 1)
            rows.append((key, dataset, subject, tuple(ident["faces"]),
                         tuple(float(w) for w in ident["weights"])))
    else:
        # Roots written before the marker recorded identities: faces only, from the truth.
        path = root / TRUTH
        try:
            truth = pd.read_csv(path, dtype=str, keep_default_na=False)
        except OSError as err:
            raise DataLayoutError(f"{path}: cannot read ({err})") from None
        if "source_faces" not in truth.columns:
            raise DataLayoutError(f"{path}: no source_faces column and {MARKER} records no "
                                  f"identities; regenerate the root with `merlib synth`")
        first = truth.drop_duplicates(["dataset", "subject"])
        for r in first.itertuples(index=False):
            faces = tuple(r.source_faces.split("+"))
            rows.append((_key(r.dataset, r.subject), r.dataset, r.subject, faces,
                         (float("nan"),) * len(faces)))
    table = pd.DataFrame(rows, columns=["key", "dataset", "subject", "faces", "weights"])
    table.insert(3, "micro", table["dataset"].isin(MICRO_DATASETS))
    table["primary"] = [f[0] for f in table["faces"]]
    return table


def shared_pairs(sources: pd.DataFrame) -> pd.DataFrame:
    """Every pair of subjects that share at least one source face.

    Parameters
    ----------
    sources : DataFrame
        :func:`identity_sources`.

    Returns
    -------
    DataFrame
        ``key_a``, ``key_b`` (in ``sources`` order), ``micro`` (both are micro subjects),
        ``shared`` (the shared faces, ``+``-joined, sorted), ``same_primary``,
        ``shared_weight`` (sum over shared faces of the smaller of the two weights: 1
        when both are the same blend; NaN when weights are unknown).
    """
    rows = []
    recs = list(sources.itertuples(index=False))
    for a, b in itertools.combinations(recs, 2):
        common = sorted(set(a.faces) & set(b.faces))
        if not common:
            continue
        wa, wb = dict(zip(a.faces, a.weights)), dict(zip(b.faces, b.weights))
        rows.append((a.key, b.key, bool(a.micro and b.micro), "+".join(common),
                     a.primary == b.primary, float(sum(min(wa[f], wb[f]) for f in common))))
    table = pd.DataFrame(rows, columns=["key_a", "key_b", "micro", "shared", "same_primary",
                                        "shared_weight"])
    # Typed even when empty: an empty object column would index as a column list.
    return table.astype({"key_a": str, "key_b": str, "micro": bool, "shared": str,
                         "same_primary": bool, "shared_weight": float})


def composite_subjects(root: str | os.PathLike) -> list[str]:
    """Keys of the subjects of the MEGC2019 composite the root simulates (its
    ``SYNTHME_composite.csv``; older roots: the labelled micro rows of the truth)."""
    from merlib.synth import COMPOSITE, TRUTH

    root = Path(root)
    path = root / COMPOSITE if (root / COMPOSITE).is_file() else root / TRUTH
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table = table[table["dataset"].isin(MICRO_DATASETS) & (table["label"] != "")]
    return list(dict.fromkeys(_key(d, s) for d, s in zip(table["dataset"], table["subject"])))


def subject_features(root: str | os.PathLike, keys: list[str], *, clips: int = 2) -> np.ndarray:
    """One pixel feature vector per subject: its neutral face, aligned.

    The first frame of each of the subject's first ``clips`` labelled clips (neutral in
    SynthME: an expression starts after it) is found by dlib, aligned (eyes level,
    :data:`FEATURE_SIDE_IOD` wide, no eye mask), cut to :data:`FEATURE_SIZE` square grey,
    standardised (zero mean, unit variance: the cameras' gains differ), and the crops are
    averaged.

    Returns
    -------
    ndarray of shape (len(keys), FEATURE_SIZE ** 2), float32
        A row of NaNs for a subject none of whose frames showed a face.
    """
    from merlib.data.frames import list_frames
    from merlib.data.index import frame_pattern, index_datasets
    from merlib.faces.config import AlignConfig
    from merlib.faces.pipeline import align, find_landmarks, read_grey

    root = Path(root)
    cfg = AlignConfig(crop_size=FEATURE_SIZE, side_iod=FEATURE_SIDE_IOD, mask_eyes=False)
    datasets = sorted({k.split("/", 1)[0] for k in keys})
    index = index_datasets(root, datasets)
    index = index[index["label"].notna()].sort_values(["dataset", "subject", "sample"])
    out = np.full((len(keys), FEATURE_SIZE * FEATURE_SIZE), np.nan, np.float32)
    for row, key in enumerate(keys):
        dataset, subject = key.split("/", 1)
        mine = index[(index["dataset"] == dataset) & (index["subject"] == subject)].head(clips)
        crops = []
        for r in mine.itertuples(index=False):
            part = r.part if isinstance(r.part, str) and r.part else None
            frames = list_frames(root / r.clip_dir, frame_pattern(dataset, part))
            grey = read_grey(frames[0][1])
            found = find_landmarks(grey, cfg)
            if found.points is None:
                continue
            crop = align(grey, found.points, cfg).crop.astype(np.float32)
            crops.append((crop - crop.mean()) / (crop.std() + 1e-6))
        if crops:
            out[row] = np.mean(crops, axis=0).ravel()
    return out


def nearest_subjects(sources: pd.DataFrame, keys: list[str],
                     features: np.ndarray) -> pd.DataFrame:
    """Each subject's nearest other subject of ``keys`` (Euclidean, in ``features``).

    Parameters
    ----------
    sources : DataFrame
        :func:`identity_sources`.
    keys : list of str
        The test subjects; each one's training subjects are the others.
    features : ndarray of shape (len(keys), n_features)
        Rows of NaNs (no face found) are left out on both sides.

    Returns
    -------
    DataFrame
        ``key``, ``nearest``, ``distance``, ``shares_source``, ``shares_primary``,
        ``chance`` (share of the other subjects that share a face with ``key``).
    """
    faces = dict(zip(sources["key"], sources["faces"]))
    ok = ~np.isnan(features).any(axis=1)
    usable = [k for k, good in zip(keys, ok) if good]
    feats = features[ok].astype(np.float64)
    dist = np.sqrt(((feats[:, None, :] - feats[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    rows = []
    for i, key in enumerate(usable):
        j = int(np.argmin(dist[i]))
        near = usable[j]
        others = [k for k in usable if k != key]
        share = [bool(set(faces[key]) & set(faces[k])) for k in others]
        rows.append((key, near, float(dist[i, j]), bool(set(faces[key]) & set(faces[near])),
                     faces[key][0] == faces[near][0], float(np.mean(share)) if share else np.nan))
    return pd.DataFrame(rows, columns=["key", "nearest", "distance", "shares_source",
                                       "shares_primary", "chance"])


def source_overlap(root: str | os.PathLike, *, features: bool = True,
                   clips: int = 2) -> OverlapResult:
    """Measure how much SynthME's micro subjects share source faces.

    Parameters
    ----------
    root : path
        A SynthME root.
    features : bool, default=True
        Also find each composite test subject's nearest training subject in pixel
        features (:func:`subject_features`: dlib on ``clips`` frames per subject, about
        a second per subject); False: the record only.
    clips : int, default=2
        Neutral frames averaged per subject.

    Returns
    -------
    OverlapResult
    """
    sources = identity_sources(root)
    pairs = shared_pairs(sources)
    micro = sources[sources["micro"]]
    micro_pairs = pairs.loc[pairs["micro"]]
    sharing = set(micro_pairs["key_a"]) | set(micro_pairs["key_b"])
    same = micro_pairs.loc[micro_pairs["same_primary"]]
    n = len(micro)
    summary: dict = {
        "micro_subjects": n,
        "micro_sharing_any": len(sharing),
        "micro_sharing_primary": len(set(same["key_a"]) | set(same["key_b"])),
        "micro_pairs_sharing": len(micro_pairs),
        "micro_pairs": n * (n - 1) // 2,
        "test_subjects": 0,
        "nn_shares_source": float("nan"),
        "nn_shares_primary": float("nan"),
        "chance": float("nan"),
    }
    nearest = pd.DataFrame(columns=["key", "nearest", "distance", "shares_source",
                                    "shares_primary", "chance"])
    if features:
        keys = composite_subjects(root)
        nearest = nearest_subjects(sources, keys, subject_features(root, keys, clips=clips))
        if len(nearest):
            summary.update(test_subjects=len(nearest),
                           nn_shares_source=float(nearest["shares_source"].mean()),
                           nn_shares_primary=float(nearest["shares_primary"].mean()),
                           chance=float(nearest["chance"].mean()))
    return OverlapResult(sources, pairs, nearest, summary)
