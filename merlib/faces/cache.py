"""On-disk store of landmarks and aligned crops, keyed by input content and settings.

Layout under the store's root::

    landmarks/<sha[:2]>/<sha>-<detect_key>.npz            one frame's detection (any frame)
    crops/<sha[:2]>/<sha>-<crop_key>.npz                  one apex frame's aligned crop
    crops/<sha[:2]>/<sha>-<crop_key>-<context_key>.npz    the same, when the frame's own
                                                          detection failed (see below)

``sha`` is the SHA-256 of the frame file's bytes (so moving or renaming the data does
not invalidate anything, and editing a frame does); ``detect_key`` hashes only the
settings that change the landmarks and ``crop_key`` every setting, both with
:data:`~merlib.faces.config.PIPELINE_VERSION`. Changing, say, the mask dilation therefore
re-uses every landmark entry and recomputes only the (cheap) warps.

A frame with no usable face of its own is aligned with the landmarks of a neighbouring
frame (:mod:`merlib.faces.pipeline`, fallback 3), so its crop depends on other files
too: ``context_key`` hashes the SHA-256 of the neighbour whose landmarks were borrowed
(or of every neighbour tried, when none had a face). Editing that neighbour, or the
same bytes sitting in another clip, then gives another entry, never a stale one.

Failures are stored too (with empty arrays and the reason), so a rerun does not retry a
frame known to hold no face. Entries are written to a temporary file in the same folder
and moved into place with :func:`os.replace`: a reader sees a whole entry or none, and
an interrupted run leaves at most a stray ``*.tmp`` file (ignored, and removable).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from merlib.faces.config import AlignConfig

SUFFIX = ".npz"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class FaceStore:
    """The cache folder; cheap to construct (nothing is read until asked).

    Parameters
    ----------
    root : path
        Created on first write.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FaceStore({str(self.root)!r})"

    # Paths ------------------------------------------------------------------------
    def landmark_path(self, sha: str, cfg: AlignConfig) -> Path:
        return self.root / "landmarks" / sha[:2] / f"{sha}-{cfg.detect_key()}{SUFFIX}"

    def crop_path(self, sha: str, cfg: AlignConfig, context: str = "") -> Path:
        """The crop entry of a frame's content under ``cfg``.

        ``context``: '' for a crop made from the frame's own landmarks (or a failure that
        depends on the frame alone); otherwise a description of the other files the
        result depends on (:func:`merlib.faces.pipeline.crop_entry`), hashed into the name.
        """
        tail = f"-{hashlib.sha256(context.encode()).hexdigest()[:16]}" if context else ""
        return self.root / "crops" / sha[:2] / f"{sha}-{cfg.crop_key()}{tail}{SUFFIX}"

    # Reading ----------------------------------------------------------------------
    @staticmethod
    def read_meta(path: str | os.PathLike) -> dict[str, Any] | None:
        """The ``meta`` dict of an entry, or None when there is no entry.

        Only the small ``meta`` member is decompressed (npz members load lazily).
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                return json.loads(str(z["meta"]))
        except FileNotFoundError:
            return None

    @staticmethod
    def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` of an entry, or None when there is no entry."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files if k != "meta"}
                return arrays, json.loads(str(z["meta"]))
        except FileNotFoundError:
            return None

    # Writing ----------------------------------------------------------------------
    @staticmethod
    def write(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
        """Write an entry atomically (temporary file in the same folder, then rename)."""
        if "meta" in arrays:
            raise ValueError("arrays: the name 'meta' is reserved for the metadata")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
        members = {"meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}
        try:
            # An .npz is a zip of .npy files; deflate level 1 gives the size of
            # np.savez_compressed (level 6) at a third of the time (measured on crops).
            with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(
                    fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                for name, array in members.items():
                    with zf.open(f"{name}.npy", "w") as member:
                        np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def stray_temporaries(self) -> list[Path]:
        """``*.tmp`` files left by interrupted writes (safe to delete when no run is active)."""
        return sorted(self.root.rglob("*.tmp")) if self.root.is_dir() else []


def default_store_dir(data_root: str | os.PathLike, fingerprint: str | None = None) -> Path:
    """The book's cache folder for ``data_root``: ``<checkout>/build/faces/<fingerprint>``.

    ``<checkout>`` is the nearest folder from the working directory upwards holding
    ``pyproject.toml`` and ``merlib/`` (notebooks run from ``notebooks/``); outside a
    checkout, merlib's user cache (:func:`merlib.paths.cache_dir`). One folder per data
    fingerprint keeps the manifests of the simulated and the real data apart (the
    entries themselves are keyed by content and could be shared). Pass ``fingerprint``
    when it is known already: computing it walks the whole data tree.
    """
    from merlib.paths import work_dir
    from merlib.provenance import data_fingerprint

    return work_dir() / "faces" / (fingerprint or data_fingerprint(data_root))
