"""The packaged published results: parse, ranges, a source and a bibliography entry per row."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from merlib.data.published import (SCORE_COLUMNS, STATUS, published_as_written, published_results,
                                   validate_published)
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


def test_ststnet_row_is_table_iii_of_the_paper():
    row = published_results().set_index("method").loc["STSTNet"]
    # Liong et al. 2019, Table III: composite, SMIC, CASME II, SAMM as UF1 / UAR.
    assert row[["uf1_composite", "uar_composite", "uf1_smic", "uar_smic", "uf1_casme2", "uar_casme2",
                "uf1_samm", "uar_samm"]].tolist() == pytest.approx(
        [0.7353, 0.7605, 0.6801, 0.7013, 0.8382, 0.8686, 0.6588, 0.6810])
    assert "Table III" in row["source"] and "arXiv:1902.03634" in row["source"]
    assert "secondary listing" not in row["source"]
    # The four-decimal values round to the two-decimal secondary listing they replace.
    assert (round(row["uf1_smic"], 2), round(row["uf1_samm"], 2)) == (0.68, 0.66)
    written = published_as_written().set_index("method").loc["STSTNet"]
    assert (written["uf1_smic"], written["uf1_samm"]) == ("0.6801", "0.6588")


#: Rows added from the MEGC 2019 listings and later work; each must say where its numbers were read.
MEGC_ROWS = ("LBP-TOP (MEGC 2019 baseline)", "Bi-WOOF", "OFF-ApexNet", "CapsuleNet", "Dual-Inception", "EMR", "HTNet")


def test_methods_unique_and_protocol_is_the_composite():
    t = published_results()
    assert t["method"].is_unique
    assert set(MEGC_ROWS) <= set(t["method"])
    assert t["protocol"].str.contains("442").all() and t["protocol"].str.contains("LOSO").all()


def test_each_row_validates_on_its_own():
    t = published_results().drop(columns="status")
    for i in range(len(t)):
        validate_published(t.iloc[[i]].astype({"year": str}), source=f"row {i}")


@pytest.mark.parametrize("method", MEGC_ROWS)
def test_new_rows_name_a_location_and_flag_secondary_listings(method):
    row = published_results().set_index("method").loc[method]
    # A location: a table, section, abstract or a repository file with its commit.
    assert re.search(r"Table [IVX0-9.]+|section|abstract|README\.md", row["source"]), row["source"]
    if "secondary listing" in row["source"]:
        assert "secondary listing" in row["note"].lower() or "secondary listings" in row["note"].lower()
        assert re.search(r"attribut", row["note"]), "a secondary listing must name the primary it attributes to"


def test_spot_check_sourced_values():
    t = published_results().set_index("method")
    # Dual-Inception abstract: "UF1 of 0.7322 and ... UAR of 0.7278"
    assert t.loc["Dual-Inception", ["uf1_composite", "uar_composite"]].tolist() == pytest.approx([0.7322, 0.7278])
    # Baseline quoted in that abstract: "(UF1: 0.5882, UAR: 0.5785)"
    assert t.loc["LBP-TOP (MEGC 2019 baseline)", "uf1_composite"] == pytest.approx(0.5882)
    assert t.loc["LBP-TOP (MEGC 2019 baseline)", "uar_composite"] == pytest.approx(0.5785)
    # Thesis Table 3.6: "OFF-ApexNet ... 0.7196 / 0.7096 | 0.8764 / 0.8681"; "EMR ... 0.7885 / 0.7824"
    assert t.loc["OFF-ApexNet", "uf1_casme2"] == pytest.approx(0.8764)
    assert t.loc["EMR", ["uf1_composite", "uar_composite"]].tolist() == pytest.approx([0.7885, 0.7824])
    # HypHTNet README: "| HTNet | 0.8603/0.8475 | 0.8049/0.7905 | 0.9532/0.9516 | 0.8131/0.8124 |"
    assert t.loc["HTNet", ["uf1_composite", "uar_composite", "uf1_casme2", "uar_samm"]].tolist() == pytest.approx(
        [0.8603, 0.8475, 0.9532, 0.8124])


def test_two_decimal_parts_agree_with_four_decimal_values_where_both_exist():
    # ELBPTOP Table X prints two decimals; where a four-decimal value exists it must round to the same number.
    t = published_results().set_index("method")
    elbptop = {"STSTNet": {"uar_smic": 0.70, "uar_samm": 0.68, "uf1_composite": 0.74, "uf1_casme2": 0.84},
               "EMR": {"uf1_composite": 0.79, "uar_composite": 0.78, "uf1_casme2": 0.83, "uar_casme2": 0.82},
               "CapsuleNet": {"uf1_composite": 0.65, "uar_composite": 0.65, "uf1_casme2": 0.71, "uar_casme2": 0.70}}
    for method, cells in elbptop.items():
        for col, two in cells.items():
            assert round(t.loc[method, col], 2) == pytest.approx(two), (method, col)


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


def test_scores_are_shown_as_their_source_printed_them():
    shown, values = published_as_written(), published_results()
    assert list(shown.columns) == list(values.columns)
    for col in SCORE_COLUMNS:
        written = shown[col].replace("", np.nan).astype(float)
        np.testing.assert_allclose(written.to_numpy(), values[col].to_numpy(), equal_nan=True)
    # A two-decimal listing keeps its two decimals (LBP-TOP's SMIC UF1, MEGC2019 table).
    row = shown.set_index("method").filter(like="LBP-TOP", axis=0).iloc[0]
    assert row["uf1_smic"] == "0.20" and row["uf1_composite"] == "0.5882"
