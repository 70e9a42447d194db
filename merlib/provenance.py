"""What produced a figure: the data (simulated or real, fingerprint), the code, the
parameters, and the machine.

Every figure and table in the book carries a :class:`Provenance` caption, so a number
can always be traced back to the run that computed it, and a number computed from the
simulated dataset can never be mistaken for one computed from the licensed data.

The machine is part of it because a network's numbers are bit-identical across reruns on
one machine, not across machines: the same commit gave the full method's composite UF1
0.229 on one x86 CPU and 0.296 on an AVX-512 one. oneDNN, MKL and torch's own kernels
pick their code path from the CPU's instruction set (and cuDNN / cuBLAS theirs from the
GPU's), which changes the order of floating-point sums. So the caption names the CPU
model, its architecture and the instruction-set extensions those libraries dispatch on
(:data:`NOTABLE_FLAGS`), and the GPU with its compute capability when the run's
``device`` parameter is CUDA (:func:`machine_summary`).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import merlib

#: Marker file written by ``merlib synth`` at the root of a simulated dataset.
SYNTH_MARKER = "SYNTHME.json"
#: CPU features worth naming: those whose presence changes which kernels oneDNN, MKL and
#: torch run (wide vectors, fused multiply-add, int8 dot products, bf16 / AMX; on ARM,
#: NEON/ASIMD and SVE), in this order.
NOTABLE_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16",
                                  "amx_int8", "asimd", "sve", "sve2")
_CPUINFO = "/proc/cpuinfo"
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


def _cpuinfo_fields(cpuinfo: str | os.PathLike) -> dict[str, str]:
    """The first value of each ``key : value`` line of ``cpuinfo`` (empty where unreadable)."""
    out: dict[str, str] = {}
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def cpu_model(cpuinfo: str | os.PathLike = _CPUINFO) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ('unknown CPU' where there is none).

    ARM kernels give no ``model name``: their ``Hardware`` or ``CPU implementer`` /
    ``CPU part`` codes are used instead.
    """
    info = _cpuinfo_fields(cpuinfo)
    if info.get("model name"):
        return info["model name"]
    if info.get("Hardware"):
        return info["Hardware"]
    if info.get("CPU implementer") and info.get("CPU part"):
        return f"ARM implementer {info['CPU implementer']} part {info['CPU part']}"
    return "unknown CPU"


def cpu_flags(cpuinfo: str | os.PathLike = _CPUINFO) -> list[str]:
    """Which of :data:`NOTABLE_FLAGS` the CPU reports (``flags``, on ARM ``Features``),
    in that order."""
    info = _cpuinfo_fields(cpuinfo)
    have = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in NOTABLE_FLAGS if f in have]


@lru_cache(maxsize=1)
def cpu_summary() -> str:
    """This machine's CPU in one phrase: model, architecture, notable instruction sets,
    e.g. ``"AMD EPYC 7B13 (x86_64; avx2 fma)"``."""
    flags = " ".join(cpu_flags()) or "none of " + "/".join(NOTABLE_FLAGS)
    return f"{cpu_model()} ({platform.machine() or 'unknown architecture'}; {flags})"


def gpu_summary(device: str) -> str | None:
    """The GPU behind ``device`` in one phrase, None for ``cpu``.

    Names the card, its compute capability (``sm_XY``: the GPU's instruction set) and the
    CUDA and cuDNN versions torch runs with, e.g. ``"NVIDIA H100 80GB HBM3 (sm_90, CUDA
    12.4, cuDNN 90100)"``. torch is imported only here, for a CUDA device.
    """
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"{device} asked for, but torch {torch.__version__} sees no CUDA device"
    index = torch.device(device).index
    props = torch.cuda.get_device_properties(torch.cuda.current_device() if index is None else index)
    return (f"{props.name} (sm_{props.major}{props.minor}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()})")


def machine_summary(device: str | None = None) -> str:
    """The CPU (:func:`cpu_summary`), and the GPU when ``device`` is CUDA
    (:func:`gpu_summary`): what a caption says the numbers were computed on."""
    gpu = gpu_summary(device) if device is not None else None
    return f"CPU {cpu_summary()}" + (f"; GPU {gpu}" if gpu else "")


@dataclass(frozen=True)
class Provenance:
    """The data, code, parameters and machine behind a figure or table.

    Build it with :meth:`for_data`; put :meth:`caption` under every figure and table.
    ``machine`` is filled in when left empty: :func:`machine_summary` of this process,
    with the GPU when ``params`` holds a CUDA ``device``.
    """

    data_kind: str  # "SIMULATED (SynthME)" or "real"
    data_fingerprint: str
    code_version: str
    params: dict[str, Any] = field(default_factory=dict)
    machine: str = ""

    def __post_init__(self) -> None:
        if not self.machine:
            device = self.params.get("device") if isinstance(self.params, dict) else None
            object.__setattr__(self, "machine", machine_summary(device if isinstance(device, str) else None))

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
        """One line: data kind + fingerprint, code version, machine, parameters."""
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        text = (f"Data: {self.data_kind}, fingerprint {self.data_fingerprint} | Code: {self.code_version} | "
                f"Machine: {self.machine}")
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
            "machine": self.machine,
            "params": self.params,
        }
