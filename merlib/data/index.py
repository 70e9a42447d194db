"""Index every dataset under a data root into one canonical sample table."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from merlib.data import casme2, ckplus, jaffe, mug, oulu, samm, smic
from merlib.data.schema import DATASETS, empty_table, validate_table
from merlib.errors import DataLayoutError

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


def index_datasets(data_root: Path | str, datasets: list[str] | None = None) -> pd.DataFrame:
    """Read the named datasets (default: every one found) into one canonical table.

    Parameters
    ----------
    data_root : path
        Folder holding the dataset folders (``CASME2``, ``SAMM``, ``SMIC``, ``CK+``,
        ``Oulu-CASIA``, ``JAFFE``, ``MUG``); other files there are ignored.
    datasets : list of str, optional
        Dataset keys to read. A named dataset whose folder is missing is an error.

    Returns
    -------
    DataFrame
        Canonical table, validated, sorted by dataset, subject, sample.

    Raises
    ------
    DataLayoutError
        ``data_root`` is missing, holds none of the dataset folders, or lacks the folder
        of a named dataset.
    """
    root = Path(data_root)
    if not root.is_dir():
        raise DataLayoutError(f"data root {root} does not exist or is not a folder")
    if datasets is None:
        names = found_datasets(root)
        if not names:
            raise DataLayoutError(
                f"data root {root} holds none of the dataset folders "
                f"{list(DATASET_FOLDERS.values())}"
            )
    else:
        unknown = [d for d in datasets if d not in READERS]
        if unknown:
            raise ValueError(f"datasets: unknown {unknown}; choose from {list(DATASETS)}")
        names = [d for d in DATASETS if d in datasets]
        for d in names:
            folder = root / DATASET_FOLDERS[d]
            if not folder.is_dir():
                raise DataLayoutError(
                    f"{d}: expected folder {DATASET_FOLDERS[d]}/ under data root {root}"
                )
    tables = [t for t in (READERS[d](root) for d in names) if len(t)]
    table = pd.concat(tables, ignore_index=True) if tables else empty_table()
    return validate_table(sort_table(table), source=f"index of {root}")
