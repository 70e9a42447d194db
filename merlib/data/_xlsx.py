"""Make written .xlsx files byte-reproducible.

openpyxl stamps the creation time into ``docProps/core.xml`` and every zip entry, so two
otherwise identical workbooks differ. SynthME promises identical bytes for a seed, so
every workbook it writes is rewritten with one fixed time.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

#: The time written instead of "now" (zip's epoch cannot go before 1980).
FIXED_TIME = (2000, 1, 1, 0, 0, 0)
_W3CDTF = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def freeze_xlsx(path: Path | str) -> None:
    """Rewrite ``path`` in place with fixed timestamps; cell contents are untouched."""
    path = Path(path)
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    stamp = b"%04d-%02d-%02dT%02d:%02d:%02dZ" % FIXED_TIME
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = _W3CDTF.sub(rb"\g<1>" + stamp + rb"\g<2>", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            zout.writestr(fixed, data)
    tmp.replace(path)


def read_sheet(path: Path | str, sheet: str | int = 0, **kwargs) -> "pd.DataFrame":
    """One sheet of an owner's annotation workbook, every failure as one AnnotationError.

    Parameters
    ----------
    path : path
        The ``.xlsx`` file.
    sheet : str or int, default=0
        Sheet name, or position (0: the first sheet).
    **kwargs
        Passed to :func:`pandas.read_excel` (``header``, ``dtype`` ...).

    Raises
    ------
    AnnotationError
        The file is not a readable spreadsheet (cut short, another format renamed
        ``.xlsx``, unreadable), or lacks the sheet; the message names the file and, for a
        missing sheet, the sheets it has.
    """
    import pandas as pd

    from merlib.errors import AnnotationError

    path = Path(path)
    try:
        book = pd.ExcelFile(path)
    except Exception as err:  # noqa: BLE001 - zipfile, openpyxl, pandas and OS errors alike
        # Whatever the reason (BadZipFile, "format cannot be determined", a zip that is
        # not a workbook, a permission problem), the user needs the file and the cause.
        raise AnnotationError(
            f"{path}: not a readable .xlsx spreadsheet ({type(err).__name__}: {err})"
        ) from None
    with book:
        names = book.sheet_names
        if isinstance(sheet, str) and sheet not in names:
            raise AnnotationError(f"{path.name}: no sheet {sheet!r}; the workbook has {names}")
        if isinstance(sheet, int) and not 0 <= sheet < len(names):
            raise AnnotationError(f"{path.name}: no sheet number {sheet}; the workbook has {names}")
        try:
            return pd.read_excel(book, sheet_name=sheet, **kwargs)
        except Exception as err:  # noqa: BLE001 - a damaged sheet part inside a valid zip
            raise AnnotationError(
                f"{path}: sheet {sheet!r} cannot be read ({type(err).__name__}: {err})"
            ) from None
