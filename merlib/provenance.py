"""What produced a figure: the data (simulated or real, fingerprint), the code, the parameters.

Every figure and table in the book carries a :class:`Provenance` caption, so a number
can always be traced back to the run that computed it, and a number computed from the
simulated dataset can never be mistaken for one computed from the licensed data.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import merlib

#: Marker file written by ``merlib synth`` at the root of a simulated dataset.
SYNTH_MARKER = "SYNTHME.json"
#: Files whose content (not only size) enters the data fingerprint: annotations, labels.
_CONTENT_SUFFIXES = {".xlsx", ".xls", ".csv", ".txt", ".json"}


def is_simulated(data_root: str | os.PathLike) -> bool:
    """True when ``data_root`` was written by ``merlib synth`` (holds ``SYNTHME.json``)."""
    return (Path(data_root) / SYNTH_MARKER).is_file()


def data_fingerprint(data_root: str | os.PathLike, *, length: int = 12) -> str:
    """A short hex digest identifying the data under ``data_root``.

    Hashes, in sorted order, every file's relative path and size, and the full content of
    annotation files (``.xlsx``, ``.csv``, ``.txt``, ``.json``). Image bytes are not read:
    the real datasets are tens of GB, and a changed compressed image almost always
    changes its size too. An uncompressed one (SMIC's BMP frames) does not, so this is a
    label for figures, not a cache key: the caches of derived data key on content (crops
    and clips on their source files' SHA-256). Two roots with the same files and
    annotations get the same fingerprint wherever they are mounted.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data_root: {root} is not a folder")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{path.stat().st_size}\n".encode())
        if path.suffix.lower() in _CONTENT_SUFFIXES:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:length]


@lru_cache(maxsize=1)
def code_version() -> str:
    """``merlib <version>`` plus the git commit (and ``-dirty``) when run from a checkout."""
    package_dir = Path(merlib.__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=package_dir, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short=10", "HEAD")
        dirty = "-dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    except (OSError, subprocess.SubprocessError):
        return f"merlib {merlib.__version__}"
    return f"merlib {merlib.__version__} (git {commit}{dirty})"


@dataclass(frozen=True)
class Provenance:
    """The data, code and parameters behind a figure or table.

    Build it with :meth:`for_data`; put :meth:`caption` under every figure and table.
    """

    data_kind: str  # "SIMULATED (SynthME)" or "real"
    data_fingerprint: str
    code_version: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_data(cls, data_root: str | os.PathLike, **params: Any) -> Provenance:
        root = Path(data_root)
        if is_simulated(root):
            meta = json.loads((root / SYNTH_MARKER).read_text())
            kind = f"SIMULATED (SynthME, seed {meta.get('seed', '?')})"
        else:
            kind = "real"
        return cls(kind, data_fingerprint(root), code_version(), dict(params))

    @property
    def simulated(self) -> bool:
        return self.data_kind.startswith("SIMULATED")

    def caption(self) -> str:
        """One line: data kind + fingerprint, code version, parameters."""
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        text = f"Data: {self.data_kind}, fingerprint {self.data_fingerprint} | Code: {self.code_version}"
        return f"{text} | Params: {params}" if params else text

    def stamp(self, fig: Any) -> Any:
        """Write the caption into a matplotlib figure's bottom margin; returns ``fig``.

        A simulated-data figure also gets a "SIMULATED DATA" title prefix, so the label
        survives when the figure is copied out of the book on its own.
        """
        if self.simulated:
            title = fig._suptitle.get_text() if fig._suptitle is not None else ""
            if not title.startswith("SIMULATED DATA"):
                fig.suptitle(f"SIMULATED DATA — {title}" if title else "SIMULATED DATA", color="#b00020")
        fig.text(0.01, 0.005, self.caption(), fontsize=6, color="#555555", ha="left", va="bottom", wrap=True)
        return fig

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_kind": self.data_kind,
            "data_fingerprint": self.data_fingerprint,
            "code_version": self.code_version,
            "params": self.params,
        }
