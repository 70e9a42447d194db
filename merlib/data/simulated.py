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

__all__ = ["MARKER", "TRUTH", "COMPOSITE", "COMPOSITE_COLUMNS", "TRUTH_COLUMNS", "is_synthme_root"]

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
