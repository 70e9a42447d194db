"""Default locations: where the default (simulated) data root and caches live.

Every function here takes an explicit path first; the environment variables only fill
in what the caller left out, so notebooks run by nbval or papermill find the data the
Makefile generated without hard-coding a machine's paths.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from merlib.errors import DataLayoutError

#: Folder (under a project checkout) that ``make data`` fills with the simulated dataset.
DEFAULT_DATA_SUBDIR = Path("data") / "synthme"


def cache_dir() -> Path:
    """merlib's user cache: ``$MERLIB_CACHE_DIR``, else ``$XDG_CACHE_HOME/merlib``."""
    if env := os.environ.get("MERLIB_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "merlib"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The data root to use.

    Parameters
    ----------
    data_root : path or None
        Used as given when not None. Otherwise ``$MERLIB_DATA_ROOT``, otherwise the first
        ``data/synthme`` found in the current directory or one of its parents (so a
        notebook run from ``notebooks/`` finds the checkout's default data).

    Raises
    ------
    DataLayoutError
        When nothing is found; the message says how to create the default data.
    """
    if data_root is not None:
        return Path(data_root).expanduser().resolve()
    if env := os.environ.get("MERLIB_DATA_ROOT"):
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_DATA_SUBDIR
        if candidate.is_dir():
            return candidate
    raise DataLayoutError(
        "data_root: none given, $MERLIB_DATA_ROOT is unset and no "
        f"{DEFAULT_DATA_SUBDIR} folder was found from {here} upwards; run `make data` "
        "(or `merlib synth --out data/synthme`) or pass data_root"
    )


def work_dir() -> Path:
    """Where computed artefacts (crop caches, results) go by default.

    ``$MERLIB_BUILD_DIR`` when set: ``make book PROFILE=paper`` (any book other than the
    default one) points it at a folder of its own, so that runs with other settings or
    data never share caches with the default book. Otherwise ``<checkout>/build`` when
    the working directory is inside a merlib checkout (the nearest folder upwards holding
    ``pyproject.toml`` and ``merlib/``; notebooks run from ``notebooks/``), else merlib's
    user cache (:func:`cache_dir`).
    """
    if env := os.environ.get("MERLIB_BUILD_DIR"):
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "merlib").is_dir():
            return folder / "build"
    return cache_dir()


def results_dir(data_root: str | os.PathLike, *names: str, fingerprint: str | None = None) -> Path:
    """``work_dir()/results/<data fingerprint>/<names...>``: one folder per data and run kind.

    Pass ``fingerprint`` when it is known already: computing it walks the whole data tree.
    """
    from merlib.provenance import data_fingerprint

    return work_dir().joinpath("results", fingerprint or data_fingerprint(data_root), *names)


def settings_digest(settings: Any, length: int = 10) -> str:
    """A short hash of JSON-like settings (keys sorted; other objects by ``str``): the
    suffix that gives each set of settings its own results folder."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
