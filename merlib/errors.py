"""Errors merlib raises for bad input. Each message names the file, row or parameter.

The ``merlib`` command prints every :class:`MerlibError` as one line
(``merlib <command>: error: <message>``) and exits with code 2; anything else that
escapes a command is a bug and keeps its traceback.
"""
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


class BrokenFileError(MerlibError, ValueError):
    """A file is there but cannot be read as what it should be: cut short, garbage, or
    another format (names the file, what it should hold, and what to do about it)."""


class OutputError(MerlibError, OSError):
    """An output path cannot be written: a read-only folder, or a path under a regular
    file (names the path). Raised before any work starts."""


class MerlibWarning(UserWarning):
    """Something the user should know about a result that is still produced (e.g. a run
    resumed on another device, whose numbers can differ from an uninterrupted run). The
    CLI prints these as one line ``merlib <command>: warning: <message>``."""
