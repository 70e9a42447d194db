"""The files that mark a simulated data root, and how to read them.

A SynthME root (written by :mod:`merlib.synth`) holds the seven datasets in the owners'
layouts plus three files of its own, named here so that the readers can recognise a
simulated root without importing the generator:

- ``SYNTHME.json`` (:data:`MARKER`): marks the root as simulated (``"simulated": true``),
  with the seed, configuration, counts and source faces;
- ``SYNTHME_truth.csv`` (:data:`TRUTH`): one row per sample with its true label, action
  units, amplitude and coded frames (:data:`TRUTH_COLUMNS`);
- ``SYNTHME_composite.csv`` (:data:`COMPOSITE`): the MEGC2019 composite samples the root
  simulates (:data:`COMPOSITE_COLUMNS`), a subset of the packaged list.

The readers ignore all three; :func:`merlib.data.composite.expected_composite` reads the
composite record.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["MARKER", "TRUTH", "COMPOSITE", "COMPOSITE_COLUMNS", "TRUTH_COLUMNS", "is_synthme_root", "timing_path",
           "read_timing"]

MARKER = "SYNTHME.json"
TRUTH = "SYNTHME_truth.csv"
#: The MEGC2019 composite samples a root simulates (a subset of the packaged list).
COMPOSITE = "SYNTHME_composite.csv"
COMPOSITE_COLUMNS: tuple[str, ...] = ("dataset", "subject", "sample", "label")
TRUTH_COLUMNS: tuple[str, ...] = (
    "dataset", "subject", "sample", "label", "emotion", "aus", "amplitude_iod",
    "source_faces", "apex_frame", "onset_frame", "offset_frame",
)


def is_synthme_root(data_root: Path | str) -> bool:
    """True when ``data_root`` holds a SynthME marker (``SYNTHME.json``, simulated)."""
    try:
        doc = json.loads((Path(data_root) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("simulated") is True


def timing_path(data_root: Path | str) -> Path:
    """``<root>.timing.json``, beside the root: how long ``merlib synth`` took to write it.
    Outside the root, so that the data fingerprint does not depend on the machine."""
    root = Path(data_root)
    return root.with_name(root.name + ".timing.json")


def read_timing(data_root: Path | str) -> dict | None:
    """The generation-time note of a root (seconds, date, code, machine), or None when
    there is none or it is unreadable (it is a note, not data)."""
    try:
        doc = json.loads(timing_path(data_root).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("seconds"), (int, float)) else None
