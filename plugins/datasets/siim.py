"""SIIM-ACR Pneumothorax Segmentation (stage 1): dataset ``siim`` and task ``siim_seg``.

Citation: A. Zawacki, C. Wu, G. Shih, J. Elliott, M. Fomitchev, M. Hussain, P. Lakhani, P. Culliton, S. Bao.
SIIM-ACR Pneumothorax Segmentation. Kaggle competition, Society for Imaging Informatics in Medicine and American
College of Radiology, 2019.

Download: https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation (the stage 1 training DICOMs and
``train-rle.csv``; the competition served them through the Google Cloud Healthcare API, and Kaggle mirrors such as
https://www.kaggle.com/datasets/jesperdramsch/siim-acr-pneumothorax-segmentation-data keep the layout below).
Unpack it into ``<data root>/siim-acr-pneumothorax``.

Raw layout::

    siim-acr-pneumothorax/
        train-rle.csv     header "ImageId, EncodedPixels" (a blank after the comma); one row per pneumothorax
                          instance, "-1" for an image without pneumothorax
        dicom-images-train/<study uid>/<series uid>/<ImageId>.dcm     (1024 x 1024 in the real data)

``EncodedPixels`` is a relative run-length encoding on the column-major pixels of the DICOM (Rows x Columns); see
:mod:`medvlp_bench_plugins.datasets.rle`. Header names and values are stripped of surrounding blanks, so " -1" is
"-1". The DICOMs are found by walking ``dicom-images-train`` once (any depth); the file stem is the ImageId.
DICOMs that no CSV row names are not samples (nor checked).

Label policy: one sample per ImageId; its mask is the union of the masks of all its rows. A "-1" row contributes
nothing, so an image whose rows mix "-1" and runs is positive with the union of its runs, and an image with only
"-1" rows is negative (empty mask). Column ``rle`` keeps the image's run strings in file order (empty list for a
negative); ``height`` and ``width`` are the DICOM's Rows and Columns (read from its header, pixels not decoded).
:func:`load_mask` decodes a row's mask at that size.

Errors (:class:`DataError` naming ``train-rle.csv`` and the row): an empty ImageId; an empty EncodedPixels; an
encoding with a non-integer token, an odd token count, a negative offset or a run length < 1; runs ending past the
DICOM's Rows x Columns pixels; an ImageId without a DICOM. An ImageId found twice under ``dicom-images-train`` and a
DICOM whose header cannot be read are DataErrors naming the DICOM.

Split rule: ImageIds are partitioned 70 / 15 / 15 into train / val / test by ``partition(ImageIds, seed=0)``
(sorted ids, seeded permutation; sizes floor(0.7 n), floor(0.15 n), remainder). The training split is then
balanced as in the reference: all its positive images plus as many negatives, the first ones of
``partition(its negative ImageIds, seed=0)`` (all negatives if there are fewer). val and test stay unbalanced.

Sample table columns: ``sample_id`` (ImageId), ``patient_id`` (ImageId again: the CSV names no patient),
``image_path``, ``source_file`` (``train-rle.csv``), ``source_row`` (the image's first row), ``rle`` (list of
str), ``height``, ``width`` (int pixels); sorted by sample_id.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from medvlp_bench.api import DataError, DatasetSpec, SplitTables, TaskSpec, hookimpl, partition
from medvlp_bench_plugins.datasets.raw_tables import (
    MISSING_SHOWN,
    decode_problems,
    dicom_size,
    first_by_row,
    listed,
    read_csv_rows,
    synthetic_writer,
    with_image_sizes,
)
from medvlp_bench_plugins.datasets.rle import EMPTY, decode_relative_rle, run_end

CITATION = (
    "Zawacki A, Wu C, Shih G, Elliott J, Fomitchev M, Hussain M, Lakhani P, Culliton P, Bao S. SIIM-ACR "
    "Pneumothorax Segmentation. Kaggle, 2019."
)
URL = "https://www.kaggle.com/c/siim-acr-pneumothorax-segmentation"
FOLDER = "siim-acr-pneumothorax"
LABELS_CSV = "train-rle.csv"
IMAGES_FOLDER = "dicom-images-train"
DICOM_SUFFIX = ".dcm"
REQUIRED_COLUMNS = ("ImageId", "EncodedPixels")
LABEL_NAMES = ("Pneumothorax",)
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
SPLIT_SEED = 0
BALANCE_SEED = 0
SPLIT_RULE = (
    "ImageIds partitioned 70/15/15 into train/val/test by medvlp_bench partition(sorted ImageIds, seed=0); sizes "
    "floor(0.7n), floor(0.15n), remainder; train balanced: all positives + the first as many negatives of "
    "partition(its negative ImageIds, seed=0); val/test unbalanced"
)


def _read_rows(path: Path) -> pd.DataFrame:
    """The rows of train-rle.csv with ImageId and EncodedPixels stripped of surrounding blanks."""
    frame = read_csv_rows(path, REQUIRED_COLUMNS)
    return frame.assign(ImageId=frame["ImageId"].str.strip(), EncodedPixels=frame["EncodedPixels"].str.strip())


def _row_end(image_id: str, text: str) -> int:
    """One past the last pixel a row's runs cover (stripped values); raises ValueError saying why a row is invalid
    (an :class:`RLEError` for a malformed encoding)."""
    if not image_id:
        raise ValueError("empty ImageId")
    if not text:
        raise ValueError(f"empty EncodedPixels (an image without pneumothorax is written {EMPTY!r})")
    return run_end(text)


def _parse_rows(frame: pd.DataFrame, file: str) -> tuple[pd.DataFrame, list[DataError]]:
    """The valid rows with ``run_end`` (one past the last pixel they cover), and the problems of the others."""
    ends, problems = [], []
    for image_id, text, row in frame[["ImageId", "EncodedPixels", "source_row"]].itertuples(index=False):
        try:
            ends.append(_row_end(image_id, text))
        except ValueError as error:
            problems.append(DataError(str(error), file=file, row=int(row)))
            ends.append(-1)
    parsed = frame.assign(run_end=np.asarray(ends, dtype=np.int64))
    return parsed[parsed["run_end"] >= 0], problems


def find_dicoms(folder: Path) -> dict[str, list[str]]:
    """ImageId (file stem) -> absolute paths of the ``*.dcm`` files under ``dicom-images-train``, found by one walk
    of the tree at any depth. Raises :class:`DataError` if the folder does not exist."""
    root = Path(folder).absolute() / IMAGES_FOLDER
    if not root.is_dir():
        raise DataError("folder not found", file=str(root))
    found: dict[str, list[str]] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if name.lower().endswith(DICOM_SUFFIX):
                found.setdefault(name[: -len(DICOM_SUFFIX)], []).append(os.path.join(directory, name))
    return {image_id: sorted(paths) for image_id, paths in found.items()}


def _duplicate_problems(found: dict[str, list[str]], image_ids) -> list[DataError]:
    """A problem per ImageId of ``image_ids`` with more than one DICOM, naming them all."""
    return [
        DataError(f"ImageId {image_id} found {len(found[image_id])} times: {found[image_id]}", file=found[image_id][0])
        for image_id in sorted(set(image_ids)) if len(found.get(image_id, ())) > 1
    ]


def _image_table(rows: pd.DataFrame, found: dict[str, list[str]], file: str) -> pd.DataFrame:
    """One row per ImageId (sorted): SAMPLE_COLUMNS, ``patient_id`` and ``rle``; ``image_path`` is "" unless exactly one DICOM
    was found."""
    summary = rows.groupby("ImageId", sort=True)["source_row"].min()
    rle = rows[rows["EncodedPixels"] != EMPTY].groupby("ImageId")["EncodedPixels"].agg(list)
    paths = [found.get(image_id, []) for image_id in summary.index]
    return pd.DataFrame({
        "sample_id": summary.index.astype(str),
        "patient_id": summary.index.astype(str),
        "image_path": [candidates[0] if len(candidates) == 1 else "" for candidates in paths],
        "source_file": file,
        "source_row": summary.to_numpy(dtype=np.int64),
        "rle": [rle.get(image_id, []) for image_id in summary.index],
    })


def _missing_dicoms(table: pd.DataFrame, found: dict[str, list[str]], folder: Path, file: str) -> DataError | None:
    """A DataError naming the first ImageIds without a DICOM (with their rows) and the count, or ``None``."""
    absent = ~table["sample_id"].isin(set(found))
    missing = table.loc[absent, ["source_row", "sample_id"]].sort_values("source_row")
    if missing.empty:
        return None
    shown = "; ".join(f"row {row}: {image_id}" for row, image_id in missing.head(MISSING_SHOWN).itertuples(index=False))
    more = "; ..." if len(missing) > MISSING_SHOWN else ""
    return DataError(
        f"{len(missing)} of {len(table)} ImageId(s) have no {DICOM_SUFFIX} file under "
        f"{Path(folder).absolute() / IMAGES_FOLDER} ({shown}{more})",
        file=file, row=int(missing["source_row"].iloc[0]),
    )


def _range_problems(table: pd.DataFrame, rows: pd.DataFrame, file: str) -> list[DataError]:
    """Rows whose runs end past the pixels of their image's DICOM."""
    pixels = table.set_index("sample_id")[["height", "width", "image_path"]]
    joined = rows.join(pixels, on="ImageId", how="inner")
    beyond = joined[joined["run_end"] > joined["height"] * joined["width"]]
    return [
        DataError(f"runs end at pixel {end}, past the {height} x {width} image {path}", file=file, row=int(row))
        for row, end, height, width, path in beyond[
            ["source_row", "run_end", "height", "width", "image_path"]
        ].itertuples(index=False)
    ]


def load_table(folder: Path) -> pd.DataFrame:
    """The validated per-image table of the raw download in ``folder`` (raises DataError on any problem)."""
    path = Path(folder) / LABELS_CSV
    file = str(path)
    rows, problems = _parse_rows(_read_rows(path), file)
    if problems:
        raise first_by_row(problems)
    if rows.empty:
        raise DataError("no data rows", file=file)
    found = find_dicoms(Path(folder))
    duplicates = _duplicate_problems(found, rows["ImageId"])
    if duplicates:
        raise duplicates[0]
    table = _image_table(rows, found, file)
    missing = _missing_dicoms(table, found, Path(folder), file)
    if missing is not None:
        raise missing
    table, unreadable = with_image_sizes(table, dicom_size)
    if unreadable:
        raise unreadable[0]
    beyond = _range_problems(table, rows, file)
    if beyond:
        raise first_by_row(beyond)
    return table.reset_index(drop=True)


def balanced_training(train: pd.DataFrame, seed: int = BALANCE_SEED) -> pd.DataFrame:
    """All positive rows of ``train`` plus as many negatives (the first of ``partition(negative ids, seed)``)."""
    positive = train["rle"].str.len() > 0
    negatives = partition(train.loc[~positive, "sample_id"].tolist(), {"all": 1.0}, seed)["all"]
    chosen = set(negatives[: int(positive.sum())])
    return train[positive | train["sample_id"].isin(chosen)].reset_index(drop=True)


def load_splits(folder: Path) -> SplitTables:
    """The ``siim_seg`` splits: ImageIds 70/15/15 by ``partition(ids, seed=0)``, train balanced (docstring)."""
    table = load_table(Path(folder))
    parts = partition(table["sample_id"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED)
    chosen = {name: table[table["sample_id"].isin(set(ids))].reset_index(drop=True) for name, ids in parts.items()}
    return SplitTables(train=balanced_training(chosen["train"]), val=chosen["val"], test=chosen["test"])


def load_mask(row: pd.Series) -> np.ndarray:
    """The (height, width) bool pneumothorax mask of a sample row: the union of its ``rle`` runs."""
    height, width = int(row["height"]), int(row["width"])
    mask = np.zeros((height, width), dtype=bool)
    for text in row["rle"]:
        mask |= decode_relative_rle(text, height, width)
    return mask


def check(folder: Path) -> list[str]:
    """Problems of the raw download in ``folder`` (empty list = valid); never raises for a broken download.

    Checks train-rle.csv (header, ImageIds, encodings), finds the DICOMs (duplicates, missing ones), reads every
    referenced DICOM header (size) and checks that the runs fit in it, and decodes the first DECODE_SAMPLE images.
    """
    path = Path(folder) / LABELS_CSV
    file = str(path)
    try:
        frame = _read_rows(path)
    except DataError as error:
        return [str(error)]
    if frame.empty:
        return [f"{file}: no data rows"]
    rows, problems = _parse_rows(frame, file)
    lines = listed(problems, file)
    try:
        found = find_dicoms(Path(folder))
    except DataError as error:
        return lines + [str(error)]
    lines += listed(_duplicate_problems(found, rows["ImageId"]), file)
    table = _image_table(rows, found, file)
    missing = _missing_dicoms(table, found, Path(folder), file)
    if missing is not None:
        lines.append(str(missing))
    table, unreadable = with_image_sizes(table[table["image_path"] != ""], dicom_size)
    lines += listed(unreadable, file) + listed(_range_problems(table, rows, file), file)
    return lines + decode_problems(table["image_path"])


@hookimpl
def medvlp_bench_datasets():
    return [
        DatasetSpec(
            name="siim",
            title="SIIM-ACR Pneumothorax Segmentation (stage 1)",
            citation=CITATION,
            url=URL,
            folder=FOLDER,
            check=check,
            write_synthetic=synthetic_writer("siim_synthetic", "write_siim"),
        )
    ]


@hookimpl
def medvlp_bench_tasks():
    return [
        TaskSpec(
            name="siim_seg",
            dataset="siim",
            protocol="segmentation",
            description="SIIM-ACR pneumothorax segmentation (union of instance masks), frozen encoder + U-Net, Dice",
            load_splits=load_splits,
            label_names=LABEL_NAMES,
            target="mask",
            primary_metric="dice",
            split_rule=SPLIT_RULE,
            load_mask=load_mask,
        )
    ]
