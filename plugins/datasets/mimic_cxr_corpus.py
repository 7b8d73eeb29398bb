"""The MIMIC-CXR pretraining corpus: frontal image-report pairs with the official split.

Rules (as the reference protocol, see ``mimic_cxr_reports`` for the text rules):

* images: rows of ``mimic-cxr-2.0.0-metadata.csv`` with ``ViewPosition`` PA or AP, joined with
  ``mimic-cxr-2.0.0-split.csv`` on ``dicom_id``; every frontal image of a study is a pair with the study's report;
* text: impression then findings of ``files/pXX/pSUBJECT/sSTUDY.txt``, sentences of >= 2 tokens, studies with
  >= 3 tokens in all (others are dropped and counted);
* split: the official ``split`` column, train -> ``train``, validate -> ``val``, test -> ``test``.

A metadata row whose JPEG or report is missing is a DataError naming the CSV and its row.
:func:`skipped_report_problems` lists, for ``data check``, the studies whose reports give no text.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from medvlp_bench.api import DataError, SplitTables
from medvlp_bench_plugins.datasets.mimic_cxr import (
    METADATA_CSV,
    REQUIRED_COLUMNS,
    SPLIT_CSV,
    csv_file,
    image_path,
    read_table,
    report_path,
)
from medvlp_bench_plugins.datasets.mimic_cxr_reports import report_text_for_training, skip_reason

FRONTAL_VIEWS = ("PA", "AP")
SPLIT_NAMES = {"train": "train", "validate": "val", "test": "test"}
#: missing files listed in one error before the rest are counted
MAX_LISTED = 5


def _frontal_rows(folder: Path) -> tuple[pd.DataFrame, str]:
    metadata_file = csv_file(folder, METADATA_CSV)
    split_file = csv_file(folder, SPLIT_CSV)
    metadata = read_table(metadata_file, REQUIRED_COLUMNS[METADATA_CSV])
    splits = read_table(split_file, REQUIRED_COLUMNS[SPLIT_CSV])[["dicom_id", "split"]]
    frontal = metadata[metadata["ViewPosition"].str.strip().isin(FRONTAL_VIEWS)]
    joined = frontal.merge(splits.drop_duplicates("dicom_id"), on="dicom_id", how="left")
    unsplit = joined[joined["split"].isna()]
    if len(unsplit):
        row = unsplit.iloc[0]
        raise DataError(f"dicom_id {row['dicom_id']} has no row in {SPLIT_CSV}", file=str(metadata_file),
                        row=int(row["source_row"]))
    return joined, str(metadata_file)


def _missing_files_error(rows: pd.DataFrame, paths: pd.Series, file: str, what: str) -> DataError:
    listed = "; ".join(f"row {row}: {path}" for row, path in zip(rows["source_row"][:MAX_LISTED], paths[:MAX_LISTED]))
    return DataError(f"{len(rows)} {what} missing ({listed})", file=file)


def load_corpus(folder: Path) -> SplitTables:
    """The image-report pairs of a MIMIC-CXR-JPG + reports folder (see module docstring)."""
    folder = Path(folder)
    rows, metadata_file = _frontal_rows(folder)
    images = pd.Series([str(image_path(folder, s, t, d)) for s, t, d in
                        zip(rows["subject_id"], rows["study_id"], rows["dicom_id"])], index=rows.index)
    absent = ~images.map(lambda p: Path(p).is_file())
    if absent.any():
        raise _missing_files_error(rows[absent], images[absent], metadata_file, "JPEG(s)")
    texts = {}
    for subject, study in rows[["subject_id", "study_id"]].drop_duplicates().itertuples(index=False):
        report = report_path(folder, subject, study)
        if not report.is_file():
            first = rows[(rows["subject_id"] == subject) & (rows["study_id"] == study)].iloc[0]
            raise DataError(f"report missing: {report}", file=metadata_file, row=int(first["source_row"]))
        texts[study] = report_text_for_training(report.read_text(errors="replace"))
    table = pd.DataFrame({
        "sample_id": rows["dicom_id"].to_numpy(),
        "patient_id": rows["subject_id"].to_numpy(),
        "image_path": images.to_numpy(),
        "source_file": metadata_file,
        "source_row": rows["source_row"].to_numpy(),
        "text": rows["study_id"].map(texts).to_numpy(),
        "split": rows["split"].str.strip().to_numpy(),
    })
    dropped = int(table["text"].isna().sum())
    if dropped:
        print(f"medvlp-bench: mimic_cxr: {dropped} frontal image(s) dropped (report text under 3 tokens)",
              file=sys.stderr)
    table = table.dropna(subset=["text"])
    parts = {name: table[table["split"] == raw].drop(columns="split").reset_index(drop=True)
             for raw, name in SPLIT_NAMES.items()}
    return SplitTables(parts["train"], parts["val"], parts["test"])


def skipped_reports(folder: Path, metadata: pd.DataFrame) -> list[tuple[str, Path, str]]:
    """``(study_id, report path, reason)`` of every study with a frontal image in ``metadata`` (rows as
    ``read_table`` gives them) whose report exists but gives no training text (``skip_reason``), in file order."""
    frontal = metadata[metadata["ViewPosition"].str.strip().isin(FRONTAL_VIEWS)]
    skipped = []
    for subject, study in frontal[["subject_id", "study_id"]].drop_duplicates().itertuples(index=False):
        report = report_path(folder, subject, study)
        if report.is_file():
            reason = skip_reason(report.read_text(errors="replace"))
            if reason is not None:
                skipped.append((study, report, reason))
    return skipped


def skipped_report_problems(folder: Path, metadata: pd.DataFrame) -> list[str]:
    """One line for ``data check`` naming the count of studies the corpus will skip, by reason, and the first
    :data:`MAX_LISTED` of them; no line when none is skipped."""
    skipped = skipped_reports(folder, metadata)
    if not skipped:
        return []
    reasons = Counter(reason for _, _, reason in skipped)
    listed = "; ".join(f"s{study} ({path}: {reason})" for study, path, reason in skipped[:MAX_LISTED])
    more = f"; ... and {len(skipped) - MAX_LISTED} more" if len(skipped) > MAX_LISTED else ""
    counts = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
    return [f"{Path(folder) / 'files'}: {len(skipped)} stud{'y' if len(skipped) == 1 else 'ies'} with a frontal "
            f"image will be skipped by the pretraining corpus, their reports giving no text ({counts}): "
            f"{listed}{more}"]
