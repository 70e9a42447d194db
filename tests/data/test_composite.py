"""The MEGC2019 composite on a full-size generated CASME II + SAMM + SMIC tree."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from merlib.cli import main
from merlib.data.composite import (
    COMPOSITE_COLUMNS, CompositeResult, expected_composite, load_composite_list,
    megc2019_composite,
)
from merlib.data.index import index_datasets
from merlib.data.layouts import ClipRecord, write_annotations
from merlib.data.schema import COLUMNS
from merlib.synth import COMPOSITE, MARKER
from merlib.errors import AnnotationError, DataLayoutError, MissingSamplesError

from .conftest import animate, megc_records


def test_packaged_list():
    listed = load_composite_list()
    assert list(listed.columns) == ["dataset", "subject", "sample", "label"]
    assert len(listed) == 442 and listed["subject"].nunique() == 68
    assert listed.groupby("dataset")["subject"].nunique().to_dict() == {
        "casme2": 24, "samm": 28, "smic": 16}


def test_full_composite_from_data_root(megc_root):
    result = megc2019_composite(megc_root)
    assert isinstance(result, CompositeResult)
    t = result.table
    assert len(t) == 442 and t["subject"].nunique() == 68 and result.missing.empty
    assert t["label"].value_counts().to_dict() == {"negative": 250, "positive": 109,
                                                   "surprise": 83}
    assert list(t.columns) == list(COLUMNS)
    listed = load_composite_list()
    assert t[["dataset", "subject", "sample"]].equals(listed[["dataset", "subject", "sample"]])
    assert set(t.loc[t["dataset"] == "smic", "part"]) == {"HS"}
    assert "EP99_01" not in set(t["sample"])
    smic = t[t["sample"] == "s01_po_01"].iloc[0]
    assert smic.apex_path == "SMIC/SMIC_all_raw/HS/s1/micro/positive/s1_po_01/image000002.bmp"


def test_composite_from_index_table(megc_root):
    index = index_datasets(megc_root)
    assert len(megc2019_composite(index).table) == 442


def test_label_disagreement_names_sample_and_both_labels(megc_root):
    index = index_datasets(megc_root)
    row = (index["dataset"] == "casme2") & (index["sample"] == "EP02_01f")
    index.loc[row, ["emotion", "label"]] = ["surprise", "surprise"]
    with pytest.raises(AnnotationError, match=r"EP02_01f.*'positive'.*'surprise'"):
        megc2019_composite(index)


def test_missing_clip(megc_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(megc_root, root)
    shutil.rmtree(root / "SMIC" / "SMIC_all_raw" / "HS" / "s3" / "micro" / "surprise"
                  / "s3_sur_01")
    with pytest.raises(MissingSamplesError, match=r"1 of 442 .*smic/s03/s03_sur_01"):
        megc2019_composite(root)
    result = megc2019_composite(root, allow_missing=True)
    assert len(result.table) == 441
    assert result.missing.to_dict("records") == [
        {"dataset": "smic", "subject": "s03", "sample": "s03_sur_01", "label": "surprise"}]


def test_many_missing_are_counted(megc_root):
    index = index_datasets(megc_root)
    index = index[index["dataset"] != "samm"]
    with pytest.raises(MissingSamplesError, match=r"133 of 442 .*samm/006/006_1_2.* and 123 more"):
        megc2019_composite(index)


def test_missing_dataset_folder(tmp_path):
    (tmp_path / "SAMM").mkdir()
    with pytest.raises(DataLayoutError, match="CASME2"):
        megc2019_composite(tmp_path)


def test_cli_composite_writes_the_standard_csv(megc_root, tmp_path, capsys):
    out = tmp_path / "out" / "composite.csv"
    assert main(["composite", "--data-root", str(megc_root), "--out", str(out)]) == 0
    written = pd.read_csv(out, dtype=str)
    assert list(written.columns) == COMPOSITE_COLUMNS and "flags" in COMPOSITE_COLUMNS
    assert len(written) == 442
    assert written["label"].value_counts().to_dict() == {"negative": 250, "positive": 109,
                                                         "surprise": 83}
    assert "442 composite samples" in capsys.readouterr().out


def _samm_apex_cell(root: Path, sample: str, value) -> None:
    path = root / "SAMM" / "SAMM_Micro_FACS_Codes_v2.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb["MICRO_ONLY"]
    row = next(r for r in range(15, ws.max_row + 1) if ws.cell(r, 2).value == sample)
    ws.cell(row, 5).value = value
    wb.save(path)


def test_bad_apex_cells_do_not_stop_the_composite_and_are_flagged(megc_root, tmp_path, capsys):
    """The real SAMM sheet's apex-outside-clip rows and CASME II's '/' apex: 442, flagged."""
    root = tmp_path / "data"
    shutil.copytree(megc_root, root)
    records = megc_records()
    samm = next(r for r in records["samm"] if r.sample == "006_1_2")
    animate("samm", root, samm, peak_frame=3)  # frames 1, 2, 3: the face peaks at 3
    _samm_apex_cell(root, "006_1_2", 9)  # after offset 3
    casme = records["casme2"]
    slash = (casme[0].subject, casme[0].sample)  # its apex cell becomes '/'
    write_annotations("casme2", root, [
        ClipRecord(r.subject, r.sample, r.emotion, r.frames, r.onset,
                   None if (r.subject, r.sample) == slash else r.apex, r.offset) for r in casme])
    out = tmp_path / "composite.csv"
    assert main(["composite", "--data-root", str(root), "--out", str(out)]) == 0
    written = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("sample")
    assert len(written) == 442
    row = written.loc["006_1_2"]
    assert (row["apex_frame"], row["flags"]) == ("3", "apex_outside_clip:9;apex_estimated:motion")
    assert row.apex_path == "SAMM/006/006_1_2/006_00003.jpg"
    still = written[written["subject"] == slash[0]].loc[slash[1]]  # 3 identical frames: no
    # motion to find, so the middle frame
    assert (still["apex_frame"], still["flags"]) == ("2", "apex_uncoded:/;apex_estimated:middle")
    assert set(written.loc[written["dataset"] == "smic", "flags"]) == {"apex:middle_frame"}
    assert (written.loc[written["dataset"] != "smic", "flags"] != "").sum() == 2
    assert "166 sample(s) with filled-in values" in capsys.readouterr().out  # + 164 SMIC


def _simulated(root: Path, subjects: dict[str, list[str]]) -> Path:
    """A SynthME-style root holding only ``subjects``' composite clips (3 frames each)."""
    from .conftest import lay_out

    for dataset, records in megc_records().items():
        keep = [r for r in records if r.subject in subjects[dataset]]
        lay_out(dataset, root, keep, size=4)
    (root / MARKER).write_text(json.dumps({"simulated": True}))
    return root


SUBSET = {"casme2": ["sub01"], "samm": ["006"], "smic": ["s03"]}


def _subset_list() -> pd.DataFrame:
    listed = load_composite_list()
    keep = [s in SUBSET[d] for d, s in zip(listed["dataset"], listed["subject"])]
    return listed[keep].reset_index(drop=True)


def test_synthme_root_is_strict_on_the_subset_it_records(tmp_path):
    root = _simulated(tmp_path / "synth", SUBSET)
    subset = _subset_list()
    subset.iloc[::-1].to_csv(root / COMPOSITE, index=False)  # order does not matter
    result = megc2019_composite(root)  # no allow_missing needed
    assert result.table[["dataset", "subject", "sample"]].equals(
        subset[["dataset", "subject", "sample"]])
    assert result.missing.empty and result.n_expected == len(subset)
    assert result.expected.startswith(f"the {len(subset)} composite samples this SynthME root")
    # A recorded sample that is gone is an error naming it.
    shutil.rmtree(root / "SMIC" / "SMIC_all_raw" / "HS" / "s3" / "micro" / "surprise"
                  / "s3_sur_01")
    with pytest.raises(MissingSamplesError,
                       match=rf"1 of {len(subset)} MEGC2019 composite samples not on disk "
                             r"\(expected: .*\(SYNTHME_composite\.csv\)\): smic/s03/s03_sur_01"):
        megc2019_composite(root)


def test_synthme_root_without_record_derives_the_subset_and_says_so(tmp_path):
    root = _simulated(tmp_path / "synth", SUBSET)
    with pytest.warns(UserWarning, match=r"composite samples present in this SynthME root "
                                         r"\(derived: the root has no SYNTHME_composite\.csv"):
        result = megc2019_composite(root)
    assert len(result.table) == len(_subset_list()) and result.missing.empty


def test_a_real_root_with_a_subset_stays_strict(tmp_path):
    root = _simulated(tmp_path / "real", SUBSET)
    (root / MARKER).unlink()
    n = len(_subset_list())
    with pytest.raises(MissingSamplesError, match=rf"{442 - n} of 442 MEGC2019"):
        megc2019_composite(root)
    assert expected_composite(root).source == "the MEGC2019 list (442 samples)"


@pytest.mark.parametrize("row, message", [
    ("casme2,sub01,EP99_99,negative", r"row 2 \(casme2 sub01 EP99_99 negative\) is not a sample"),
    ("samm,006,006_1_2,surprise", r"row 2 \(samm 006 006_1_2 surprise\) is not a sample"),
])
def test_a_record_naming_foreign_samples_is_an_error(tmp_path, row, message):
    root = _simulated(tmp_path / "synth", SUBSET)
    (root / COMPOSITE).write_text("dataset,subject,sample,label\n" + row + "\n")
    with pytest.raises(AnnotationError, match=rf"SYNTHME_composite\.csv: {message}"):
        megc2019_composite(root)


def test_tiny_synthme_root_needs_no_allow_missing(synth_root, recwarn):
    result = megc2019_composite(synth_root)
    truth = pd.read_csv(synth_root / "SYNTHME_truth.csv", dtype=str, keep_default_na=False)
    micro = truth[truth["dataset"].isin(["casme2", "samm", "smic"]) & (truth["label"] != "")]
    assert len(result.table) == len(micro) and result.missing.empty


def test_flag_tables():
    from merlib.data.schema import flag_counts, flagged_rows, to_table

    t = to_table([
        {"dataset": "samm", "subject": "006", "sample": "006_1_2", "apex_frame": 3,
         "flags": "apex_outside_clip:9;apex_estimated:motion"},
        {"dataset": "samm", "subject": "006", "sample": "006_1_3", "apex_frame": 4, "flags": ""},
        {"dataset": "smic", "subject": "s01", "sample": "s01_po_01", "apex_frame": 2,
         "flags": "apex:middle_frame"},
    ])
    assert flagged_rows(t)["sample"].tolist() == ["006_1_2", "s01_po_01"]
    assert list(flagged_rows(t).columns) == ["dataset", "subject", "sample", "apex_frame", "flags"]
    assert flag_counts(t).to_dict("records") == [
        {"dataset": "samm", "flag": "apex_estimated:motion", "samples": 1},
        {"dataset": "samm", "flag": "apex_outside_clip:9", "samples": 1},
        {"dataset": "smic", "flag": "apex:middle_frame", "samples": 1},
    ]


def test_allow_missing_without_any_micro_folder_lists_every_sample_missing(tmp_path):
    (tmp_path / "JAFFE").mkdir()  # a root holding only a macro dataset
    with pytest.raises(DataLayoutError, match="CASME2"):
        megc2019_composite(tmp_path)
    result = megc2019_composite(tmp_path, allow_missing=True)
    assert len(result.table) == 0
    assert len(result.missing) == 442
