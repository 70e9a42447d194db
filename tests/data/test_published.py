"""The packaged published results: parse, ranges, a source and a bibliography entry per row."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from merlib.data.published import SCORE_COLUMNS, STATUS, published_results, validate_published
from merlib.errors import AnnotationError

BIB = Path(__file__).resolve().parents[2] / "book" / "references.bib"


def test_file_parses_with_ranges_sources_and_status():
    t = published_results()
    assert len(t) >= 1
    scores = t[list(SCORE_COLUMNS)]
    assert ((scores >= 0) & (scores <= 1) | scores.isna()).all().all()
    assert t["source"].str.len().gt(20).all()
    assert (t["status"] == STATUS).all() and STATUS == "published (real data)"
    assert t["year"].between(2000, 2030).all()


def test_every_bib_key_is_in_the_book_bibliography():
    keys = set(re.findall(r"@\w+\{([^,]+),", BIB.read_text(encoding="utf-8")))
    missing = set(published_results()["bib_key"]) - keys
    assert not missing, f"bib keys not in {BIB.name}: {sorted(missing)}"


def test_ststnet_row_is_the_abstracts_numbers():
    row = published_results().set_index("method").loc["STSTNet"]
    assert row["uf1_composite"] == pytest.approx(0.7353)
    assert row["uar_composite"] == pytest.approx(0.7605)
    assert row["uar_casme2"] == pytest.approx(0.8686)


def _row(**kw) -> pd.DataFrame:
    base = {"method": "X", "year": 2020, "bib_key": "x2020", "protocol": "LOSO", "source": "paper, Table 1",
            "note": "", **{c: "" for c in SCORE_COLUMNS}, "uf1_composite": "0.5"}
    return pd.DataFrame([{**base, **kw}])


def test_validation_names_row_and_column():
    with pytest.raises(AnnotationError, match=r"row 2 \(X\): uar_smic '73.5' is not a fraction"):
        validate_published(_row(uar_smic="73.5"))
    with pytest.raises(AnnotationError, match=r"row 2 \(X\): source is empty"):
        validate_published(_row(source=""))
    with pytest.raises(AnnotationError, match="no score at all"):
        validate_published(_row(uf1_composite=""))
    with pytest.raises(AnnotationError, match=r"missing columns \['note'\]"):
        validate_published(_row().drop(columns="note"))
    ok = validate_published(_row())
    assert ok["uf1_composite"].iloc[0] == 0.5 and ok["uar_samm"].isna().iloc[0]
