"""RSNA Pneumonia Detection Challenge (stage 2): dataset ``rsna`` and tasks ``rsna_cls``, ``rsna_det``, ``rsna_seg``.

Citation: G. Shih, C. C. Wu, S. S. Halabi, M. D. Kohli, L. M. Prevedello, T. S. Cook, et al. Augmenting the
National Institutes of Health Chest Radiograph Dataset with Expert Annotations of Possible Pneumonia.
Radiology: Artificial Intelligence 1(1): e180041, 2019.

Download: https://www.kaggle.com/c/rsna-pneumonia-detection-challenge (stage 2 data; a Kaggle account that has
accepted the competition rules). Unpack it into ``<data root>/rsna-pneumonia``.

Raw layout::

    rsna-pneumonia/
        stage_2_train_labels.csv        patientId,x,y,width,height,Target  (one row per box)
        stage_2_train_images/{patientId}.dcm

Label policy: one sample per patient; ``Pneumonia = Target`` (0 or 1). All rows of a patient must carry the same
Target, else a :class:`DataError` names the rows. A Target-1 row carries one box (numeric, x, y >= 0, width,
height > 0, original pixel coordinates); a Target-0 row carries none (empty box fields). The sample table keeps a
patient's boxes in column ``boxes`` (list of ``[x, y, width, height]`` floats; empty for negatives).

Tasks: ``rsna_cls`` classifies ``Pneumonia`` (linear probe). ``rsna_det`` detects the boxes of column ``boxes``
(class "Lung Opacity"). ``rsna_seg`` segments the union of a patient's boxes, filled, at the DICOM's size (Rows x
Columns from its header, pixels not decoded): pixel (row r, column c) is inside box [x, y, w, h] when its centre
(c + 0.5, r + 0.5) lies in [x, x + w) x [y, y + h); box parts outside the image are cut off. Negatives have an
empty mask.

Split rule (all three tasks): patients (never rows) are partitioned 60 / 20 / 20 into train / val / test by
``partition(patientIds, seed=0)`` (sorted ids, seeded permutation); sizes floor(0.6 n), floor(0.2 n) and the
remainder. For the 26,684 stage-2 patients: 16,010 / 5,336 / 5,338 (the reference's chained scikit-learn splits
with random_state 0 give 16,010 / 5,337 / 5,337).

Sample table columns: ``sample_id`` (patientId), ``patient_id`` (patientId again: one image per patient),
``image_path``, ``source_file`` (the labels CSV), ``source_row`` (the patient's first row), ``Pneumonia`` (float
0/1), ``boxes``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from medvlp_bench.api import DataError, DatasetSpec, SplitTables, TaskSpec, hookimpl, partition
from medvlp_bench_plugins.datasets.raw_tables import (
    decode_problems,
    dicom_size,
    is_dicom,
    listed,
    missing_images,
    read_csv_rows,
    synthetic_writer,
)

CITATION = (
    "Shih G, Wu CC, Halabi SS, et al. Augmenting the National Institutes of Health Chest Radiograph Dataset with "
    "Expert Annotations of Possible Pneumonia. Radiology: Artificial Intelligence 1(1):e180041, 2019."
)
URL = "https://www.kaggle.com/c/rsna-pneumonia-detection-challenge"
LABELS_CSV = "stage_2_train_labels.csv"
IMAGES_FOLDER = "stage_2_train_images"
BOX_COLUMNS = ("x", "y", "width", "height")
REQUIRED_COLUMNS = ("patientId", *BOX_COLUMNS, "Target")
LABEL_NAMES = ("Pneumonia",)
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
SPLIT_SEED = 0
SPLIT_RULE = (
    "patients partitioned 60/20/20 into train/val/test by medvlp_bench partition(sorted patientIds, seed=0); "
    "sizes floor(0.6n), floor(0.2n), remainder"
)
#: label of the boxes and masks of rsna_det and rsna_seg
OPACITY_LABEL_NAMES = ("Lung Opacity",)
#: rsna_seg's only departure from the segmentation protocol's defaults: the MGCA code release trains its RSNA
#: segmentation with batch 16 (SIIM: 8, the protocol's default)
SEGMENTATION_HPARAMS = {"batch_size": 16}


def _target_problems(frame: pd.DataFrame, target: pd.Series, file: str) -> list[DataError]:
    """Rows with an empty patientId or a Target other than 0 / 1."""
    problems = [
        DataError("empty patientId", file=file, row=int(row))
        for row in frame.loc[frame["patientId"].str.strip() == "", "source_row"]
    ]
    for row, value in frame.loc[~target.isin([0, 1]), ["source_row", "Target"]].itertuples(index=False):
        problems.append(DataError(f"Target must be 0 or 1, got {value!r}", file=file, row=int(row)))
    return problems


def _box_problems(frame: pd.DataFrame, target: pd.Series, file: str) -> list[DataError]:
    """Target-1 rows whose box is not numeric with x, y >= 0 and width, height > 0; Target-0 rows with a box."""
    box = frame[list(BOX_COLUMNS)].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    valid_box = np.isfinite(box).all(axis=1) & (box[["x", "y"]] >= 0).all(axis=1)
    valid_box &= (box[["width", "height"]] > 0).all(axis=1)
    has_box = (frame[list(BOX_COLUMNS)].apply(lambda column: column.str.strip()) != "").any(axis=1)
    problems = []
    for index in frame.index[(target == 1) & ~valid_box]:
        values = ", ".join(f"{name}={frame.at[index, name]!r}" for name in BOX_COLUMNS)
        problems.append(DataError(
            f"Target 1 needs a box with numeric x, y >= 0 and width, height > 0; got {values}",
            file=file, row=int(frame.at[index, "source_row"]),
        ))
    for row in frame.loc[(target == 0) & has_box, "source_row"]:
        problems.append(DataError("Target 0 row carries a box", file=file, row=int(row)))
    return problems


def _conflict_problems(frame: pd.DataFrame, target: pd.Series, file: str) -> list[DataError]:
    """Patients whose rows carry different Target values."""
    valid = target.isin([0, 1])
    distinct = target[valid].groupby(frame.loc[valid, "patientId"]).nunique()
    problems = []
    for patient in distinct.index[distinct > 1]:
        rows = frame.loc[frame["patientId"] == patient, "source_row"].astype(int).tolist()
        problems.append(DataError(
            f"patient {patient} has conflicting Target values on rows {rows}", file=file, row=rows[0]
        ))
    return problems


def _row_problems(frame: pd.DataFrame, file: str) -> list[DataError]:
    """Every malformed row of the labels table, ordered by row."""
    target = pd.to_numeric(frame["Target"], errors="coerce").astype(np.float64)
    problems = _target_problems(frame, target, file) + _box_problems(frame, target, file)
    problems += _conflict_problems(frame, target, file)
    return sorted(problems, key=lambda problem: problem.row)


def _patient_table(frame: pd.DataFrame, folder: Path, file: str) -> pd.DataFrame:
    """One row per patient (sorted by patientId): Pneumonia = max Target of its rows, boxes of its Target-1 rows."""
    frame = frame.assign(Target=pd.to_numeric(frame["Target"], errors="coerce"))
    summary = frame.groupby("patientId", sort=True).agg(
        source_row=("source_row", "min"), Pneumonia=("Target", "max")
    )
    boxes: dict[str, list[list[float]]] = {patient: [] for patient in summary.index}
    for patient, *box in frame.loc[frame["Target"] == 1, ["patientId", *BOX_COLUMNS]].itertuples(index=False):
        boxes[patient].append([float(value) for value in box])
    images = os.path.join(os.path.abspath(folder), IMAGES_FOLDER)
    return pd.DataFrame({
        "sample_id": summary.index.astype(str),
        "patient_id": summary.index.astype(str),
        "image_path": [os.path.join(images, f"{patient}.dcm") for patient in summary.index],
        "source_file": file,
        "source_row": summary["source_row"].to_numpy(dtype=np.int64),
        "Pneumonia": summary["Pneumonia"].to_numpy(dtype=np.float64),
        "boxes": [boxes[patient] for patient in summary.index],
    })


def load_table(folder: Path) -> pd.DataFrame:
    """The validated per-patient table of the raw download in ``folder`` (raises DataError on any problem)."""
    path = Path(folder) / LABELS_CSV
    frame = read_csv_rows(path, REQUIRED_COLUMNS)
    problems = _row_problems(frame, str(path))
    if problems:
        raise problems[0]
    table = _patient_table(frame, Path(folder), str(path))
    if table.empty:
        raise DataError("no data rows", file=str(path))
    missing = missing_images(table, str(path))
    if missing is not None:
        raise missing
    return table


def load_splits(folder: Path) -> SplitTables:
    """The ``rsna_cls`` splits: patients 60/20/20 by ``partition(patientIds, seed=0)`` (see module docstring)."""
    table = load_table(Path(folder))
    parts = partition(table["sample_id"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED)
    chosen = {name: table[table["sample_id"].isin(set(ids))].reset_index(drop=True) for name, ids in parts.items()}
    return SplitTables(**chosen)


def boxes_mask(boxes: list, height: int, width: int) -> np.ndarray:
    """The (height, width) bool mask of the union of ``[x, y, w, h]`` boxes, filled (pixel centres inside, see the
    module docstring)."""
    mask = np.zeros((height, width), dtype=bool)
    for x, y, w, h in boxes:
        top, bottom = np.clip(np.ceil(np.array([y, y + h]) - 0.5).astype(np.int64), 0, height)
        left, right = np.clip(np.ceil(np.array([x, x + w]) - 0.5).astype(np.int64), 0, width)
        mask[top:bottom, left:right] = True
    return mask


def load_mask(row: pd.Series) -> np.ndarray:
    """The ``rsna_seg`` mask of a sample row: its boxes filled at the size of its DICOM (read from the header)."""
    height, width = dicom_size(row["image_path"])
    return boxes_mask(row["boxes"], height, width)


def _image_problems(table: pd.DataFrame, file: str) -> list[str]:
    """Existing images without the DICOM marker, then decoding failures among the first DECODE_SAMPLE others."""
    present = table[[os.path.exists(path) for path in table["image_path"]]]
    marked = np.fromiter((is_dicom(path) for path in present["image_path"]), dtype=bool, count=len(present))
    problems = listed([
        f"{file}, row {row}: {path} is not a readable DICOM file (no 'DICM' marker at byte 128)"
        for row, path in present.loc[~marked, ["source_row", "image_path"]].itertuples(index=False)
    ], file)
    return problems + decode_problems(present.loc[marked, "image_path"])


def check(folder: Path) -> list[str]:
    """Problems of the raw download in ``folder`` (empty list = valid); never raises for a broken download.

    Checks the labels CSV (header, Target values, boxes, per-patient agreement), that every patient's DICOM
    exists and carries the DICOM marker, and that the first DECODE_SAMPLE images decode.
    """
    path = Path(folder) / LABELS_CSV
    try:
        frame = read_csv_rows(path, REQUIRED_COLUMNS)
    except DataError as error:
        return [str(error)]
    if frame.empty:
        return [f"{path}: no data rows"]
    problems = _row_problems(frame, str(path))
    bad_rows = {problem.row for problem in problems}
    table = _patient_table(frame[~frame["source_row"].isin(bad_rows)], Path(folder), str(path))
    lines = listed(problems, str(path))
    missing = missing_images(table, str(path))
    if missing is not None:
        lines.append(str(missing))
    return lines + _image_problems(table, str(path))


@hookimpl
def medvlp_bench_datasets():
    return [
        DatasetSpec(
            name="rsna",
            title="RSNA Pneumonia Detection Challenge (stage 2)",
            citation=CITATION,
            url=URL,
            folder="rsna-pneumonia",
            check=check,
            write_synthetic=synthetic_writer("rsna_synthetic", "write_rsna"),
        )
    ]


@hookimpl
def medvlp_bench_tasks():
    return [
        TaskSpec(
            name="rsna_cls",
            dataset="rsna",
            protocol="linear_probe",
            description="RSNA pneumonia classification (one label per patient), linear probe, AUROC",
            load_splits=load_splits,
            label_names=LABEL_NAMES,
            target="binary",
            primary_metric="auroc",
            split_rule=SPLIT_RULE,
        ),
        TaskSpec(
            name="rsna_det",
            dataset="rsna",
            protocol="detection",
            description="RSNA lung-opacity detection (the patient's boxes), frozen encoder + YOLOv3 head, mAP",
            load_splits=load_splits,
            label_names=OPACITY_LABEL_NAMES,
            target="boxes",
            primary_metric="map",
            split_rule=SPLIT_RULE,
        ),
        TaskSpec(
            name="rsna_seg",
            dataset="rsna",
            protocol="segmentation",
            description="RSNA lung-opacity segmentation (boxes filled as masks), frozen encoder + U-Net, Dice",
            load_splits=load_splits,
            label_names=OPACITY_LABEL_NAMES,
            target="mask",
            primary_metric="dice",
            split_rule=SPLIT_RULE,
            hparams=dict(SEGMENTATION_HPARAMS),
            load_mask=load_mask,
        ),
    ]
