"""The MEGC2019 composite: 442 micro-expression samples from SMIC, CASME II and SAMM.

The list of (dataset, subject, sample, label) ships with the package
(``resources/megc2019_composite_442.csv``, as published with the challenge's baselines);
its label is the standard, and each one is cross-checked against the reader's label.

Which samples a data root must hold (:func:`expected_composite`): all 442 for real data;
for a simulated SynthME root, the subset it simulates, recorded in the root at
``merlib synth`` time (``SYNTHME_composite.csv``). Either way the selection is strict: a
sample expected and not on disk is an error, unless ``allow_missing``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from merlib.data.index import DATASET_FOLDERS, index_datasets
from merlib.data.simulated import COMPOSITE, is_synthme_root
from merlib.data.schema import COLUMNS, MICRO_DATASETS, empty_table, validate_table
from merlib.errors import AnnotationError, MerlibWarning, MissingSamplesError

#: Columns of the composite CSV (``merlib composite``); ``flags`` lists every value a
#: reader filled in rather than read (an estimated apex, SMIC's middle frame).
COMPOSITE_COLUMNS: list[str] = ["dataset", "subject", "sample", "label", "apex_frame",
                                "apex_path", "flags"]
COMPOSITE_RESOURCE = "megc2019_composite_442.csv"
LIST_COLUMNS: list[str] = ["dataset", "subject", "sample", "label"]
_KEY = ["dataset", "subject", "sample"]
#: SMIC's high-speed camera is the part MEGC2019 uses.
SMIC_PART = "HS"
#: How many missing samples an error message names before it just counts.
_NAMED = 10


@dataclass(frozen=True)
class ExpectedList:
    """The composite samples a data root is expected to hold.

    Attributes
    ----------
    table : DataFrame
        Columns dataset, subject, sample, label (strings), in the packaged list's order.
    source : str
        Where the list comes from, for messages and reports.
    """

    table: pd.DataFrame
    source: str


@dataclass
class CompositeResult:
    """A composite selection.

    Attributes
    ----------
    table : DataFrame
        One row per expected sample found, in list order: the canonical columns, with
        ``label`` taken from the list and the reader's ``flags``.
    missing : DataFrame
        Expected samples not on disk (columns dataset, subject, sample, label); empty
        unless ``allow_missing``.
    expected : str
        Which list the selection was checked against (:attr:`ExpectedList.source`).
    n_expected : int
        Its length: 442, or a SynthME root's simulated subset.
    """

    table: pd.DataFrame
    missing: pd.DataFrame
    expected: str = "the MEGC2019 list (442 samples)"
    n_expected: int = 442


def load_composite_list() -> pd.DataFrame:
    """The packaged MEGC2019 list: 442 rows of dataset, subject, sample, label (strings)."""
    ref = resources.files("merlib.data").joinpath("resources", COMPOSITE_RESOURCE)
    with ref.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype="string")


def full_list() -> ExpectedList:
    """All 442 samples: what a real data root must hold."""
    return ExpectedList(load_composite_list(), "the MEGC2019 list (442 samples)")


def _read_record(path: Path, listed: pd.DataFrame) -> pd.DataFrame:
    try:
        record = pd.read_csv(path, dtype="string", keep_default_na=False)
    except (OSError, ValueError) as err:
        raise AnnotationError(f"{path}: cannot be read as CSV ({err})") from None
    if list(record.columns) != LIST_COLUMNS:
        raise AnnotationError(
            f"{path.name}: header {list(record.columns)}; expected {LIST_COLUMNS}"
        )
    merged = record.merge(listed, on=LIST_COLUMNS, how="left", indicator=True)
    stray = (merged["_merge"] == "left_only").to_numpy()
    if stray.any():
        i = int(stray.nonzero()[0][0])
        r = record.iloc[i]
        raise AnnotationError(
            f"{path.name}: row {i + 2} ({r['dataset']} {r['subject']} {r['sample']} "
            f"{r['label']}) is not a sample of the MEGC2019 list with that label"
        )
    dup = record.duplicated(_KEY).to_numpy()
    if dup.any():
        i = int(dup.nonzero()[0][0])
        raise AnnotationError(f"{path.name}: row {i + 2} repeats sample {record.iloc[i]['sample']}")
    # In the packaged list's order, whatever order the record is in.
    keys = set(map(tuple, record[_KEY].to_numpy().tolist()))
    inside = [tuple(k) in keys for k in listed[_KEY].to_numpy().tolist()]
    return listed[inside].reset_index(drop=True)


def expected_composite(data_root: Path | str, index: pd.DataFrame | None = None) -> ExpectedList:
    """The composite samples ``data_root`` must hold.

    Parameters
    ----------
    data_root : path
    index : DataFrame, optional
        Canonical table of the root's micro datasets; only needed for a SynthME root
        made before roots recorded their subset (it is then indexed if not given).

    Returns
    -------
    ExpectedList
        A real root (no SynthME marker): all 442. A SynthME root: the samples listed
        in its ``SYNTHME_composite.csv``; for an older SynthME root without that file,
        the listed samples present on disk (a :class:`~merlib.errors.MerlibWarning`
        says so: a sample lost from such a root cannot be noticed).

    Raises
    ------
    AnnotationError
        ``SYNTHME_composite.csv`` is unreadable or names a sample (or label) that is not
        in the MEGC2019 list (the message names the row).
    """
    root = Path(data_root)
    if not is_synthme_root(root):
        return full_list()
    listed = load_composite_list()
    record = root / COMPOSITE
    if record.is_file():
        table = _read_record(record, listed)
        return ExpectedList(
            table, f"the {len(table)} composite samples this SynthME root simulates ({COMPOSITE})")
    if index is None:
        index = _index_micro(root, allow_missing=True, apex_fallback="motion")
    on_disk = _micro_rows(index)[_KEY].drop_duplicates()
    table = listed.merge(on_disk, on=_KEY, how="inner", sort=False).reset_index(drop=True)
    source = (f"the {len(table)} composite samples present in this SynthME root (derived: "
              f"the root has no {COMPOSITE}; regenerate it with `merlib synth` to record them)")
    warnings.warn(f"{root}: expecting {source}", MerlibWarning, stacklevel=2)
    return ExpectedList(table, source)


def _index_micro(data_root: Path, allow_missing: bool, apex_fallback: str) -> pd.DataFrame:
    present = [d for d in MICRO_DATASETS if (data_root / DATASET_FOLDERS[d]).is_dir()]
    if allow_missing:
        # No micro folder at all: every listed sample is reported missing, not an error.
        return (index_datasets(data_root, present, apex_fallback=apex_fallback) if present
                else empty_table())
    # All three are required: index_datasets names the first folder that is missing.
    return index_datasets(data_root, list(MICRO_DATASETS), apex_fallback=apex_fallback)


def _micro_rows(index: pd.DataFrame) -> pd.DataFrame:
    micro = index[index["dataset"].isin(MICRO_DATASETS)]
    return micro[(micro["dataset"] != "smic") | (micro["part"] == SMIC_PART)]


def megc2019_composite(
    source: Path | str | pd.DataFrame,
    *,
    allow_missing: bool = False,
    expected: ExpectedList | None = None,
    apex_fallback: str = "motion",
) -> CompositeResult:
    """Select the MEGC2019 composite from a data root or an index table.

    Parameters
    ----------
    source : path or DataFrame
        A data root (CASME II, SAMM and SMIC are indexed), or a canonical table from
        :func:`merlib.data.index.index_datasets`.
    allow_missing : bool, default=False
        Return the samples found and report the others in ``missing`` instead of raising.
    expected : ExpectedList, optional
        The samples that must be there. Default: for a data root,
        :func:`expected_composite` (442, or a SynthME root's simulated subset); for a
        table, all 442 (pass ``expected_composite(root, table)`` for a SynthME table).
    apex_fallback : {"motion", "middle"}, default="motion"
        How CASME II and SAMM replace an unusable apex cell when ``source`` is a root.

    Returns
    -------
    CompositeResult
        ``table`` in list order (442 rows on a complete real tree), all canonical
        columns, ``flags`` included.

    Raises
    ------
    MissingSamplesError
        Expected samples are not on disk (names the first 10 and the count).
    AnnotationError
        A sample's label on disk differs from the list's (names the sample and both).
    """
    if isinstance(source, pd.DataFrame):
        index = validate_table(source, source="index table")
        expected = full_list() if expected is None else expected
    else:
        root = Path(source)
        index = _index_micro(root, allow_missing, apex_fallback)
        expected = expected_composite(root, index) if expected is None else expected
    micro = _micro_rows(index)
    dup = micro.duplicated(_KEY, keep=False)
    if dup.any():
        names = micro.loc[dup, "sample"].unique().tolist()
        raise AnnotationError(f"index has several rows for composite samples {names[:_NAMED]}")

    listed = expected.table[LIST_COLUMNS].astype("string")
    on_disk = micro[list(COLUMNS)].rename(columns={"label": "disk_label"})
    merged = listed.merge(on_disk, on=_KEY, how="left", indicator=True, sort=False)
    absent = merged["_merge"] == "left_only"
    missing = listed[absent.to_numpy()].reset_index(drop=True)
    if len(missing) and not allow_missing:
        named = ", ".join(f"{r.dataset}/{r.subject}/{r.sample}"
                          for r in missing.head(_NAMED).itertuples())
        more = f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
        raise MissingSamplesError(
            f"{len(missing)} of {len(listed)} MEGC2019 composite samples not on disk "
            f"(expected: {expected.source}): {named}{more}"
        )
    found = merged[~absent].reset_index(drop=True)
    clash = found["label"] != found["disk_label"].fillna("<none>")
    if clash.any():
        r = found[clash].iloc[0]
        raise AnnotationError(
            f"{r['dataset']} {r['sample']}: the MEGC2019 list says {r['label']!r} but the "
            f"annotation ({r['emotion']!r}) gives {r['disk_label'] if pd.notna(r['disk_label']) else None!r}"
            f"; {int(clash.sum())} sample(s) disagree"
        )
    table = found[list(COLUMNS)].astype(COLUMNS)
    return CompositeResult(table=table, missing=missing, expected=expected.source,
                           n_expected=len(listed))
