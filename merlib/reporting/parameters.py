"""One parameters cell in an executed chapter: the values it ran with, not defaults then overrides.

papermill leaves two cells at the top of an executed notebook: the notebook's own cell
tagged ``parameters`` (its defaults, kept small for nbval, e.g. ``macro_epochs = 1``) and,
after it, a cell tagged ``injected-parameters`` with the values the run used
(``macro_epochs = None``). The book showed both, and a reader had to know that the second
wins. :func:`merge_injected_parameters` rewrites the ``parameters`` cell so that it shows
what the chapter ran with: each injected assignment replaces the default of the same
name, the comments of the names that kept their default stay, names the defaults lack
come last, and a first comment line says which values papermill injected. It then deletes
the injected cell.

Deleted rather than tagged ``remove-cell``: MyST-NB hides a tagged cell on the page, but
the executed notebook the book offers for download would still hold the two disagreeing
cells, and anything that re-executes it (jupyter-cache, nbclient) would still run the
hidden one. Deleted, the page, the file and a re-run all agree. What papermill injected
stays on record in the comment line and in the notebook's metadata
(``metadata.papermill.parameters``). Outputs and execution counts are left as they are
(the counts then skip the deleted cell's number).

    python -m merlib.reporting.parameters book/notebooks/*.ipynb
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from merlib.errors import BrokenFileError, ConfigError, MerlibError

#: The tag of the notebook's own parameters cell (papermill's convention).
PARAMETERS_TAG = "parameters"

#: The tag papermill gives the cell it inserts.
INJECTED_TAG = "injected-parameters"

#: Start of the comment line the merge writes; a later merge (the notebook executed
#: again with papermill) finds it and lists every injected name once.
MARKER = "# Values injected by papermill:"

_MARKER_END = " (the others are the notebook's defaults)"


def _parse(source: str, what: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as err:
        raise BrokenFileError(f"{what}: not valid Python (line {err.lineno}: {err.msg})") from None


def _assigned_name(stmt: ast.stmt) -> str | None:
    """The name a ``name = value`` (or ``name: type = value``) statement sets, else None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return stmt.target.id
    return None


def _marker_names(lines: list[str]) -> list[str]:
    names: list[str] = []
    for line in lines:
        if line.startswith(MARKER):
            listed = line[len(MARKER):].removesuffix(_MARKER_END)
            names += [n.strip() for n in listed.split(",") if n.strip()]
    return names


def merged_source(defaults: str, injected: str) -> tuple[str, list[str]]:
    """The source of one parameters cell holding the values a papermill run used.

    Parameters
    ----------
    defaults : str
        The notebook's ``parameters`` cell.
    injected : str
        papermill's ``injected-parameters`` cell (``name = value`` lines, which may span
        several lines).

    Returns
    -------
    source : str
        A first line ``# Values injected by papermill: a, b (...)``, then ``defaults``
        with each injected assignment in place of the same name's (its comment goes with
        it), then the injected names the defaults lack. Where replacing in place could
        change what the cell computes (a later default reads an injected name, two
        statements share a line, or the injected cell holds more than assignments), the
        injected statements follow the defaults unchanged instead, as papermill ran them.
    names : list of str
        The injected names, in papermill's order.

    Raises
    ------
    BrokenFileError
        Either cell is not valid Python.
    """
    inj_tree = _parse(injected, "injected-parameters cell")
    inj = [(_assigned_name(s), ast.get_source_segment(injected, s)) for s in inj_tree.body]
    names = [n for n, _ in inj if n is not None]
    lines = defaults.splitlines()
    listed = _marker_names(lines)
    lines = [line for line in lines if not line.startswith(MARKER)]
    body = "\n".join(lines)
    tree = _parse(body, "parameters cell")

    spans = [(s.lineno, s.end_lineno or s.lineno, _assigned_name(s), s) for s in tree.body]
    last_of = {name: i for i, (_, _, name, _) in enumerate(spans) if name is not None}
    new_values = dict((n, text) for n, text in inj if n is not None)
    in_place = all(n is not None for n, _ in inj)
    for name in new_values.keys() & last_of.keys():
        i = last_of[name]
        first, last, _, _ = spans[i]
        shares_a_line = any(j != i and not (e < first or b > last) for j, (b, e, _, _) in enumerate(spans))
        # A later default computed from this name would change with the injected value.
        read_later = any(isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
                         for _, _, _, s in spans[i + 1:] for node in ast.walk(s))
        if shares_a_line or read_later:
            in_place = False

    out: list[str] = []
    if in_place:
        replace = {spans[last_of[n]][0]: (spans[last_of[n]][1], n) for n in new_values.keys() & last_of.keys()}
        k = 1
        while k <= len(lines):
            if k in replace:
                end, name = replace[k]
                out += new_values[name].splitlines()
                k = end + 1
                continue
            out.append(lines[k - 1])
            k += 1
        extra = [text for n, text in inj if n not in last_of]
    else:
        out = list(lines)
        extra = [text for _, text in inj]
    while out and not out[-1].strip():
        out.pop()
    for text in extra:
        out += text.splitlines()
    shown = list(dict.fromkeys(listed + names))
    return "\n".join([f"{MARKER} {', '.join(shown)}{_MARKER_END}", *out]), names


def _tagged(cells: list, tag: str) -> list[int]:
    return [i for i, c in enumerate(cells) if tag in c.get("metadata", {}).get("tags", [])]


def merge_injected_parameters(path: str | os.PathLike) -> bool:
    """Fold papermill's injected values into an executed notebook's parameters cell.

    Rewrites the cell tagged ``parameters`` with :func:`merged_source` and deletes the
    cell tagged ``injected-parameters``; every other cell, output and execution count is
    kept. A notebook without an injected cell (never run by papermill, or merged
    already) is left untouched, so a second call changes nothing. A notebook with an
    injected cell but no ``parameters`` cell (papermill then puts it first) already
    shows one cell and is left as it is.

    Parameters
    ----------
    path : path-like
        An executed ``.ipynb``; written in place (atomically) when it changes.

    Returns
    -------
    bool
        Whether the notebook was rewritten.

    Raises
    ------
    ConfigError
        ``path`` is not a file.
    BrokenFileError
        The file is not a notebook, or a parameters cell is not valid Python.
    """
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"path: {str(path)!r} is not a file; expected an executed .ipynb")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - JSON, schema and encoding errors all mean "not a notebook"
        raise BrokenFileError(f"{path}: not a Jupyter notebook ({type(err).__name__}: {err})") from None
    injected = _tagged(nb.cells, INJECTED_TAG)
    params = [i for i in _tagged(nb.cells, PARAMETERS_TAG) if i not in injected]
    if not injected or not params:
        return False
    cell = nb.cells[params[0]]
    source = cell.source
    for i in injected:
        try:
            source, _ = merged_source(source, nb.cells[i].source)
        except BrokenFileError as err:
            raise BrokenFileError(f"{path}: {err}") from None
    cell.source = source
    nb.cells = [c for i, c in enumerate(nb.cells) if i not in set(injected)]
    tmp = path.with_name(f".{path.name}.merging")
    try:
        nbformat.write(nb, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m merlib.reporting.parameters NB.ipynb [NB2 ...]``: merge each notebook,
    one line per notebook; exit 2 with one line naming the culprit on a bad file."""
    prog = "python -m merlib.reporting.parameters"
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", help="executed notebooks, rewritten in place")
    args = ap.parse_args(argv)
    for nb in args.notebooks:
        try:
            changed = merge_injected_parameters(nb)
        except MerlibError as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 2
        print(f"{nb}: {'injected parameters merged into the parameters cell' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
