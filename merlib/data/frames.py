"""List the frame files of a clip folder, sorted by the number in their names."""
from __future__ import annotations

import re
from pathlib import Path

from merlib.errors import AnnotationError, DataLayoutError

#: A frame-name pattern is a regular expression with exactly one group: the frame number.
#: It must match the whole file name (case-insensitively: owners' copies differ in case).
FramePattern = str


def list_frames(folder: Path | str, pattern: FramePattern) -> list[tuple[int, Path]]:
    """The frames of ``folder`` as ``(frame_number, path)``, sorted numerically.

    Parameters
    ----------
    folder : path
        Folder holding one clip's frame files.
    pattern : str
        Regular expression matched against each whole file name; its single group
        is the frame number (e.g. ``r"img(\\d+)\\.jpg"``). Other files are ignored.

    Returns
    -------
    list of (int, Path)
        One entry per frame file, ``img99`` before ``img100``.

    Raises
    ------
    DataLayoutError
        If the folder does not exist, holds no matching file, or two files share a
        frame number (``img7.jpg`` and ``img07.jpg``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataLayoutError(f"frame folder {folder} does not exist")
    rx = re.compile(pattern, re.IGNORECASE)
    found: dict[int, Path] = {}
    for path in folder.iterdir():
        m = rx.fullmatch(path.name)
        if m is None or not path.is_file():
            continue
        n = int(m.group(1))
        if n in found:
            raise DataLayoutError(
                f"{folder}: files {found[n].name} and {path.name} both hold frame {n}"
            )
        found[n] = path
    if not found:
        raise DataLayoutError(f"{folder}: no frame files matching {pattern!r}")
    return sorted(found.items())


def middle_frame(numbers: list[int]) -> int:
    """The middle of a sorted frame list (the lower middle for an even count).

    This is the apex rule of the paper for clips without an apex annotation.
    """
    if not numbers:
        raise ValueError("middle_frame: empty frame list")
    return numbers[(len(numbers) - 1) // 2]


def nearest_frame(numbers: list[int], target: int) -> int:
    """The frame number in ``numbers`` closest to ``target`` (the lower one on a tie)."""
    if not numbers:
        raise ValueError("nearest_frame: empty frame list")
    return min(numbers, key=lambda n: (abs(n - target), n))


def relative(path: Path, data_root: Path) -> str:
    """``path`` as a POSIX string relative to ``data_root`` (the manifest convention)."""
    return Path(path).relative_to(data_root).as_posix()


def parse_frame_cell(value: object, where: str) -> int:
    """A spreadsheet cell holding a frame number (``46``, ``46.0``, ``"46"``) as int.

    Raises
    ------
    AnnotationError
        The cell is not a whole number; the message starts with ``where`` (the file,
        row and column at fault).
    """
    try:
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if number != number or number != int(number):
        raise AnnotationError(f"{where}: {value!r} is not a frame number")
    return int(number)
