"""Index every dataset under a data root into one canonical sample table."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from merlib.data import casme2, ckplus, jaffe, mug, oulu, samm, smic
from merlib.data.apex import check_method
from merlib.data.schema import DATASETS, empty_table, validate_table
from merlib.errors import ConfigError, DataLayoutError, MerlibError, MerlibWarning

#: Dataset key -> folder name under the data root.
DATASET_FOLDERS: dict[str, str] = {
    "casme2": casme2.FOLDER, "samm": samm.FOLDER, "smic": smic.FOLDER,
    "ckplus": ckplus.FOLDER, "oulu": oulu.FOLDER, "jaffe": jaffe.FOLDER, "mug": mug.FOLDER,
}

#: Dataset key -> reader ``(data_root) -> canonical table``.
READERS: dict[str, Callable[[Path | str], pd.DataFrame]] = {
    "casme2": casme2.read_casme2, "samm": samm.read_samm, "smic": smic.read_smic,
    "ckplus": ckplus.read_ckplus, "oulu": oulu.read_oulu, "jaffe": jaffe.read_jaffe,
    "mug": mug.read_mug,
}
#: Readers that take ``apex_fallback`` (their sheets code an apex that can be unusable).
_APEX_READERS = frozenset({"casme2", "samm"})

#: Columns of :attr:`IndexResult.errors` (and of ``merlib index``'s error report).
ERROR_COLUMNS: list[str] = ["dataset", "folder", "error", "message"]


class DatasetSkippedWarning(MerlibWarning):
    """A dataset under the data root could not be indexed and was left out (names it)."""


@dataclass(frozen=True)
class IndexResult:
    """What :func:`index_report` could and could not index.

    Attributes
    ----------
    table : DataFrame
        Canonical table of every dataset read, validated, in canonical order.
    errors : DataFrame
        One row per dataset that could not be read (:data:`ERROR_COLUMNS`): its key,
        folder, the error class and the message, which names the file and row at fault.
    """

    table: pd.DataFrame
    errors: pd.DataFrame


def frame_pattern(dataset: str, part: str | None = None) -> str:
    """The frame-name pattern of a dataset (for CASME II, of its ``raw``/``cropped`` part).

    JAFFE has none: its samples are single images.
    """
    patterns = {"samm": samm.FRAME_PATTERN, "smic": smic.FRAME_PATTERN,
                "ckplus": ckplus.FRAME_PATTERN, "oulu": oulu.FRAME_PATTERN,
                "mug": mug.FRAME_PATTERN}
    if dataset == "casme2":
        return casme2.RELEASES[part or "raw"].pattern
    if dataset not in patterns:
        raise ValueError(f"dataset {dataset!r}: no frame sequences; expected one of "
                         f"{['casme2', *patterns]}")
    return patterns[dataset]


def found_datasets(data_root: Path | str) -> list[str]:
    """Dataset keys whose folder exists under ``data_root``, in :data:`DATASETS` order."""
    root = Path(data_root)
    return [d for d in DATASETS if (root / DATASET_FOLDERS[d]).is_dir()]


def sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the canonical order: dataset as in :data:`DATASETS`, subject, sample, part."""
    rank = table["dataset"].map({d: i for i, d in enumerate(DATASETS)})
    order = (table.assign(_rank=rank)
             .sort_values(["_rank", "subject", "sample", "part"], kind="stable"))
    return order.drop(columns="_rank").reset_index(drop=True)


def read_dataset(data_root: Path | str, dataset: str, *,
                 apex_fallback: str = "motion") -> pd.DataFrame:
    """One dataset's canonical table, validated (raises what its reader raises)."""
    root = Path(data_root)
    if dataset in _APEX_READERS:
        table = READERS[dataset](root, apex_fallback=apex_fallback)
    else:
        table = READERS[dataset](root)
    return validate_table(table, source=f"{dataset} under {root}")


def _names(root: Path, datasets: list[str] | None) -> list[str]:
    if not root.is_dir():
        raise DataLayoutError(f"data root {root} does not exist or is not a folder")
    if datasets is None:
        names = found_datasets(root)
        if not names:
            raise DataLayoutError(
                f"data root {root} holds none of the dataset folders "
                f"{list(DATASET_FOLDERS.values())}"
            )
        return names
    unknown = [d for d in datasets if d not in READERS]
    if unknown:
        raise ConfigError(f"datasets: unknown {unknown}; choose from {list(DATASETS)}")
    names = [d for d in DATASETS if d in datasets]
    for d in names:
        if not (root / DATASET_FOLDERS[d]).is_dir():
            raise DataLayoutError(
                f"{d}: expected folder {DATASET_FOLDERS[d]}/ under data root {root}"
            )
    return names


def _combine(root: Path, tables: list[pd.DataFrame]) -> pd.DataFrame:
    tables = [t for t in tables if len(t)]
    table = pd.concat(tables, ignore_index=True) if tables else empty_table()
    return validate_table(sort_table(table), source=f"index of {root}")


def index_report(data_root: Path | str, datasets: list[str] | None = None, *,
                 apex_fallback: str = "motion") -> IndexResult:
    """Index every dataset it can; record, rather than raise, each one that fails.

    Parameters
    ----------
    data_root : path
        Folder holding the dataset folders; other files there are ignored.
    datasets : list of str, optional
        Dataset keys to read (default: every one whose folder is present). A named
        dataset whose folder is missing is an error.
    apex_fallback : {"motion", "middle"}, default="motion"
        How CASME II and SAMM replace an unusable apex cell (:mod:`merlib.data.apex`).

    Returns
    -------
    IndexResult
        The table of the datasets read, and one error row per dataset that was not:
        a data problem (:class:`merlib.errors.MerlibError`: a bad layout, sheet or cell)
        or a file that cannot be read (``OSError``).

    Raises
    ------
    DataLayoutError
        ``data_root`` is missing, holds none of the dataset folders, or lacks the
        folder of a named dataset.
    ConfigError
        Unknown dataset key or ``apex_fallback``.
    """
    check_method(apex_fallback)
    root = Path(data_root)
    names = _names(root, datasets)
    tables, errors = [], []
    for d in names:
        try:
            tables.append(read_dataset(root, d, apex_fallback=apex_fallback))
        except (MerlibError, OSError) as err:
            # One odd dataset must not hide the others: record it and go on.
            errors.append({"dataset": d, "folder": DATASET_FOLDERS[d],
                           "error": type(err).__name__, "message": str(err)})
    return IndexResult(_combine(root, tables),
                       pd.DataFrame(errors, columns=ERROR_COLUMNS, dtype="string"))


def index_datasets(data_root: Path | str, datasets: list[str] | None = None, *,
                   apex_fallback: str = "motion") -> pd.DataFrame:
    """Read the named datasets (default: every one found) into one canonical table.

    Parameters
    ----------
    data_root : path
        Folder holding the dataset folders (``CASME2``, ``SAMM``, ``SMIC``, ``CK+``,
        ``Oulu-CASIA``, ``JAFFE``, ``MUG``); other files there are ignored.
    datasets : list of str, optional
        Dataset keys to read; then every one must be read, and the first error is
        raised. By default every dataset found is read, and one that cannot be is left
        out with a :class:`DatasetSkippedWarning` naming the error; the errors are also
        in ``table.attrs["index_errors"]`` (records of :data:`ERROR_COLUMNS`). Use
        :func:`index_report` to get them as a table.
    apex_fallback : {"motion", "middle"}, default="motion"
        How CASME II and SAMM replace an unusable apex cell (:mod:`merlib.data.apex`).

    Returns
    -------
    DataFrame
        Canonical table, validated, sorted by dataset, subject, sample.

    Raises
    ------
    DataLayoutError
        ``data_root`` is missing, holds none of the dataset folders, or lacks the folder
        of a named dataset; or what a named dataset's reader raises.
    """
    check_method(apex_fallback)
    root = Path(data_root)
    if datasets is not None:
        names = _names(root, datasets)
        return _combine(root, [read_dataset(root, d, apex_fallback=apex_fallback)
                               for d in names])
    result = index_report(root, apex_fallback=apex_fallback)
    for rec in result.errors.to_dict("records"):
        warnings.warn(f"{rec['dataset']} left out of the index: {rec['message']}",
                      DatasetSkippedWarning, stacklevel=2)
    table = result.table
    table.attrs["index_errors"] = result.errors.to_dict("records")
    return table
