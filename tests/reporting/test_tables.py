import pandas as pd

from merlib.reporting.tables import UNLABELLED, class_counts


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
