import json
import math
from pathlib import Path

import pytest

from merlib.errors import BrokenFileError, DataLayoutError
from merlib.reporting.records import (PATTERN, load_records, note_markdown, read_record, records_dir,
                                      records_index, styled)

REPO_RECORDS = Path(__file__).resolve().parents[2] / "bench" / "records"


def _record(**changes) -> dict:
    doc = {
        "title": "A probe", "date": "2026-11-29", "machine": "2-core test machine", "commit": "abc1234",
        "command": "bench/probe.py --seed 1", "settings": "a tiny root.", "finding": "it worked.",
        "source": "book/x.md",
        "tables": [{"caption": "UF1", "columns": ["setting", "uf1", "sd"],
                    "rows": [["a", 0.090, None], ["b", 0.5, 0.05]]}],
    }
    doc.update(changes)
    return doc


def _write(folder: Path, name: str, doc: dict | str) -> Path:
    path = folder / name
    # The digits as a person would type them: json.dumps would write 0.09 for 0.090.
    text = doc if isinstance(doc, str) else json.dumps(doc).replace("0.09,", "0.090,")
    path.write_text(text)
    return path


def test_a_record_keeps_its_digits_for_showing_and_gives_floats_for_computing(tmp_path):
    rec = read_record(_write(tmp_path, "devnote-a.json", _record()))
    table = rec.tables[0]
    assert table.text["uf1"].tolist() == ["0.090", "0.5"]
    assert table.text["sd"].tolist() == ["", "0.05"]
    assert table.values["uf1"].tolist() == [0.09, 0.5]
    assert math.isnan(table.values.loc[0, "sd"])
    assert rec.provenance() == ("Recorded 2026-11-29 on 2-core test machine; commit abc1234; "
                                "command: bench/probe.py --seed 1; record bench/records/devnote-a.json")


def test_the_styled_table_shows_the_recorded_text_under_the_record_caption(tmp_path):
    rec = read_record(_write(tmp_path, "devnote-a.json", _record()))
    html = styled(rec, rec.tables[0]).to_html()
    assert ">0.090<" in html and "0.090000" not in html
    assert "2026-11-29: UF1" in html and "commit abc1234" in html
    assert "SIMULATED" not in html  # a record is not this build's data
    assert note_markdown(rec).startswith("**2026-11-29: A probe.** it worked.")


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a readable development record"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({k: v for k, v in _record().items() if k not in ("commit", "command")}), "missing commit, command"),
])
def test_unreadable_files_are_named(tmp_path, text, message):
    path = _write(tmp_path, "devnote-bad.json", text)
    with pytest.raises(BrokenFileError, match=message) as err:
        read_record(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("changes, message", [
    ({"date": "29 Nov 2026"}, "date must be"),
    ({"date": "2026-11-28/29"}, "date must be"),
    ({"tables": []}, "tables must be a non-empty list"),
    ({"tables": [{"caption": "t", "columns": ["a", "a"], "rows": []}]}, "distinct strings"),
    ({"tables": [{"caption": "t", "columns": ["a", "b"], "rows": [[1]]}]}, r"table 0, row 0: expected 2 values"),
    ({"tables": [{"caption": "t", "columns": ["a"], "rows": [[True]]}]}, "numbers, strings or null"),
    ({"tables": [{"caption": "t", "columns": ["a"], "rows": [[[1, 2]]]}]}, "numbers, strings or null"),
    ({"tables": [{"columns": ["a"], "rows": []}]}, "caption, columns and rows"),
])
def test_malformed_records_are_refused_naming_what_is_wrong(tmp_path, changes, message):
    with pytest.raises(BrokenFileError, match=message):
        read_record(_write(tmp_path, "devnote-bad.json", _record(**changes)))


def test_a_date_range_is_accepted(tmp_path):
    assert read_record(_write(tmp_path, "devnote-a.json", _record(date="2026-11-28/2026-11-29"))).date == \
        "2026-11-28/2026-11-29"


def test_load_records_reads_only_development_notes_oldest_first(tmp_path):
    _write(tmp_path, "devnote-z.json", _record(date="2026-11-28", title="older"))
    _write(tmp_path, "devnote-a.json", _record(date="2026-11-29", title="newer"))
    _write(tmp_path, "calibration-dev.json", "{\"results\": []}")  # another reader's record
    records = load_records(tmp_path)
    assert [r.title for r in records] == ["older", "newer"]
    index = records_index(records)
    assert index.columns.tolist() == ["date", "note", "machine", "commit", "command", "record"]
    assert index["record"].tolist() == ["devnote-z.json", "devnote-a.json"]


def test_records_dir_finds_the_checkouts_folder_from_a_notebook_folder(tmp_path, monkeypatch):
    (tmp_path / "bench" / "records").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert records_dir() == tmp_path / "bench" / "records"
    with pytest.raises(DataLayoutError, match="is not a directory"):
        records_dir(tmp_path / "nowhere")


def test_records_dir_says_when_there_is_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataLayoutError, match="no bench/records found"):
        records_dir()


def test_the_checkouts_records_load_and_each_says_when_where_and_how():
    records = load_records(REPO_RECORDS)
    assert len(records) == len(list(REPO_RECORDS.glob(PATTERN))) > 0
    for r in records:
        assert r.machine and r.commit and r.command and r.source, r.name
        assert all(len(t.text) for t in r.tables), r.name
