"""CheXpert v1.0: dataset ``chexpert`` and task ``chexpert_cls`` (plus the "5x200" evaluation subset).

Citation: J. Irvin, P. Rajpurkar, M. Ko, Y. Yu, S. Ciurea-Ilcus, C. Chute, et al. CheXpert: A Large Chest
Radiograph Dataset with Uncertainty Labels and Expert Comparison. AAAI 2019 (arXiv:1901.07031).

Download: https://stanfordmlgroup.github.io/competitions/chexpert/ (registration; the downsampled
"CheXpert-v1.0-small" or the full-size "CheXpert-v1.0"). Unpack it into ``<data root>/CheXpert-v1.0-small``
(any folder name works).

Raw layout::

    CheXpert-v1.0-small/
        train.csv, valid.csv   Path,Sex,Age,Frontal/Lateral,AP/PA, then 14 observations (1.0 / 0.0 / -1.0 / blank)
        train/patient00001/study1/view1_frontal.jpg, valid/...

``Path`` values start with the original folder name (``CheXpert-v1.0-small/train/...`` or ``CheXpert-v1.0/...``):
a first component starting with ``CheXpert-v1.0`` is dropped and the rest joined to the dataset folder, so the
folder may be renamed. Required columns: Path, Frontal/Lateral and the five task observations.

Label policy (labels Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion, in that order): 1 -> 1,
0 -> 0, blank -> 0; uncertain (-1) -> 1 for Atelectasis, Edema and Pleural Effusion (U-Ones) and -> 0 for
Cardiomegaly and Consolidation (U-Zeros). Frontal images only. ``sample_id`` is the CSV's Path string; rows
repeating a Path with identical values are read once, with different values they are a DataError.
``patient_id`` is the Path's ``patientNNNNN`` folder (the first component starting with ``patient``; the Path
itself if it has none): a patient's studies and views share it.

Sample table columns: ``sample_id``, ``patient_id``, ``image_path``, ``source_file``, ``source_row``, then the five
labels (float 0/1).

Split rule: test = the frontal rows of the official valid.csv (202 images). val = n_val frontal train.csv rows,
n_val = min(5000, max(1, floor(n / 10))) of the n frontal train rows (5,000 for the full data; 10 % for scaled-down
copies), chosen by id: the first n_val Paths of ``partition(sorted Paths, seed=42)``. train = the other frontal
train rows, so train and val are disjoint by construction (the reference selected its held-out rows by label
value and leaked them back into train).

5x200 (:func:`five_by_two_hundred`, for zero-shot and retrieval, not a task yet): for each of the five labels,
200 frontal train.csv images that are positive (1.0) for it and negative or blank for the other four, the first
200 of ``partition(sorted candidate Paths, seed=42)``. It is drawn from all frontal train rows; ``chexpert_cls``
does not remove it, since zero-shot and retrieval never train on CheXpert.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from medvlp_bench.api import (
    SAMPLE_COLUMNS,
    DataError,
    DatasetSpec,
    SplitTables,
    TaskSpec,
    hookimpl,
    partition,
)
from medvlp_bench_plugins.datasets.raw_tables import (
    decode_problems,
    listed,
    missing_images,
    read_csv_rows,
    synthetic_writer,
)

CITATION = (
    "Irvin J, Rajpurkar P, Ko M, et al. CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and "
    "Expert Comparison. AAAI 2019."
)
URL = "https://stanfordmlgroup.github.io/competitions/chexpert/"
TRAIN_CSV = "train.csv"
VALID_CSV = "valid.csv"
VIEW_COLUMN = "Frontal/Lateral"
VIEWS = ("Frontal", "Lateral")
ORIGINAL_FOLDER_PREFIX = "CheXpert-v1.0"
LABEL_NAMES = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
#: target of an uncertain (-1) observation: U-Ones or U-Zeros per label
UNCERTAIN_TARGET = {
    "Atelectasis": 1.0, "Cardiomegaly": 0.0, "Consolidation": 0.0, "Edema": 1.0, "Pleural Effusion": 1.0
}
RAW_VALUES = (1.0, 0.0, -1.0)
REQUIRED_COLUMNS = ("Path", VIEW_COLUMN, *LABEL_NAMES)
VAL_SIZE = 5000
VAL_FRACTION_DIVISOR = 10
SPLIT_SEED = 42
FIVE_BY_200_SEED = 42
SPLIT_RULE = (
    "test = frontal rows of valid.csv; val = first min(5000, max(1, n//10)) Paths of medvlp_bench "
    "partition(sorted frontal train.csv Paths, seed=42); train = the other frontal train.csv rows"
)
#: stands for a blank observation when rows are compared
BLANK = -9.0


def _read_rows(path: Path) -> pd.DataFrame:
    """The rows of train.csv / valid.csv with Path and Frontal/Lateral stripped of surrounding blanks."""
    frame = read_csv_rows(path, REQUIRED_COLUMNS)
    return frame.assign(**{"Path": frame["Path"].str.strip(), VIEW_COLUMN: frame[VIEW_COLUMN].str.strip()})


def _raw_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """The five observations as floats: 1.0 positive, 0.0 negative, -1.0 uncertain, NaN blank (or unparsable)."""
    return frame[list(LABEL_NAMES)].apply(pd.to_numeric, errors="coerce").astype(np.float64)


def _relative_parts(value: str) -> list[str]:
    """The components of a Path value below the dataset folder (a leading ``CheXpert-v1.0*`` component dropped)."""
    parts = [part for part in value.split("/") if part]
    return parts[1:] if parts and parts[0].startswith(ORIGINAL_FOLDER_PREFIX) else parts


def _path_problem(value: str) -> str | None:
    """Why a Path value cannot name an image inside the dataset folder, or ``None``."""
    if value.startswith(("/", "\\")) or value[1:2] == ":":
        return f"Path must be relative, got {value!r}"
    parts = _relative_parts(value)
    if ".." in parts:
        return f"Path must not contain '..', got {value!r}"
    if not parts:
        return f"Path names no image, got {value!r}"
    return None


def _value_problems(frame: pd.DataFrame, file: str) -> list[DataError]:
    """Rows with a bad Path, a view other than Frontal / Lateral, or an observation not in 1 / 0 / -1 / blank."""
    problems = []
    for row, value in frame[["source_row", "Path"]].itertuples(index=False):
        reason = _path_problem(value)
        if reason:
            problems.append(DataError(reason, file=file, row=int(row)))
    for row, view in frame.loc[~frame[VIEW_COLUMN].isin(VIEWS), ["source_row", VIEW_COLUMN]].itertuples(index=False):
        problems.append(DataError(f"{VIEW_COLUMN} must be one of {VIEWS}, got {view!r}", file=file, row=int(row)))
    raw = _raw_labels(frame)
    for name in LABEL_NAMES:
        text = frame[name].str.strip()
        bad = (raw[name].isna() & (text != "")) | (raw[name].notna() & ~raw[name].isin(RAW_VALUES))
        for row, value in frame.loc[bad, ["source_row", name]].itertuples(index=False):
            problems.append(DataError(
                f"{name} must be 1.0, 0.0, -1.0 or blank, got {value!r}", file=file, row=int(row)
            ))
    return problems


def _duplicate_problems(frame: pd.DataFrame, file: str) -> list[DataError]:
    """Paths that appear on several rows with different view or observation values."""
    repeated = frame["Path"].duplicated(keep=False)
    values = _raw_labels(frame[repeated]).fillna(BLANK).assign(Path=frame["Path"], view=frame[VIEW_COLUMN])
    variants = values.drop_duplicates().groupby("Path").size()
    problems = []
    for path in variants.index[variants > 1]:
        rows = frame.loc[frame["Path"] == path, "source_row"].astype(int).tolist()
        problems.append(DataError(f"Path {path} repeats on rows {rows} with different values", file=file, row=rows[0]))
    return problems


def _row_problems(frame: pd.DataFrame, file: str) -> list[DataError]:
    """Every malformed row of train.csv / valid.csv, ordered by row."""
    problems = _value_problems(frame, file) + _duplicate_problems(frame, file)
    return sorted(problems, key=lambda problem: problem.row)


def _image_path(value: str, root: str) -> str:
    """The absolute image path of a CSV Path value (see :func:`_relative_parts`)."""
    return os.path.join(root, *_relative_parts(value))


def patient_of(value: str) -> str:
    """The patient of a CSV Path value: its first component starting with ``patient``, else the value itself."""
    return next((part for part in _relative_parts(value) if part.startswith("patient")), value)


def _observation_table(frame: pd.DataFrame, folder: Path, file: str) -> pd.DataFrame:
    """Valid rows, one per Path: SAMPLE_COLUMNS, ``patient_id``, ``frontal`` (bool) and the raw observation
    values."""
    frame = frame.drop_duplicates("Path", keep="first")
    root = os.path.abspath(folder)
    table = pd.DataFrame({
        "sample_id": frame["Path"].to_numpy(dtype=object),
        "patient_id": [patient_of(value) for value in frame["Path"]],
        "image_path": [_image_path(value, root) for value in frame["Path"]],
        "source_file": file,
        "source_row": frame["source_row"].to_numpy(dtype=np.int64),
        "frontal": (frame[VIEW_COLUMN] == "Frontal").to_numpy(),
    })
    raw = _raw_labels(frame)
    for name in LABEL_NAMES:
        table[name] = raw[name].to_numpy(dtype=np.float64)
    return table


def apply_label_policy(raw: pd.DataFrame) -> pd.DataFrame:
    """Targets from raw observations: 1 -> 1, 0 -> 0, blank -> 0, -1 -> UNCERTAIN_TARGET[label]."""
    targets = raw[list(LABEL_NAMES)].fillna(0.0)
    for name, value in UNCERTAIN_TARGET.items():
        targets.loc[raw[name] == -1.0, name] = value
    return targets.astype(np.float64)


def _task_table(observations: pd.DataFrame) -> pd.DataFrame:
    """SAMPLE_COLUMNS, ``patient_id`` and the five policy-applied targets, sorted by sample_id."""
    columns = [SAMPLE_COLUMNS[0], "patient_id", *SAMPLE_COLUMNS[1:]]
    table = pd.concat([observations[columns], apply_label_policy(observations)], axis=1)
    return table.sort_values("sample_id").reset_index(drop=True)


def _overlap_problem(train: pd.DataFrame, test: pd.DataFrame) -> DataError | None:
    """A DataError if a Path of valid.csv also appears in train.csv (test leaking into training), else ``None``."""
    shared = test[test["sample_id"].isin(set(train["sample_id"]))]
    if shared.empty:
        return None
    return DataError(
        f"{len(shared)} Path(s) also appear in {TRAIN_CSV}, e.g. {shared['sample_id'].iloc[0]}",
        file=shared["source_file"].iloc[0], row=int(shared["source_row"].iloc[0]),
    )


def load_frontal(folder: Path, name: str) -> pd.DataFrame:
    """The frontal rows of ``name`` (train.csv or valid.csv) with raw observations; raises DataError on a problem.

    Only the frontal images have to exist.
    """
    path = Path(folder) / name
    frame = _read_rows(path)
    problems = _row_problems(frame, str(path))
    if problems:
        raise problems[0]
    table = _observation_table(frame, Path(folder), str(path))
    frontal = table[table["frontal"]].drop(columns="frontal").reset_index(drop=True)
    if frontal.empty:
        raise DataError("no frontal rows", file=str(path))
    missing = missing_images(frontal, str(path))
    if missing is not None:
        raise missing
    return frontal


def validation_ids(ids: list[str], file: str) -> list[str]:
    """The held-out Paths: the first min(5000, max(1, n // 10)) of ``partition(sorted ids, seed=42)``."""
    if len(ids) < 2:
        raise DataError(f"{len(ids)} frontal row(s); at least 2 are needed to hold out a validation split", file=file)
    count = min(VAL_SIZE, max(1, len(ids) // VAL_FRACTION_DIVISOR))
    return partition(ids, {"all": 1.0}, SPLIT_SEED)["all"][:count]


def load_splits(folder: Path) -> SplitTables:
    """The ``chexpert_cls`` splits (see the module docstring): held-out val by id, official valid.csv as test."""
    folder = Path(folder)
    pool = load_frontal(folder, TRAIN_CSV)
    test = load_frontal(folder, VALID_CSV)
    overlap = _overlap_problem(pool, test)
    if overlap is not None:
        raise overlap
    held_out = pool["sample_id"].isin(set(validation_ids(pool["sample_id"].tolist(), str(folder / TRAIN_CSV))))
    return SplitTables(train=_task_table(pool[~held_out]), val=_task_table(pool[held_out]), test=_task_table(test))


def five_by_two_hundred(folder: Path, per_label: int = 200, seed: int = FIVE_BY_200_SEED) -> pd.DataFrame:
    """The "5x200" subset: ``per_label`` single-positive frontal train.csv images per label (module docstring).

    Columns: SAMPLE_COLUMNS, the five targets (one-hot) and ``label`` (int index into LABEL_NAMES); sorted by
    label, then sample_id. Raises DataError if a label has fewer than ``per_label`` candidates.
    """
    pool = load_frontal(Path(folder), TRAIN_CSV)
    raw = pool[list(LABEL_NAMES)]
    negative = raw.isna() | (raw == 0.0)
    parts = []
    for index, name in enumerate(LABEL_NAMES):
        others = [other for other in LABEL_NAMES if other != name]
        candidates = pool[(raw[name] == 1.0) & negative[others].all(axis=1)]
        if len(candidates) < per_label:
            raise DataError(
                f"{len(candidates)} single-positive frontal image(s) for {name}, {per_label} needed",
                file=str(Path(folder) / TRAIN_CSV),
            )
        chosen = set(partition(candidates["sample_id"].tolist(), {"all": 1.0}, seed)["all"][:per_label])
        parts.append(_task_table(candidates[candidates["sample_id"].isin(chosen)]).assign(label=index))
    return pd.concat(parts, ignore_index=True)


def _check_file(folder: Path, name: str) -> tuple[list[str], pd.DataFrame | None]:
    """Problems of one CSV and its images (all views), and its table of valid rows (``None`` if unreadable)."""
    path = Path(folder) / name
    try:
        frame = _read_rows(path)
    except DataError as error:
        return [str(error)], None
    if frame.empty:
        return [f"{path}: no data rows"], None
    problems = _row_problems(frame, str(path))
    bad_rows = {problem.row for problem in problems}
    table = _observation_table(frame[~frame["source_row"].isin(bad_rows)], Path(folder), str(path))
    lines = listed(problems, str(path))
    missing = missing_images(table, str(path))
    if missing is not None:
        lines.append(str(missing))
    return lines + decode_problems(table["image_path"]), table


def check(folder: Path) -> list[str]:
    """Problems of the raw download in ``folder`` (empty list = valid); never raises for a broken download.

    Checks both CSVs (header, Path, view and observation values, conflicting repeats), that every referenced
    image (frontal and lateral) exists, that no valid.csv Path is also in train.csv, and that the first
    DECODE_SAMPLE images of each CSV decode.
    """
    train_problems, train = _check_file(Path(folder), TRAIN_CSV)
    valid_problems, valid = _check_file(Path(folder), VALID_CSV)
    problems = train_problems + valid_problems
    overlap = None if train is None or valid is None else _overlap_problem(train, valid)
    return problems + ([str(overlap)] if overlap is not None else [])


@hookimpl
def medvlp_bench_datasets():
    return [
        DatasetSpec(
            name="chexpert",
            title="CheXpert v1.0",
            citation=CITATION,
            url=URL,
            folder="CheXpert-v1.0-small",
            check=check,
            write_synthetic=synthetic_writer("chexpert_synthetic", "write_chexpert"),
        )
    ]


@hookimpl
def medvlp_bench_tasks():
    return [
        TaskSpec(
            name="chexpert_cls",
            dataset="chexpert",
            protocol="linear_probe",
            description="CheXpert 5-label classification (frontal images), linear probe, macro AUROC",
            load_splits=load_splits,
            label_names=LABEL_NAMES,
            target="multilabel",
            primary_metric="auroc",
            split_rule=SPLIT_RULE,
        )
    ]
