"""COVIDx (v9A lists): dataset ``covidx`` and task ``covidx_cls``.

Citation: L. Wang, Z. Q. Lin, A. Wong. COVID-Net: a tailored deep convolutional neural network design for
detection of COVID-19 cases from chest X-ray images. Scientific Reports 10: 19549, 2020.

Download: https://github.com/lindawangg/COVID-Net (docs/COVIDx.md: build the data set from its sources, or take the
packaged release at https://www.kaggle.com/datasets/andyczhao/covidx-cxr2 with the v9A lists). Place it in
``<data root>/COVIDx``.

Raw layout::

    COVIDx/
        train_COVIDx9A.txt, test_COVIDx9A.txt   lines "patient_id filename class source" (space-separated)
        train/{filename}, test/{filename}        PNG / JPEG images

Lines are split on runs of whitespace (trailing blanks and CRLF are tolerated, blank lines skipped); a line with
other than 4 fields, a filename that is not a plain file name, or a class other than ``normal``, ``pneumonia``,
``COVID-19`` is a DataError naming the file and line. A filename repeated within a list with the same class is
read once; with a different class it is a DataError.

Label policy: ``label`` = index of the class in (normal, pneumonia, COVID-19): 0, 1, 2.

Split rule: test = the official test list. The train list is partitioned 80 / 20 into train / val by
``partition(sorted "train/{filename}" ids, seed=0)``: sizes floor(0.8 n) and the remainder. As in the reference,
val is drawn per image, so a patient may have images in both train and val (val only steers early stopping).

Sample table columns: ``sample_id`` (``train/{filename}`` or ``test/{filename}``), ``image_path``,
``source_file`` (the list), ``source_row`` (its 1-based line), ``label`` (int), ``patient_id`` (the list's
patient id field, as written; a patient's images share it), ``source``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from medvlp_bench.api import DataError, DatasetSpec, SplitTables, TaskSpec, hookimpl, partition
from medvlp_bench_plugins.datasets.raw_tables import (
    decode_problems,
    first_by_row,
    listed,
    missing_images,
    synthetic_writer,
)

CITATION = (
    "Wang L, Lin ZQ, Wong A. COVID-Net: a tailored deep convolutional neural network design for detection of "
    "COVID-19 cases from chest X-ray images. Scientific Reports 10:19549, 2020."
)
URL = "https://github.com/lindawangg/COVID-Net"
TRAIN_LIST = "train_COVIDx9A.txt"
TEST_LIST = "test_COVIDx9A.txt"
#: list file -> image folder
IMAGE_FOLDERS = {TRAIN_LIST: "train", TEST_LIST: "test"}
FIELDS = ("patient_id", "filename", "class", "source")
LABEL_NAMES = ("normal", "pneumonia", "COVID-19")
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.2}
SPLIT_SEED = 0
SPLIT_RULE = (
    "test = test_COVIDx9A.txt; train_COVIDx9A.txt partitioned 80/20 into train/val by medvlp_bench "
    "partition(sorted 'train/{filename}' ids, seed=0); sizes floor(0.8n), remainder"
)


def _line_problem(fields: list[str]) -> str | None:
    """Why the whitespace-separated fields of a non-blank line are not a valid entry, or ``None``."""
    if len(fields) != len(FIELDS):
        return f"expected {len(FIELDS)} space-separated fields ({' '.join(FIELDS)}), found {len(fields)}"
    filename, name = fields[1], fields[2]
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        return f"filename must be a plain file name, got {filename!r}"
    if name not in LABEL_NAMES:
        return f"unknown class {name!r}; expected one of {LABEL_NAMES}"
    return None


def _read_list(path: Path) -> tuple[pd.DataFrame, list[DataError]]:
    """The valid entries of a list (FIELDS + ``source_row``) and the problems of the others.

    Raises :class:`DataError` only if the file is missing or not UTF-8 text.
    """
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    records, problems = [], []
    try:
        with open(path, encoding="utf-8") as handle:
            for row, line in enumerate(handle, start=1):
                fields = line.split()
                reason = _line_problem(fields) if fields else None
                if reason:
                    problems.append(DataError(reason, file=str(path), row=row))
                elif fields:
                    records.append((*fields, row))
    except UnicodeDecodeError as error:
        raise DataError(f"not a UTF-8 text file ({error})", file=str(path)) from None
    frame = pd.DataFrame(records, columns=[*FIELDS, "source_row"])
    return frame, problems + _conflict_problems(frame, str(path))


def _conflict_problems(frame: pd.DataFrame, file: str) -> list[DataError]:
    """Filenames listed more than once with different classes."""
    classes = frame.groupby("filename")["class"].nunique()
    problems = []
    for filename in classes.index[classes > 1]:
        rows = frame.loc[frame["filename"] == filename, "source_row"].astype(int).tolist()
        problems.append(DataError(
            f"{filename} is listed on rows {rows} with different classes", file=file, row=rows[0]
        ))
    return problems


def _sample_table(frame: pd.DataFrame, folder: Path, list_name: str) -> pd.DataFrame:
    """One row per filename (first listing kept), sorted by sample_id; ``label`` indexes LABEL_NAMES."""
    frame = frame.drop_duplicates("filename", keep="first").sort_values("filename")
    images = IMAGE_FOLDERS[list_name]
    root = os.path.join(os.path.abspath(folder), images)
    return pd.DataFrame({
        "sample_id": [f"{images}/{filename}" for filename in frame["filename"]],
        "image_path": [os.path.join(root, filename) for filename in frame["filename"]],
        "source_file": str(Path(folder) / list_name),
        "source_row": frame["source_row"].to_numpy(dtype=np.int64),
        "label": frame["class"].map(LABEL_NAMES.index).to_numpy(dtype=np.int64),
        "patient_id": frame["patient_id"].to_numpy(dtype=object),
        "source": frame["source"].to_numpy(dtype=object),
    })


def load_list(folder: Path, list_name: str) -> pd.DataFrame:
    """The validated sample table of one list (train or test); raises DataError on any problem."""
    path = Path(folder) / list_name
    frame, problems = _read_list(path)
    if problems:
        raise first_by_row(problems)
    table = _sample_table(frame, Path(folder), list_name)
    if table.empty:
        raise DataError("no entries", file=str(path))
    missing = missing_images(table, str(path))
    if missing is not None:
        raise missing
    return table


def load_splits(folder: Path) -> SplitTables:
    """The ``covidx_cls`` splits: official test list; train list 80/20 by ``partition(ids, seed=0)``."""
    pool = load_list(Path(folder), TRAIN_LIST)
    test = load_list(Path(folder), TEST_LIST)
    parts = partition(pool["sample_id"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED)
    train, val = (pool[pool["sample_id"].isin(set(parts[name]))].reset_index(drop=True) for name in ("train", "val"))
    return SplitTables(train=train, val=val, test=test)


def _check_list(folder: Path, list_name: str) -> list[str]:
    """Problems of one list: its lines, its missing images, and decoding failures in a sample."""
    path = Path(folder) / list_name
    try:
        frame, problems = _read_list(path)
    except DataError as error:
        return [str(error)]
    if frame.empty and not problems:
        return [f"{path}: no entries"]
    table = _sample_table(frame, Path(folder), list_name)
    lines = listed(sorted(problems, key=lambda problem: problem.row), str(path))
    missing = missing_images(table, str(path))
    if missing is not None:
        lines.append(str(missing))
    return lines + decode_problems(table["image_path"])


def check(folder: Path) -> list[str]:
    """Problems of the raw download in ``folder`` (empty list = valid); never raises for a broken download.

    Checks both lists line by line, that every listed image exists, and that the first DECODE_SAMPLE images of
    each list decode.
    """
    return [line for list_name in IMAGE_FOLDERS for line in _check_list(Path(folder), list_name)]


@hookimpl
def medvlp_bench_datasets():
    return [
        DatasetSpec(
            name="covidx",
            title="COVIDx (v9A)",
            citation=CITATION,
            url=URL,
            folder="COVIDx",
            check=check,
            write_synthetic=synthetic_writer("covidx_synthetic", "write_covidx"),
        )
    ]


@hookimpl
def medvlp_bench_tasks():
    return [
        TaskSpec(
            name="covidx_cls",
            dataset="covidx",
            protocol="linear_probe",
            description="COVIDx 3-class classification (normal / pneumonia / COVID-19), linear probe, accuracy",
            load_splits=load_splits,
            label_names=LABEL_NAMES,
            target="multiclass",
            primary_metric="accuracy",
            split_rule=SPLIT_RULE,
        )
    ]
