"""MIMIC-CXR-JPG 2.0.0 with the MIMIC-CXR free-text reports: dataset ``mimic_cxr`` (the pretraining corpus).

Citations: A. E. W. Johnson, T. J. Pollard, N. R. Greenbaum, M. P. Lungren, C. Deng, Y. Peng, et al. MIMIC-CXR-JPG,
a large publicly available database of labeled chest radiographs. arXiv:1901.07042, 2019. A. E. W. Johnson,
T. J. Pollard, S. J. Berkowitz, et al. MIMIC-CXR, a de-identified publicly available database of chest radiographs
with free-text reports. Scientific Data 6: 317, 2019.

Download: https://physionet.org/content/mimic-cxr-jpg/2.0.0/ (credentialed PhysioNet access) into
``<data root>/mimic-cxr-jpg``; the reports come from ``mimic-cxr-reports.zip`` of
https://physionet.org/content/mimic-cxr/2.0.0/, unzipped into the same folder (it holds ``files/...``).

Raw layout (each CSV may also be gzipped, ``.csv.gz``)::

    mimic-cxr-jpg/
        mimic-cxr-2.0.0-metadata.csv   dicom_id,subject_id,study_id,...,ViewPosition,...
        mimic-cxr-2.0.0-split.csv      dicom_id,study_id,subject_id,split   (train / validate / test)
        mimic-cxr-2.0.0-chexpert.csv   subject_id,study_id, 14 observations (1.0 / 0.0 / -1.0 / blank)
        files/p{subject_id[:2]}/p{subject_id}/s{study_id}/{dicom_id}.jpg
        files/p{subject_id[:2]}/p{subject_id}/s{study_id}.txt          (report: FINDINGS:, IMPRESSION:, ...)

No downstream task reads it; it is the pretraining corpus (``mimic_cxr_corpus``: frontal views, report text
rules, the official ``split`` column). Corpus table columns: ``sample_id`` (dicom_id), ``patient_id``
(subject_id: a patient's studies and images share it), ``image_path``, ``source_file``, ``source_row``, ``text``. :func:`check` validates the three CSVs (presence, header, ids, split
values) and, for SAMPLE_ROWS metadata rows spread evenly over the file, that the JPEG and the study's report
exist; the first DECODE_SAMPLE of those JPEGs are decoded.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medvlp_bench.api import DataError, DatasetSpec, hookimpl, read_image
from medvlp_bench_plugins.datasets.raw_tables import synthetic_writer

CITATION = (
    "Johnson AEW, Pollard TJ, Greenbaum NR, et al. MIMIC-CXR-JPG, a large publicly available database of labeled "
    "chest radiographs. arXiv:1901.07042, 2019. Johnson AEW, Pollard TJ, Berkowitz SJ, et al. MIMIC-CXR, a "
    "de-identified publicly available database of chest radiographs with free-text reports. Sci Data 6:317, 2019."
)
URL = "https://physionet.org/content/mimic-cxr-jpg/2.0.0/"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv"
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv"
CHEXPERT_CSV = "mimic-cxr-2.0.0-chexpert.csv"
#: each CSV's required columns
REQUIRED_COLUMNS = {
    METADATA_CSV: ("dicom_id", "subject_id", "study_id", "ViewPosition"),
    SPLIT_CSV: ("dicom_id", "study_id", "subject_id", "split"),
    CHEXPERT_CSV: ("subject_id", "study_id"),
}
SPLIT_VALUES = ("train", "validate", "test")
#: metadata rows whose JPEG and report check() looks for
SAMPLE_ROWS = 20
#: sampled JPEGs that check() decodes
DECODE_SAMPLE = 3
#: problems of one kind that check() lists before summarising the rest
MAX_LISTED = 10


def image_path(folder: Path, subject_id: str, study_id: str, dicom_id: str) -> Path:
    """``files/p{subject_id[:2]}/p{subject_id}/s{study_id}/{dicom_id}.jpg`` under ``folder``."""
    return Path(folder) / "files" / f"p{subject_id[:2]}" / f"p{subject_id}" / f"s{study_id}" / f"{dicom_id}.jpg"


def report_path(folder: Path, subject_id: str, study_id: str) -> Path:
    """``files/p{subject_id[:2]}/p{subject_id}/s{study_id}.txt`` under ``folder``."""
    return Path(folder) / "files" / f"p{subject_id[:2]}" / f"p{subject_id}" / f"s{study_id}.txt"


def csv_file(folder: Path, name: str) -> Path:
    """The path of CSV ``name`` in ``folder``, plain or gzipped (``name.gz``); raises DataError if neither exists."""
    for candidate in (Path(folder) / name, Path(folder) / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"file not found (nor {name}.gz)", file=str(Path(folder) / name))


def read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a (possibly gzipped) CSV as strings, plus ``source_row`` (1-based line, header = 1).

    Blank lines are dropped after numbering. Raises DataError (file, row) if the file cannot be parsed or lacks a
    required column.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as error:
        line = re.search(r"line (\d+)", str(error))
        row = int(line.group(1)) if line else None
        raise DataError(f"cannot parse CSV ({error})", file=str(path), row=row) from None
    frame.columns = [str(name).strip() for name in frame.columns]
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; header is {list(frame.columns)}", file=str(path), row=1)
    frame["source_row"] = np.arange(2, len(frame) + 2, dtype=np.int64)
    blank = (frame.drop(columns="source_row") == "").all(axis=1)
    return frame[~blank].reset_index(drop=True)


def _id_problems(frame: pd.DataFrame, columns: tuple[str, ...], file: str) -> list[DataError]:
    """Rows whose numeric id columns (subject_id, study_id) are not all digits."""
    problems = []
    for column in columns:
        bad = ~frame[column].str.fullmatch(r"\d+")
        for row, value in frame.loc[bad, ["source_row", column]].itertuples(index=False):
            problems.append(DataError(f"{column} must be a number, got {value!r}", file=file, row=int(row)))
    return problems


def _split_problems(frame: pd.DataFrame, file: str) -> list[DataError]:
    """Rows whose split is not train / validate / test."""
    bad = ~frame["split"].isin(SPLIT_VALUES)
    return [
        DataError(f"split must be one of {SPLIT_VALUES}, got {value!r}", file=file, row=int(row))
        for row, value in frame.loc[bad, ["source_row", "split"]].itertuples(index=False)
    ]


def _listed(problems: list, file: str) -> list[str]:
    """The first MAX_LISTED problems as text, then one line counting the rest."""
    lines = [str(problem) for problem in sorted(problems, key=lambda problem: problem.row)[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"{file}: ... and {len(problems) - MAX_LISTED} more problem(s) of this kind")
    return lines


def _evenly_spaced(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Up to ``count`` rows of ``frame`` spread evenly from the first to the last."""
    positions = np.unique(np.linspace(0, len(frame) - 1, num=min(count, len(frame))).round().astype(int))
    return frame.iloc[positions]


def _file_problems(folder: Path, metadata: pd.DataFrame, file: str) -> list[str]:
    """Problems with the files of SAMPLE_ROWS metadata rows.

    Missing JPEGs, missing reports (once per study), then undecodable JPEGs among the first DECODE_SAMPLE present.
    """
    problems, present, reports = [], [], set()
    sample = _evenly_spaced(metadata, SAMPLE_ROWS)[["source_row", "subject_id", "study_id", "dicom_id"]]
    for row, subject, study, dicom in sample.itertuples(index=False):
        jpeg, report = image_path(folder, subject, study, dicom), report_path(folder, subject, study)
        if jpeg.is_file():
            present.append(jpeg)
        else:
            problems.append(f"{file}, row {row}: image file not found: {jpeg}")
        if report not in reports and not report.is_file():
            problems.append(f"{file}, row {row}: report file not found: {report}")
        reports.add(report)
    for jpeg in present[:DECODE_SAMPLE]:
        try:
            read_image(jpeg)
        except DataError as error:
            problems.append(str(error))
    return problems


def _check_csv(folder: Path, name: str) -> tuple[list[str], pd.DataFrame | None]:
    """Problems of one CSV (presence, header, ids, split values) and its valid rows (``None`` if unreadable)."""
    try:
        path = csv_file(folder, name)
        frame = read_table(path, REQUIRED_COLUMNS[name])
    except DataError as error:
        return [str(error)], None
    problems = _id_problems(frame, ("subject_id", "study_id"), str(path))
    if name == SPLIT_CSV:
        problems += _split_problems(frame, str(path))
    bad_rows = {problem.row for problem in problems}
    return _listed(problems, str(path)), frame[~frame["source_row"].isin(bad_rows)]


def check(folder: Path) -> list[str]:
    """Problems of the raw download in ``folder`` (empty list = valid); never raises for a broken download."""
    folder = Path(folder)
    problems: list[str] = []
    for name in (SPLIT_CSV, CHEXPERT_CSV):
        problems += _check_csv(folder, name)[0]
    metadata_problems, metadata = _check_csv(folder, METADATA_CSV)
    problems += metadata_problems
    if metadata is not None:
        problems += _file_problems(folder, metadata, str(csv_file(folder, METADATA_CSV)))
        problems += _skipped_reports(folder, metadata)
    return problems


def _skipped_reports(folder: Path, metadata: pd.DataFrame) -> list[str]:
    """The studies whose reports the corpus will skip (module ``mimic_cxr_corpus``)."""
    from medvlp_bench_plugins.datasets.mimic_cxr_corpus import skipped_report_problems

    return skipped_report_problems(folder, metadata)


def _load_corpus(folder: Path):
    """The image-report pairs (module ``mimic_cxr_corpus``)."""
    from medvlp_bench_plugins.datasets.mimic_cxr_corpus import load_corpus

    return load_corpus(folder)


@hookimpl
def medvlp_bench_datasets():
    return [
        DatasetSpec(
            name="mimic_cxr",
            title="MIMIC-CXR-JPG 2.0.0 with MIMIC-CXR reports",
            citation=CITATION,
            url=URL,
            folder="mimic-cxr-jpg",
            check=check,
            write_synthetic=synthetic_writer("mimic_cxr_synthetic", "write_mimic_cxr"),
            load_corpus=_load_corpus,
        )
    ]
