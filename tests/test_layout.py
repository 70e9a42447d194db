"""The import rules of the code map (book/code_map.md), checked from the source text."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKER = REPO.parent / "shared" / "tools" / "layout_check.py"


@pytest.mark.skipif(not CHECKER.is_file(), reason=f"{CHECKER} is not beside this checkout")
def test_no_import_circle_and_no_step_reaches_forward():
    spec = importlib.util.spec_from_file_location("layout_check", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.faults(REPO) == []


def test_the_readers_load_without_the_preprocessing_step():
    """data/ imports nothing of faces/: reading sheets never loads the face detector."""
    import subprocess
    import sys

    code = ("import sys, merlib.data.index, merlib.data.composite; "
            "print(sorted(m for m in sys.modules if m.startswith(('merlib.faces', 'merlib.synth'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
