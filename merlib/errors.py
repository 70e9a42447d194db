"""Errors merlib raises for bad input. Each message names the file, row or parameter."""
from __future__ import annotations


class MerlibError(Exception):
    """Base class: the CLI prints these as one clean line instead of a traceback."""


class DataLayoutError(MerlibError, FileNotFoundError):
    """A dataset folder or file is missing or not in the owners' layout."""


class AnnotationError(MerlibError, ValueError):
    """An annotation file has a row or cell that cannot be read (names file and row)."""


class MissingSamplesError(MerlibError, LookupError):
    """Samples a selection lists are not on disk (names them)."""


class ConfigError(MerlibError, ValueError):
    """A setting or argument has a value outside its domain (names it, the expected range
    and the value received)."""
