import pandas as pd

from merlib.evaluation.baselines import majority_class_predictions


def test_majority_comes_from_the_other_folds_only():
    p = pd.DataFrame({
        "fold": [0, 0, 0, 1, 2, 2],
        "label": ["positive", "positive", "positive", "negative", "negative", "surprise"],
    })
    pred = majority_class_predictions(p)
    # fold 0 trains on folds 1-2: negative x2, surprise x1 -> negative
    # fold 1 trains on 0 and 2: positive x3 -> positive; fold 2 trains on 0-1: positive
    assert pred.tolist() == ["negative"] * 3 + ["positive"] * 3
