"""Make ``import timm`` work with the CPU build of torch.

The registry's torchvision wheels are built against CUDA torch. With the CPU torch
2.13.0 their compiled ``_C`` extension cannot load (it needs ``libc10_cuda.so``), and
torchvision's pure-Python operator registrations then raise
``RuntimeError: operator torchvision::nms does not exist`` at import time. timm imports
torchvision, so timm fails too.

The fix: when (and only when) that import fails, define the two missing operator
*schemas* and import again. merlib never calls ``nms``/``qnms``; it needs torchvision only
because timm imports it. Where a working torchvision is installed the first import
succeeds and nothing is changed. This module is the only place in merlib that knows
about the problem: import timm through :func:`import_timm`.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY = None  # kept alive: the schemas are dropped when the Library is collected
patched: bool = False  #: True once the schemas had to be defined in this process


def _define_schemas() -> None:
    global _LIBRARY, patched
    import torch

    _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS.values():
        _LIBRARY.define(schema)
    patched = True


def import_torchvision() -> ModuleType:
    """Import torchvision, defining its missing op schemas if the import needs them."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err) or patched:
            raise
    # The failed import left half-initialised modules behind; start again cleanly.
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _define_schemas()
    return importlib.import_module("torchvision")


def import_timm() -> ModuleType:
    """Import and return :mod:`timm` (works with the CPU torch build, see module doc)."""
    import_torchvision()
    # timm imports huggingface_hub, whose progress bars import tqdm.auto: in a Jupyter
    # kernel without ipywidgets that prints "TqdmWarning: IProgress not found" into every
    # rendered page of the book. merlib's own bars are text bars.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        return importlib.import_module("timm")
