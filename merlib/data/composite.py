"""The MEGC2019 composite: 442 micro-expression samples from SMIC, CASME II and SAMM.

The list of (dataset, subject, sample, label) ships with the package
(``resources/megc2019_composite_442.csv``, as published with the challenge's baselines);
its label is the standard, and each one is cross-checked against the reader's label.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from merlib.data.index import DATASET_FOLDERS, index_datasets
from merlib.data.schema import COLUMNS, MICRO_DATASETS, validate_table
from merlib.errors import AnnotationError, MissingSamplesError

COMPOSITE_COLUMNS: list[str] = ["dataset", "subject", "sample", "label", "apex_frame", "apex_path"]
COMPOSITE_RESOURCE = "megc2019_composite_442.csv"
_KEY = ["dataset", "subject", "sample"]
#: SMIC's high-speed camera is the part MEGC2019 uses.
SMIC_PART = "HS"
#: How many missing samples an error message names before it just counts.
_NAMED = 10


@dataclass
class CompositeResult:
    """A composite selection.

    Attributes
    ----------
    table : DataFrame
        One row per listed sample found, in list order: the canonical columns, with
        ``label`` taken from the list.
    missing : DataFrame
        Listed samples not on disk (columns dataset, subject, sample, label); empty
        unless ``allow_missing``.
    """

    table: pd.DataFrame
    missing: pd.DataFrame


def load_composite_list() -> pd.DataFrame:
    """The packaged MEGC2019 list: 442 rows of dataset, subject, sample, label (strings)."""
    ref = resources.files("merlib.data").joinpath("resources", COMPOSITE_RESOURCE)
    with ref.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype="string")


def _index_micro(data_root: Path, allow_missing: bool) -> pd.DataFrame:
    present = [d for d in MICRO_DATASETS if (data_root / DATASET_FOLDERS[d]).is_dir()]
    if allow_missing and present:
        return index_datasets(data_root, present)
    # All three are required: index_datasets names the first folder that is missing.
    return index_datasets(data_root, list(MICRO_DATASETS))


def megc2019_composite(
    source: Path | str | pd.DataFrame, *, allow_missing: bool = False
) -> CompositeResult:
    """Select the MEGC2019 composite from a data root or an index table.

    Parameters
    ----------
    source : path or DataFrame
        A data root (CASME II, SAMM and SMIC are indexed), or a canonical table from
        :func:`merlib.data.index.index_datasets`.
    allow_missing : bool, default=False
        Return the samples found and report the others in ``missing`` instead of raising.

    Returns
    -------
    CompositeResult
        ``table`` in list order (442 rows on a complete tree), all canonical columns.

    Raises
    ------
    MissingSamplesError
        Listed samples are not on disk (names the first 10 and the count).
    AnnotationError
        A sample's label on disk differs from the list's (names the sample and both).
    """
    if isinstance(source, pd.DataFrame):
        index = validate_table(source, source="index table")
    else:
        index = _index_micro(Path(source), allow_missing)
    micro = index[index["dataset"].isin(MICRO_DATASETS)]
    micro = micro[(micro["dataset"] != "smic") | (micro["part"] == SMIC_PART)]
    dup = micro.duplicated(_KEY, keep=False)
    if dup.any():
        names = micro.loc[dup, "sample"].unique().tolist()
        raise AnnotationError(f"index has several rows for composite samples {names[:_NAMED]}")

    listed = load_composite_list()
    on_disk = micro[list(COLUMNS)].rename(columns={"label": "disk_label"})
    merged = listed.merge(on_disk, on=_KEY, how="left", indicator=True, sort=False)
    absent = merged["_merge"] == "left_only"
    missing = listed[absent.to_numpy()].reset_index(drop=True)
    if len(missing) and not allow_missing:
        named = ", ".join(f"{r.dataset}/{r.subject}/{r.sample}"
                          for r in missing.head(_NAMED).itertuples())
        more = f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
        raise MissingSamplesError(
            f"{len(missing)} of {len(listed)} MEGC2019 composite samples not on disk: "
            f"{named}{more}"
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
    return CompositeResult(table=table, missing=missing)
