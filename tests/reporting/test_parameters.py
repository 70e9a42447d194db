"""One parameters cell in an executed notebook: papermill's injected values merged in."""
from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from merlib.errors import BrokenFileError
from merlib.reporting.parameters import MARKER, main, merge_injected_parameters, merged_source

DEFAULTS = """# Small values for nbval.
epochs = 1  # None: the profile's
names = ['a',
         'b']  # compared side by side
seed = 0  # picks the examples
workers = 1  # local workers"""

# As papermill writes it, with a value over several lines (papermill formats with black
# when it is installed).
INJECTED = """# Parameters
epochs = None
names = [
    "x",
    "y",
]
data_root = "/data/synthme"
"""


def _run(source: str) -> dict:
    ns: dict = {}
    exec(source, ns)  # noqa: S102 - the test's own literal cells
    ns.pop("__builtins__")
    return ns


def _executed(path, defaults: str = DEFAULTS, injected: str | None = INJECTED):
    """A notebook as papermill leaves it: markdown, parameters, injected, a cell with output."""
    cells = [new_markdown_cell("# A chapter"),
             new_code_cell(defaults, metadata={"tags": ["parameters"]}, execution_count=1)]
    if injected is not None:
        cells.append(new_code_cell(injected, metadata={"tags": ["injected-parameters"]}, execution_count=2))
    cells.append(new_code_cell("print(epochs)", metadata={"tags": ["hide-input"]}, execution_count=3,
                               outputs=[new_output("stream", name="stdout", text="None\n")]))
    nb = new_notebook(cells=cells, metadata={"papermill": {"parameters": {"epochs": None}}})
    nbformat.write(nb, path)
    return nb


def test_the_parameters_cell_shows_the_values_the_notebook_ran_with(tmp_path):
    path = tmp_path / "chapter.ipynb"
    before = _executed(path)
    assert merge_injected_parameters(path) is True
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) == len(before.cells) - 1
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    params = nb.cells[1]
    assert params.source == (
        f"{MARKER} epochs, names, data_root (the others are the notebook's defaults)\n"
        "# Small values for nbval.\n"
        "epochs = None\n"
        "names = [\n"
        '    "x",\n'
        '    "y",\n'
        "]\n"
        "seed = 0  # picks the examples\n"
        "workers = 1  # local workers\n"
        'data_root = "/data/synthme"')
    # The one cell computes what papermill's two did.
    assert _run(params.source) == {**_run(DEFAULTS), **_run(INJECTED)}
    # Everything else as executed: tags, execution counts, outputs, notebook metadata.
    assert params.metadata.tags == ["parameters"] and params.execution_count == 1
    assert nb.cells[0] == before.cells[0] and nb.cells[2] == before.cells[3]
    assert nb.cells[2].outputs[0].text == "None\n" and nb.cells[2].execution_count == 3
    assert nb.metadata.papermill.parameters == {"epochs": None}
    nbformat.validate(nb)


def test_a_second_run_and_a_notebook_without_injected_values_are_left_alone(tmp_path):
    merged = tmp_path / "merged.ipynb"
    _executed(merged)
    merge_injected_parameters(merged)
    once = merged.read_bytes()
    assert merge_injected_parameters(merged) is False
    assert merged.read_bytes() == once
    plain = tmp_path / "plain.ipynb"
    _executed(plain, injected=None)
    untouched = plain.read_bytes()
    assert merge_injected_parameters(plain) is False
    assert plain.read_bytes() == untouched


def test_a_default_computed_from_an_injected_name_keeps_papermill_order():
    # papermill ran half = 64 // 2 before size = 128; in place, half would read 128.
    defaults = "size = 64  # crop side\nhalf = size // 2"
    source, names = merged_source(defaults, "# Parameters\nsize = 128\n")
    assert names == ["size"]
    assert _run(source) == {"size": 128, "half": 32} == {**_run(defaults), **_run("size = 128")}
    assert source.splitlines()[1:] == ["size = 64  # crop side", "half = size // 2", "size = 128"]


def test_a_notebook_executed_again_lists_every_injected_name_once():
    first, _ = merged_source(DEFAULTS, INJECTED)
    again, names = merged_source(first, "# Parameters\nseed = 3\nepochs = 2\n")
    assert names == ["seed", "epochs"]
    lines = again.splitlines()
    assert [line for line in lines if line.startswith(MARKER)] == [
        f"{MARKER} epochs, names, data_root, seed (the others are the notebook's defaults)"]
    assert lines[0].startswith(MARKER)
    assert _run(again) == {**_run(DEFAULTS), **_run(INJECTED), "seed": 3, "epochs": 2}
    assert "seed = 3" in lines and "epochs = 2" in lines and "seed = 0  # picks the examples" not in lines


def test_bad_cells_and_files_name_the_culprit(tmp_path, capsys):
    with pytest.raises(BrokenFileError, match=r"parameters cell: not valid Python \(line 1"):
        merged_source("epochs = = 1", "epochs = 2")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    ok = tmp_path / "ok.ipynb"
    _executed(ok)
    assert main([str(ok), str(broken)]) == 2
    out, err = capsys.readouterr()
    assert out == f"{ok}: injected parameters merged into the parameters cell\n"
    assert err.count("\n") == 1 and err.startswith("python -m merlib.reporting.parameters: error: ")
    assert str(broken) in err and "not a Jupyter notebook" in err
    assert main([str(tmp_path / "missing.ipynb")]) == 2
    assert "path: " in capsys.readouterr().err


def test_the_module_runs_from_the_command_line(tmp_path):
    path = tmp_path / "chapter.ipynb"
    _executed(path)
    proc = subprocess.run([sys.executable, "-m", "merlib.reporting.parameters", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{path}: injected parameters merged into the parameters cell\n"
    assert len(nbformat.read(path, as_version=4).cells) == 3
