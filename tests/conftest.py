"""Fixtures shared by every test package."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny simulated (SynthME) data root, made once per test session.

    ``make test`` generates one before pytest starts and passes it in
    ``$MERLIB_DATA_ROOT`` (the notebooks under nbval read the same one); without it,
    one is generated here: 3 micro subjects, 4 macro subjects, seed 0.
    """
    env = os.environ.get("MERLIB_DATA_ROOT")
    if env and (Path(env) / "SYNTHME.json").is_file():
        return Path(env)
    from merlib.synth import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth") / "synthme-tiny"
    return generate(out, SynthConfig(seed=0, micro_subjects=3, macro_subjects=4), progress=False)
