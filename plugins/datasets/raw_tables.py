"""Helpers the dataset plugins share for reading raw downloads: CSV rows with their line numbers, missing-image
reports, problem lists for ``check()``, image sanity checks, and lazily imported synthetic writers.

Row numbers are 1-based file lines with the header on line 1, as :class:`~medvlp_bench.api.DataError` expects.
"""

from __future__ import annotations

import csv
import importlib
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from medvlp_bench.api import DataError, read_image

#: problems of one kind that check() lists before summarising the rest
MAX_LISTED = 10
#: images per table that check() decodes completely
DECODE_SAMPLE = 5
#: missing images named in one error message
MISSING_SHOWN = 5


def read_csv_rows(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV as strings, plus ``source_row`` (1-based line number, header = 1); blank lines are skipped and
    header names stripped of surrounding blanks (``"ImageId, EncodedPixels"`` has columns ImageId, EncodedPixels).

    Raises :class:`DataError` (file, row) for a missing file, an undecodable file, a missing or duplicated column
    or a row whose field count differs from the header's.
    """
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                return _csv_frame(reader, str(path), required)
            except csv.Error as error:
                raise DataError(f"cannot parse CSV ({error})", file=str(path), row=reader.line_num) from None
    except UnicodeDecodeError as error:
        raise DataError(f"not a UTF-8 text file ({error})", file=str(path)) from None


def _csv_frame(reader, file: str, required: tuple[str, ...]) -> pd.DataFrame:
    """The rows of an open ``csv.reader`` as a string DataFrame with ``source_row`` (see :func:`read_csv_rows`)."""
    header = [name.strip() for name in next(reader, [])]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(f"duplicated column(s) {duplicated} in header", file=file, row=1)
    missing = [name for name in required if name not in header]
    if missing:
        raise DataError(f"missing column(s) {missing}; header is {header}", file=file, row=1)
    records, rows = [], []
    for record in reader:
        if not any(field.strip() for field in record):
            continue
        if len(record) != len(header):
            raise DataError(f"expected {len(header)} fields, found {len(record)}", file=file, row=reader.line_num)
        records.append(record)
        rows.append(reader.line_num)
    frame = pd.DataFrame(records, columns=header, dtype=str)
    frame["source_row"] = np.asarray(rows, dtype=np.int64)
    return frame


def missing_images(table: pd.DataFrame, file: str) -> DataError | None:
    """A DataError naming the first missing ``image_path`` files with their rows and the count, or ``None``."""
    absent = ~np.fromiter((os.path.exists(path) for path in table["image_path"]), dtype=bool, count=len(table))
    if not absent.any():
        return None
    missing = table.loc[absent, ["source_row", "image_path"]].sort_values("source_row")
    shown = "; ".join(f"row {row}: {path}" for row, path in missing.head(MISSING_SHOWN).itertuples(index=False))
    more = "; ..." if len(missing) > MISSING_SHOWN else ""
    return DataError(
        f"{len(missing)} of {len(table)} referenced image file(s) not found ({shown}{more})",
        file=file, row=int(missing["source_row"].iloc[0]),
    )


def listed(problems: list, file: str) -> list[str]:
    """The first MAX_LISTED problems as text, then one line counting the rest."""
    lines = [str(problem) for problem in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"{file}: ... and {len(problems) - MAX_LISTED} more problem(s) of this kind")
    return lines


def first_by_row(problems: list[DataError]) -> DataError:
    """The problem on the earliest row (file-level problems without a row first)."""
    return min(problems, key=lambda problem: problem.row or 0)


def decode_problems(paths: Iterable[str]) -> list[str]:
    """Decoding failures among the first DECODE_SAMPLE existing images of ``paths``."""
    present = [path for path in paths if os.path.exists(path)][:DECODE_SAMPLE]
    problems = []
    for path in present:
        try:
            read_image(path)
        except DataError as error:
            problems.append(str(error))
    return problems


def dicom_size(path: str) -> tuple[int, int]:
    """(Rows, Columns) of a DICOM, read from its header without decoding pixels; DataError naming the file if the
    header cannot be read."""
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Rows", "Columns"])
        return int(header.Rows), int(header.Columns)
    except Exception as error:  # pydicom raises many types for damaged files
        raise DataError(f"cannot read the DICOM header ({type(error).__name__}: {error})", file=str(path)) from None


def raster_size(path: str) -> tuple[int, int]:
    """(height, width) of a JPEG / PNG from its header (PIL opens lazily, pixels not decoded); DataError naming the
    file if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
        return height, width
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"cannot read the image header ({type(error).__name__}: {error})", file=str(path)) from None


def with_image_sizes(table: pd.DataFrame, size_of: Callable[[str], tuple[int, int]]) -> tuple[pd.DataFrame, list]:
    """The rows of ``table`` whose image size ``size_of(image_path) -> (height, width)`` can be read, with int
    columns ``height`` and ``width``, and the DataErrors of the others."""
    sizes, problems = [], []
    for path in table["image_path"]:
        try:
            sizes.append(size_of(path))
        except DataError as error:
            problems.append(error)
            sizes.append((0, 0))
    size = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    sized = table.assign(height=size[:, 0], width=size[:, 1])
    return sized[sized["height"] > 0], problems


def is_dicom(path: str) -> bool:
    """Whether ``path`` reads like a DICOM part-10 file (128-byte preamble, then ``DICM``)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def synthetic_writer(module: str, function: str) -> Callable[[Path, int, float], None]:
    """``DatasetSpec.write_synthetic`` for the writer ``function`` of ``medvlp_bench_plugins.datasets.<module>``,
    imported when called, so registering a dataset does not load its writer (and the phantom)."""

    def write(folder: Path, seed: int, scale: float) -> None:
        writer = getattr(importlib.import_module(f"medvlp_bench_plugins.datasets.{module}"), function)
        writer(folder, seed, scale)

    return write
