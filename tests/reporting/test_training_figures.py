import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from merlib.provenance import Provenance
from merlib.reporting.training import learning_curves, metrics_wide


def test_learning_curves_plot_both_splits_and_mark_the_best_epoch(tmp_path):
    curves = pd.DataFrame({"epoch": [1, 2, 3], "train_acc": [0.4, 0.6, 0.8], "val_acc": [0.3, 0.5, 0.45],
                           "train_loss": [1.1, 0.9, 0.6], "val_loss": [1.2, 1.0, 1.05]})
    fig = learning_curves(curves, 2, Provenance.for_data(tmp_path))
    ax_acc = fig.axes[0]
    ys = [list(line.get_ydata()) for line in ax_acc.lines]
    assert [0.4, 0.6, 0.8] in ys and [0.3, 0.5, 0.45] in ys
    assert list(ax_acc.lines[-1].get_xdata()) == [2, 2]  # the best-epoch marker
    plt.close(fig)


def test_metrics_wide_keeps_part_order():
    m = pd.DataFrame({"classifier": ["svm", "svm"], "part": ["composite", "smic"],
                      "uf1": [0.5, 0.25], "uar": [0.6, 0.3], "accuracy": [0.7, 0.4]})
    w = metrics_wide(m)
    assert list(w.columns)[:2] == [("uf1", "composite"), ("uf1", "smic")]
    assert w.loc["svm", ("uar", "smic")] == 0.3


def test_accuracy_curves_one_panel_per_run(tmp_path):
    from merlib.reporting.training import accuracy_curves

    c = pd.DataFrame({"epoch": [1, 2], "train_acc": [0.5, 0.9], "val_acc": [0.4, 0.45]})
    prov = Provenance("SIMULATED (SynthME, seed 0)", "abc", "v0", {})
    fig = accuracy_curves({"no grid": c, "full": c.assign(val_acc=[0.5, 0.6])}, prov)
    assert [ax.get_title() for ax in fig.axes] == ["no grid", "full"]
    assert list(fig.axes[1].lines[1].get_ydata()) == [0.5, 0.6]
    assert fig._suptitle.get_text().startswith("SIMULATED DATA")
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one run"):
        accuracy_curves({}, prov)
