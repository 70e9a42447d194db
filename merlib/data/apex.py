"""The apex cell of an annotation sheet: the coded frame when usable, else an estimate.

The owners' sheets have holes: CASME II writes ``/`` where no apex was coded, and SAMM's
shipped sheet has apex frames outside their clip's onset..offset range (typing errors;
the frames on disk run from onset to offset, so such an apex has no file). The readers
never stop on such a cell: :func:`apex_from_cell` estimates the apex and flags the row
(:data:`FLAGS`), and the flag travels with the sample to every output.

Estimators (the readers' ``apex_fallback``), each ``(frames, onset, offset) -> (frame,
flag)`` over the clip folder's numbered frames:

- ``"motion"`` (the default): the frame of peak facial motion relative to the onset,
  :func:`merlib.faces.apex.clip_apex`. It reads pixels and finds the face with dlib, a
  later step of the method than reading sheets, so this package does not import it: the
  package root (:mod:`merlib`) registers it here (:func:`register_apex_estimator`) the
  first time anything of merlib is imported.
- ``"middle"``: the middle frame of the clip (:func:`middle_apex`), the paper's rule for
  SMIC (no apex annotation); no pixels are read.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from merlib.errors import ConfigError

#: Apex estimation methods, the readers' ``apex_fallback`` choices.
APEX_METHODS: tuple[str, ...] = ("motion", "middle")
#: The flag a row gets when its apex was estimated, per method.
FLAGS: dict[str, str] = {m: f"apex_estimated:{m}" for m in APEX_METHODS}

#: An apex estimator: the clip folder's frames ``(number, path)`` sorted by number, the
#: coded onset and offset -> (apex frame number with a file, flag from :data:`FLAGS`).
ApexEstimator = Callable[[Sequence[tuple[int, Path]], int, int], tuple[int, str]]


def check_method(method: str, name: str = "apex_fallback") -> str:
    """Return ``method`` if it is one of :data:`APEX_METHODS`, else raise ConfigError."""
    if method not in APEX_METHODS:
        raise ConfigError(f"{name}: expected one of {list(APEX_METHODS)}, got {method!r}")
    return method


def frames_in_clip(frames: Sequence[tuple[int, Path]], onset: int,
                   offset: int) -> list[tuple[int, Path]]:
    """The frames within onset..offset; all of them when none lies there (the coded range
    itself is then off)."""
    inside = [(n, p) for n, p in frames if onset <= n <= offset]
    return inside or list(frames)


def middle_apex(frames: Sequence[tuple[int, Path]], onset: int, offset: int) -> tuple[int, str]:
    """The ``"middle"`` estimator: the middle one of :func:`frames_in_clip` (the earlier
    of two), flagged ``apex_estimated:middle``.

    >>> middle_apex([(n, None) for n in range(10, 20)], 12, 17)
    (14, 'apex_estimated:middle')
    """
    used = frames_in_clip(frames, onset, offset)
    if not used:
        raise ConfigError("frames: expected at least one frame, got none")
    return int(used[(len(used) - 1) // 2][0]), FLAGS["middle"]


_ESTIMATORS: dict[str, ApexEstimator] = {"middle": middle_apex}


def register_apex_estimator(method: str, estimator: ApexEstimator) -> None:
    """Make ``estimator`` the one :func:`apex_from_cell` uses for ``method``.

    ``method`` must be one of :data:`APEX_METHODS`; the package root registers
    ``"motion"``. A test may register a stand-in (and put the original back).
    """
    check_method(method, "method")
    if not callable(estimator):
        raise ConfigError(f"estimator: expected a callable, got {estimator!r}")
    _ESTIMATORS[method] = estimator


def apex_estimator(method: str) -> ApexEstimator:
    """The estimator registered for ``method`` (:data:`APEX_METHODS`)."""
    check_method(method, "method")
    try:
        return _ESTIMATORS[method]
    except KeyError:
        raise ConfigError(f"apex_fallback: no {method!r} estimator is registered "
                          "(it comes with merlib.faces.apex; import merlib)") from None


def _cell_text(cell: object) -> str:
    text = str(cell).strip()
    # Flags are ';'-separated: keep a stray ';' in a cell from splitting one.
    return text.replace(";", ",") if text else "empty"


def apex_from_cell(
    cell: object,
    onset: int,
    offset: int,
    frames: Sequence[tuple[int, Path]],
    method: str = "motion",
) -> tuple[int, list[str]]:
    """The apex of an annotated clip: the coded one when usable, else an estimate.

    Parameters
    ----------
    cell : object
        The sheet's apex cell as read (``46``, ``46.0``, ``"46"``, ``"/"``, ``""`` ...).
    onset, offset : int
        The row's coded onset and offset frames.
    frames : sequence of (int, Path)
        The clip folder's frames, sorted by number.
    method : {"motion", "middle"}, default="motion"
        How to estimate an unusable apex (:func:`apex_estimator`).

    Returns
    -------
    apex : int
        The coded frame (whether or not it has a file: the reader reports that), or the
        estimate (a frame with a file).
    flags : list of str
        Empty for a usable coded apex. Otherwise why the cell was not used,
        ``apex_uncoded:<cell as written>`` (``/``, ``empty``, text) or
        ``apex_outside_clip:<frame>`` (a number outside onset..offset), then the
        estimate's flag (:data:`FLAGS`).
    """
    text = str(cell).strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if math.isfinite(number) and number == int(number):
        apex = int(number)
        if onset <= apex <= offset:
            return apex, []
        reason = f"apex_outside_clip:{apex}"
    else:
        reason = f"apex_uncoded:{_cell_text(cell)}"
    frame, flag = apex_estimator(method)(frames, onset, offset)
    return frame, [reason, flag]
