"""Object-CXR (foreign objects on chest X-rays): dataset ``object_cxr`` and task ``object_cxr_det``.

Citation: JF Healthcare. Object-CXR: Automatic detection of foreign objects on chest X-rays. MIDL 2020 challenge,
https://jfhealthcare.github.io/object-CXR/ (5,000 frontal radiographs with foreign objects, 5,000 without).

Download: https://jfhealthcare.github.io/object-CXR/ (train.csv, dev.csv and the train / dev image archives of the
challenge). Unpack them into ``<data root>/object-CXR``.

Raw layout::

    object-CXR/
        train.csv, dev.csv     image_name,annotation
        train/{image_name}, dev/{image_name}      JPEG, sizes vary (about 2,000-4,000 px a side)

``annotation`` lists the image's objects separated by ';' (empty = no object; blank pieces, as after a trailing
';', are skipped). An object is ``TYPE x1 y1 x2 y2 ...``, coordinates in pixels of the original image:
TYPE 0 rectangle (corners x1 y1 x2 y2), 1 ellipse (its bounding box x1 y1 x2 y2), 2 polygon (three or more
points). The object's box is the min / max of its points: ``[min x, min y, max x - min x, max y - min y]``.

Label policy: one class, "Foreign object"; column ``boxes`` holds an image's boxes (list of ``[x, y, w, h]``
floats, empty for an image without objects), ``height`` and ``width`` its size (read from the file header,
pixels not decoded).

Errors (:class:`DataError` naming the CSV and the row): an image_name that is empty, not a plain file name, or
repeated in its CSV; an object with an unknown TYPE, a non-numeric coordinate, an odd number of coordinates, other
than 4 coordinates for a rectangle or ellipse, fewer than 3 points for a polygon, or a box without area; a point
outside its image (x < 0, y < 0, x > width or y > height); a missing image. An image whose header cannot be read
is a DataError naming the image.

Split rule: test = dev.csv (1,000 images). train.csv is partitioned 80 / 20 into train / val by
``partition(sorted "train/{image_name}" ids, seed=0)``: sizes floor(0.8 n) and the remainder (6,400 / 1,600 for
the 8,000 training images, as reported).

Sample table columns: ``sample_id`` (``train/{image_name}`` or ``dev/{image_name}``), ``patient_id`` (the
sample_id again: the release names no patient), ``image_path``, ``source_file`` (the CSV), ``source_row``,
``boxes``, ``height``, ``width`` (int pixels); sorted by sample_id.
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
    raster_size,
    read_csv_rows,
    synthetic_writer,
    with_image_sizes,
)

CITATION = (
    "JF Healthcare. Object-CXR: Automatic detection of foreign objects on chest X-rays. MIDL 2020 challenge, "
    "https://jfhealthcare.github.io/object-CXR/."
)
URL = "https://jfhealthcare.github.io/object-CXR/"
FOLDER = "object-CXR"
TRAIN_CSV = "train.csv"
DEV_CSV = "dev.csv"
#: CSV -> image folder
IMAGE_FOLDERS = {TRAIN_CSV: "train", DEV_CSV: "dev"}
REQUIRED_COLUMNS = ("image_name", "annotation")
RECTANGLE, ELLIPSE, POLYGON = 0, 1, 2
TYPE_NAMES = {RECTANGLE: "rectangle", ELLIPSE: "ellipse", POLYGON: "polygon"}
MIN_POLYGON_POINTS = 3
LABEL_NAMES = ("Foreign object",)
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.2}
SPLIT_SEED = 0
SPLIT_RULE = (
    "test = dev.csv; train.csv partitioned 80/20 into train/val by medvlp_bench partition(sorted "
    "'train/{image_name}' ids, seed=0); sizes floor(0.8n), remainder"
)


def parse_object(text: str) -> list[float]:
    """The box ``[x, y, w, h]`` of one object ``TYPE x1 y1 x2 y2 ...``; raises ValueError saying why it is
    malformed (see the module docstring)."""
    kind, *tokens = text.split()
    code = next((code for code in TYPE_NAMES if str(code) == kind), None)
    if code is None:
        raise ValueError(f"unknown annotation type {kind!r}; expected 0 (rectangle), 1 (ellipse) or 2 (polygon)")
    try:
        points = np.array(tokens, dtype=np.float64)
    except ValueError:
        points = np.array([np.nan])
    if not np.isfinite(points).all():
        raise ValueError(f"non-numeric coordinate in {text!r}")
    name = TYPE_NAMES[code]
    if points.size % 2:
        raise ValueError(f"{name} has an odd number of coordinates ({points.size})")
    if code == POLYGON and points.size < 2 * MIN_POLYGON_POINTS:
        raise ValueError(f"polygon needs at least {MIN_POLYGON_POINTS} points, got {points.size // 2}")
    if code != POLYGON and points.size != 4:
        raise ValueError(f"{name} needs 4 coordinates (x1 y1 x2 y2), got {points.size}")
    xy = points.reshape(-1, 2)
    low, high = xy.min(axis=0), xy.max(axis=0)
    if (high <= low).any():
        raise ValueError(f"{name} {text!r} encloses no area")
    return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]


def parse_annotation(text: str) -> list[list[float]]:
    """The boxes ``[x, y, w, h]`` of an annotation (objects separated by ';'; empty = none); raises ValueError
    naming the object (1-based) that is malformed."""
    boxes = []
    for index, piece in enumerate((piece.strip() for piece in text.split(";")), start=1):
        if not piece:
            continue
        try:
            boxes.append(parse_object(piece))
        except ValueError as error:
            raise ValueError(f"object {index}: {error}") from None
    return boxes


def _name_problem(name: str) -> str | None:
    """Why an image_name cannot name an image in the image folder, or ``None``."""
    if not name:
        return "empty image_name"
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"image_name must be a plain file name, got {name!r}"
    return None


def _read_rows(path: Path) -> pd.DataFrame:
    """The rows of train.csv / dev.csv with image_name stripped of surrounding blanks."""
    frame = read_csv_rows(path, REQUIRED_COLUMNS)
    return frame.assign(image_name=frame["image_name"].str.strip())


def _row_boxes(name: str, annotation: str) -> list[list[float]]:
    """The boxes of a row (image_name stripped); raises ValueError saying why the row is invalid."""
    reason = _name_problem(name)
    if reason:
        raise ValueError(reason)
    return parse_annotation(annotation)


def _parse_rows(frame: pd.DataFrame, file: str) -> tuple[pd.DataFrame, list[DataError]]:
    """The valid rows with their ``boxes``, and the problems of the others (repeated names included)."""
    boxes, problems = [], []
    for name, annotation, row in frame[["image_name", "annotation", "source_row"]].itertuples(index=False):
        try:
            boxes.append(_row_boxes(name, annotation))
        except ValueError as error:
            problems.append(DataError(str(error), file=file, row=int(row)))
            boxes.append(None)
    parsed = frame.assign(boxes=boxes)
    parsed = parsed[parsed["boxes"].notna()]
    repeated = parsed["image_name"].duplicated(keep="first")
    first_rows = parsed.drop_duplicates("image_name").set_index("image_name")["source_row"]
    for name, row in parsed.loc[repeated, ["image_name", "source_row"]].itertuples(index=False):
        problems.append(DataError(f"image_name {name} repeated (first on row {first_rows[name]})", file=file,
                                  row=int(row)))
    return parsed[~repeated], problems


def _sample_table(rows: pd.DataFrame, folder: Path, csv_name: str) -> pd.DataFrame:
    """SAMPLE_COLUMNS, ``patient_id`` (= sample_id) and ``boxes`` of the parsed rows of one CSV, sorted by
    sample_id."""
    images = IMAGE_FOLDERS[csv_name]
    root = os.path.join(os.path.abspath(folder), images)
    rows = rows.sort_values("image_name")
    return pd.DataFrame({
        "sample_id": [f"{images}/{name}" for name in rows["image_name"]],
        "patient_id": [f"{images}/{name}" for name in rows["image_name"]],
        "image_path": [os.path.join(root, name) for name in rows["image_name"]],
        "source_file": str(Path(folder) / csv_name),
        "source_row": rows["source_row"].to_numpy(dtype=np.int64),
        "boxes": rows["boxes"].tolist(),
    })


def _outside_problems(table: pd.DataFrame) -> list[DataError]:
    """Rows with a box reaching outside their image (x < 0, y < 0, x + w > width or y + h > height)."""
    problems = []
    for file, row, boxes, width, height in table[
        ["source_file", "source_row", "boxes", "width", "height"]
    ].itertuples(index=False):
        box = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        outside = (box[:, :2] < 0).any(axis=1) | (box[:, 0] + box[:, 2] > width) | (box[:, 1] + box[:, 3] > height)
        if outside.any():
            index = int(np.flatnonzero(outside)[0])
            problems.append(DataError(
                f"object {index + 1}: box {box[index].tolist()} reaches outside the {width} x {height} image",
                file=file, row=int(row),
            ))
    return problems


def load_csv(folder: Path, csv_name: str) -> pd.DataFrame:
    """The validated sample table of train.csv or dev.csv; raises DataError on any problem."""
    path = Path(folder) / csv_name
    file = str(path)
    rows, problems = _parse_rows(_read_rows(path), file)
    if problems:
        raise first_by_row(problems)
    if rows.empty:
        raise DataError("no data rows", file=file)
    table = _sample_table(rows, Path(folder), csv_name)
    missing = missing_images(table, file)
    if missing is not None:
        raise missing
    table, unreadable = with_image_sizes(table, raster_size)
    if unreadable:
        raise unreadable[0]
    outside = _outside_problems(table)
    if outside:
        raise first_by_row(outside)
    return table.reset_index(drop=True)


def load_splits(folder: Path) -> SplitTables:
    """The ``object_cxr_det`` splits: dev.csv as test; train.csv 80/20 by ``partition(ids, seed=0)``."""
    pool = load_csv(Path(folder), TRAIN_CSV)
    test = load_csv(Path(folder), DEV_CSV)
    parts = partition(pool["sample_id"].tolist(), SPLIT_FRACTIONS, SPLIT_SEED)
    train, val = (pool[pool["sample_id"].isin(set(parts[name]))].reset_index(drop=True) for name in parts)
    return SplitTables(train=train, val=val, test=test)


def _check_csv(folder: Path, csv_name: str) -> list[str]:
    """Problems of one CSV: its rows, its missing or unreadable images, boxes outside them, a decoding sample."""
    path = Path(folder) / csv_name
    file = str(path)
    try:
        frame = _read_rows(path)
    except DataError as error:
        return [str(error)]
    if frame.empty:
        return [f"{file}: no data rows"]
    rows, problems = _parse_rows(frame, file)
    lines = listed(sorted(problems, key=lambda problem: problem.row), file)
    table = _sample_table(rows, Path(folder), csv_name)
    missing = missing_images(table, file)
    if missing is not None:
        lines.append(str(missing))
    table, unreadable = with_image_sizes(table[[os.path.exists(path) for path in table["image_path"]]], raster_size)
    lines += listed(unreadable, file) + listed(_outside_problems(table), file)
    return lines + decode_problems(table["image_path"])


def check(folder: Path) -> list[str]:
    """Problems of the raw download in ``folder`` (empty list = valid); never raises for a broken download.

    Checks both CSVs row by row (names, annotations), that every listed image exists and its header is readable,
    that every box lies inside its image, and that the first DECODE_SAMPLE images of each CSV decode.
    """
    return [line for csv_name in IMAGE_FOLDERS for line in _check_csv(Path(folder), csv_name)]


@hookimpl
def medvlp_bench_datasets():
    return [
        DatasetSpec(
            name="object_cxr",
            title="Object-CXR (foreign objects on chest X-rays)",
            citation=CITATION,
            url=URL,
            folder=FOLDER,
            check=check,
            write_synthetic=synthetic_writer("object_cxr_synthetic", "write_object_cxr"),
        )
    ]


@hookimpl
def medvlp_bench_tasks():
    return [
        TaskSpec(
            name="object_cxr_det",
            dataset="object_cxr",
            protocol="detection",
            description="Object-CXR foreign-object detection, frozen encoder + YOLOv3 head, mAP@[0.4:0.75]",
            load_splits=load_splits,
            label_names=LABEL_NAMES,
            target="boxes",
            primary_metric="map",
            split_rule=SPLIT_RULE,
        )
    ]
