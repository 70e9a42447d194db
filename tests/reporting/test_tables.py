import pandas as pd

import re

import numpy as np

from merlib.provenance import Provenance
from merlib.reporting.tables import UNLABELLED, captioned, class_counts


def test_class_counts_totals_and_fixed_class_order():
    t = pd.DataFrame(
        {
            "dataset": ["smic", "smic", "samm", "samm", "samm"],
            "label": ["surprise", "negative", None, "negative", "negative"],
        }
    )
    c = class_counts(t)
    assert list(c.columns) == ["negative", "positive", "surprise", UNLABELLED, "Total"]
    assert c.loc["samm"].tolist() == [2, 0, 0, 1, 3]
    assert c.loc["smic"].tolist() == [1, 0, 1, 0, 2]
    assert c.loc["Total"].tolist() == [3, 0, 1, 1, 5]


def test_class_counts_drops_unlabelled_column_when_empty():
    t = pd.DataFrame({"dataset": ["a"], "subject": ["s1"], "label": ["positive"]})
    c = class_counts(t, ["dataset", "subject"])
    assert UNLABELLED not in c.columns
    assert c.loc[("a", "s1"), "positive"] == 1
    assert c["Total"].iloc[-1] == 1


def test_captioned_writes_numbers_as_they_are_and_pads_cells():
    df = pd.DataFrame({"seconds": [1274.0, np.nan], "epochs": [30.0, 11.5], "uf1": [0.028, 0.5],
                       "n": pd.array([113, None], dtype="Int64")})
    html = captioned(df, Provenance("simulated", "abc", "merlib test", {}), "t").to_html()
    for shown in (">1274<", ">11.5<", ">30.0<", ">0.028<", ">0.500<", ">113<"):
        assert shown in html, shown
    assert not re.search(r"\d\.\d{6}", html)
    assert "padding: 0.2em 0.8em" in html
