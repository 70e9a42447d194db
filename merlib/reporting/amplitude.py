"""Tables, figure and verdicts of the amplitude chapter (:mod:`merlib.studies.amplitude`).

Every function here reads the study's ``table`` (:attr:`AmplitudeStudy.table
<merlib.studies.amplitude.AmplitudeStudy.table>`): one row per amplitude, image size,
transfer, input view and classifier, with UF1 / UAR and their subject-bootstrap
intervals, the median true amplitude (``amp_iod``, ``amp_px``) and the paired
differences of :func:`~merlib.studies.amplitude.study_table`.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from merlib.evaluation.bootstrap import format_interval
from merlib.provenance import Provenance
from merlib.reporting.tables import whole_numbers
from merlib.studies.amplitude import amplitude_pixels, threshold, versus_reference

#: Columns of :func:`results_table`, in order.
RESULT_COLUMNS: tuple[str, ...] = ("scale", "input", "image_size", "transfer", "classifier", "amp_iod", "amp_px",
                                   "n", "uf1", "uar")

#: Line style of each classifier in :func:`amplitude_figure` (apex input; the difference
#: input draws the same markers dash-dotted).
STYLES: dict[str, str] = {"svm": "-o", "softmax": "-s", "pixels_lr": "--^", "hog_svm": "--v"}


def results_table(table: pd.DataFrame) -> pd.DataFrame:
    """The study table as shown: UF1 and UAR as ``value [lo, hi]`` text, the columns of
    :data:`RESULT_COLUMNS`.

    A ``+grid`` view repeats its input's references and softmax head (they stay in
    ``table`` for the paired verdicts); only its ``svm`` and ``svm_pooled`` rows are shown.

    Parameters
    ----------
    table : DataFrame
        The study table, one row per run, view and classifier.

    Returns
    -------
    DataFrame
        One row per shown row of ``table`` (index kept), columns :data:`RESULT_COLUMNS`;
        ``image_size`` and ``n`` integers (``Int64``), ``amp_iod`` to 4 decimals and
        ``amp_px`` to 3 (about three significant figures each).
    """
    shown = table[~(table["input"].str.endswith("+grid") & ~table["classifier"].isin(["svm", "svm_pooled"]))]
    show = shown.assign(**{m: [format_interval(v, lo, hi) for v, lo, hi in zip(shown[m], shown[f"{m}_lo"],
                                                                                shown[f"{m}_hi"])]
                           for m in ("uf1", "uar")})
    show = show[list(RESULT_COLUMNS)].round({"amp_iod": 4, "amp_px": 3})
    return show.assign(image_size=whole_numbers(show["image_size"]), n=whole_numbers(show["n"]))


def jitter_summary(jitter: pd.DataFrame, image_sizes: Sequence[int]) -> pd.DataFrame:
    """Median landmark jitter over clips, in IOD and in pixels at each model input.

    Parameters
    ----------
    jitter : DataFrame
        :func:`~merlib.studies.amplitude.landmark_jitter`: one row per clip, columns
        ``jitter_iod``, ``jitter_mouth_iod``, ``jitter_brows_iod``.
    image_sizes : sequence of int
        Model input sides, pixels.

    Returns
    -------
    DataFrame of shape (3, 2 + len(image_sizes))
        Rows all 68 landmarks, mouth, brows; columns ``landmarks``, ``median jitter (IOD)``
        and ``px at <size> px`` per size, to 4 decimals.
    """
    summary = pd.DataFrame({"landmarks": ["all 68", "mouth (48-67)", "brows (17-26)"],
                            "median jitter (IOD)": [jitter[c].median() for c in ("jitter_iod", "jitter_mouth_iod",
                                                                                  "jitter_brows_iod")]})
    for size in image_sizes:
        summary[f"px at {size} px"] = amplitude_pixels(summary["median jitter (IOD)"].to_numpy(), size)
    return summary.round(4)


def amplitude_figure(table: pd.DataFrame, jitter_iod: float, image_sizes: Sequence[int], inputs: Sequence[str],
                     provenance: Provenance) -> plt.Figure:
    """UF1 (top) and UAR (bottom) against the median true amplitude, in IOD (left) and in
    pixels at the model input (right), with 95% subject-bootstrap intervals.

    Solid lines: the apex input; dash-dotted: the difference input (its references
    lighter); diamonds: its early-grid SVM. A reference does not depend on the model's
    size or weights, so it is drawn once per input. The grey band (IOD) or lines (px)
    mark the landmark jitter; the dotted line is uniform guessing, the dashed black line
    the majority class of ``inputs[0]``.

    Parameters
    ----------
    table : DataFrame
        The study table (columns ``input``, ``image_size``, ``transfer``, ``classifier``,
        ``scale``, ``amp_iod``, ``amp_px``, ``uf1``/``uar`` with ``_lo``/``_hi``,
        ``chance_uf1``).
    jitter_iod : float
        Median landmark jitter, IOD.
    image_sizes : sequence of int
        Model input sides (one jitter line each on the pixel axes).
    inputs : sequence of str
        The study's inputs; the majority line is the first one's.
    provenance : Provenance
        Stamped on the figure.

    Returns
    -------
    matplotlib.figure.Figure
        2 x 2 axes, rows sharing their y axis.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharey="row")
    for row, metric in enumerate(["uf1", "uar"]):
        for col, xcol in enumerate(["amp_iod", "amp_px"]):
            ax = axes[row, col]
            first = {}
            for (kind, size, tr), sub in table.groupby(["input", "image_size", "transfer"]):
                first.setdefault(kind, (size, tr))
                for clf, style in STYLES.items():
                    s = sub[sub["classifier"] == clf].sort_values("scale")
                    if not len(s) or (clf in ("pixels_lr", "hog_svm") and (size, tr) != first[kind]):
                        continue  # a reference does not depend on the model's size or weights: drawn once per input
                    if kind.endswith("+grid") and clf != "svm":
                        continue  # its softmax head and references are the difference input's, drawn there
                    if kind != "apex":
                        style = "-.D" if kind.endswith("+grid") else style.replace("--", ":").replace("-", "-.")
                    label = f"{clf}, {size} px{', transfer' if tr else ''}" if clf in ("svm", "softmax") else clf
                    yerr = [s[metric] - s[f"{metric}_lo"], s[f"{metric}_hi"] - s[metric]]
                    ax.errorbar(s[xcol], s[metric], yerr=yerr, fmt=style, capsize=3, label=f"{label} [{kind}]",
                                alpha=0.85 if kind == "apex" else 0.6)
            maj = (table[(table["classifier"] == "majority") & (table["input"] == inputs[0])]
                   .groupby("scale")[[xcol, metric]].mean().sort_values(xcol))
            if metric == "uf1":
                ax.plot(maj[xcol], maj[metric], "k--x", lw=1, label="majority class")
                ax.axhline(table["chance_uf1"].iloc[0], color="k", ls=":", lw=1, label="chance (uniform guess)")
            else:
                ax.axhline(1 / 3, color="k", ls=":", lw=1, label="chance / majority (UAR 1/3)")
            if xcol == "amp_iod":
                ax.axvspan(0, jitter_iod, color="0.85", label="landmark jitter")
            else:
                for size in image_sizes:
                    ax.axvline(amplitude_pixels(jitter_iod, size), color="0.6", lw=3, alpha=0.6)
            ax.set_xlabel("median apex amplitude (IOD)" if xcol == "amp_iod"
                          else "median apex amplitude (px at the model input)")
            ax.set_ylabel(f"composite {metric.upper()}")
            ax.set_ylim(0, 1.02)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Composite UF1 / UAR against expression amplitude (95% subject-bootstrap intervals)")
    provenance.stamp(fig)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def verdict_lines(table: pd.DataFrame, jitter_iod: float, image_sizes: Sequence[int]) -> list[str]:
    """The chapter's verdicts as markdown list lines.

    In order: per input, image size and transfer, the threshold (the smallest amplitude
    at which the SVM head beats the majority class with a paired interval that excludes
    0, :func:`~merlib.studies.amplitude.threshold`) and the scores at the largest
    amplitude; for every configuration (input, amplitude, size, transfer), the SVM head
    against each simple reference of the same size and weights, judged by their paired
    interval (:func:`~merlib.studies.amplitude.versus_reference`): none is picked by its
    score, as that would select on the test folds; each early-grid SVM minus the
    pooled-vector SVM of the same networks; a warning when a run has fewer than 6
    subjects; the landmark jitter.

    Parameters
    ----------
    table : DataFrame
        The study table (with ``beats_majority``, ``m_uf1*`` and ``n_subjects``).
    jitter_iod : float
        Median landmark jitter, IOD.
    image_sizes : sequence of int
        Model input sides, for the jitter in pixels.

    Returns
    -------
    list of str
        Markdown lines (``- ...`` items and their indented continuations).
    """
    lines = []
    for (kind, size, tr), sub in table.groupby(["input", "image_size", "transfer"]):
        th = threshold(sub)
        where = f"{kind} input, {size} px{', transfer' if tr else ', no transfer'}"
        if th["scale"].notna().any():
            r = th.iloc[0]
            lines.append(f"- {where}: first at amplitude x{r['scale']:g} ({r['amp_iod']:.3f} IOD, "
                         f"{r['amp_px']:.2f} px), UF1 {format_interval(r['uf1'], r['uf1_lo'], r['uf1_hi'])}.")
        else:
            tried = ", ".join(f"x{a:g}" for a in sorted(sub["scale"].unique()))
            lines.append(f"- {where}: at no amplitude tried ({tried}).")
        top = sub[(sub["classifier"] == "svm") & (sub["scale"] == sub["scale"].max())].iloc[0]
        lines.append(f"  At the largest amplitude tried (x{top['scale']:g}, {top['amp_iod']:.3f} IOD): UF1 "
                     f"{format_interval(top['uf1'], top['uf1_lo'], top['uf1_hi'])}, "
                     f"UAR {format_interval(top['uar'], top['uar_lo'], top['uar_hi'])}.")
    # Every configuration against every reference of its own size and weights: picking the
    # best run or the best reference by its score here would select on the test folds.
    for (kind, a, size, tr), sub in table.groupby(["input", "scale", "image_size", "transfer"]):
        method = sub[sub["classifier"] == "svm"]
        if not len(method):
            continue
        m = method.iloc[0]
        for b in sub[sub["classifier"].isin(["pixels_lr", "hog_svm"])].itertuples(index=False):
            # The verdict comes from the paired interval of the difference, not from the two points.
            verdict = versus_reference(b.m_uf1_lo, b.m_uf1_hi)
            diff = format_interval(b.m_uf1, b.m_uf1_lo, b.m_uf1_hi, signed=True)
            lines.append(f"- {kind} input, x{a:g}, {size} px{', transfer' if tr else ''}: the method (SVM head) UF1 "
                         f"{format_interval(m['uf1'], m['uf1_lo'], m['uf1_hi'])} **{verdict}** {b.classifier} UF1 "
                         f"{format_interval(b.uf1, b.uf1_lo, b.uf1_hi)}; method minus reference {diff} (paired).")
    for r in table[table["classifier"] == "svm_pooled"].itertuples():  # the grid head minus the paper's, same networks
        diff = format_interval(r.m_uf1, r.m_uf1_lo, r.m_uf1_hi, signed=True)
        lines.append(f"- {r.input}, x{r.scale:g}, {r.image_size} px{', transfer' if r.transfer else ''}: early grid "
                     f"minus the pooled vector (same networks, paired) {diff}.")
    if table["n_subjects"].min() < 6:
        lines.append(f"- **Too few subjects for an interval** ({table['n_subjects'].min()}; a stratum of one subject "
                     "resamples to itself): the intervals and the threshold above are not evidence.")
    lines.append(f"- landmark jitter: {jitter_iod:.4f} IOD (median), "
                 + ", ".join(f"{amplitude_pixels(jitter_iod, s):.2f} px at {s} px" for s in image_sizes) + ".")
    return lines
