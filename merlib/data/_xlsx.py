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
