"""Synthetic twin of MIMIC-CXR-JPG 2.0.0 plus the MIMIC-CXR reports, in their raw layout.

Layout written into ``folder``::

    mimic-cxr-2.0.0-metadata.csv   dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,
                                   Rows,Columns,StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,
                                   ViewCodeSequence_CodeMeaning,PatientOrientationCodeSequence_CodeMeaning
    mimic-cxr-2.0.0-split.csv      dicom_id,study_id,subject_id,split   (train / validate / test)
    mimic-cxr-2.0.0-chexpert.csv   subject_id,study_id, then the 14 observations in the real file's
                                   (alphabetical) column order; 1.0 / 0.0 / -1.0 / blank
    files/p{subject_id[:2]}/p{subject_id}/s{study_id}/{dicom_id}.jpg    256 x 256 JPEG, quality 90
    files/p{subject_id[:2]}/p{subject_id}/s{study_id}.txt               the report (FINAL REPORT, EXAMINATION:,
                                                                        INDICATION:, COMPARISON:, FINDINGS:,
                                                                        IMPRESSION:)
    .medvlp_synthetic.json                                              completion marker (written last)

Defaults: 2,000 studies (times ``scale``) of subjects with 1-4 studies each (probabilities 0.5 / 0.25 / 0.15 /
0.1). Each study has one frontal image (ViewPosition PA 65 %, AP 35 %) and, with probability 0.3, a lateral
one (LATERAL, or LL one time in five): about 1.3 images per study. Findings follow the phantom's default
prevalences; the labels are those the study's report states. subject_id: 8 digits starting 10-19;
study_id: 8 digits starting 5; dicom_id: 5 groups of 8 hex digits; StudyDate (YYYYMMDD) in the shifted years
2100-2200 as in the real data, later for each later study of a subject. Split by subject: test and validate each
take whole subjects until they hold at least max(3, 2 %) of the studies; the rest is train.
Identical output for identical (seed, scale).
"""

from __future__ import annotations

import csv
import datetime
import math
from pathlib import Path

import numpy as np

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder
from medvlp_bench_plugins import synthetic

DEFAULT_STUDIES = 2000
IMAGE_SIZE = 256
STUDIES_PER_SUBJECT = ((1, 2, 3, 4), (0.5, 0.25, 0.15, 0.1))
LATERAL_RATE = 0.3
HELD_OUT_FRACTION = 0.02
MIN_HELD_OUT_STUDIES = 3
METADATA_HEADER = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_HEADER = ("dicom_id", "study_id", "subject_id", "split")
#: the phantom findings drawn and their per-study probabilities: the phantom's defaults
PREVALENCE = synthetic.DEFAULT_PREVALENCE
FINDINGS_DRAWN = tuple(name for name, rate in PREVALENCE.items() if rate > 0)
#: label columns: the observations each study's report states, alphabetically as in the real
#: mimic-cxr-2.0.0-chexpert.csv
CHEXPERT_COLUMNS = tuple(sorted(synthetic.OBSERVATIONS))
VIEW_MEANINGS = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral", "LL": "left lateral"}


def _ids(rng: np.random.Generator, count: int, low: int, high: int) -> list[int]:
    """``count`` distinct integers in [low, high), in drawing order."""
    return [int(value) for value in rng.choice(high - low, size=count, replace=False) + low]


def _procedure(view: str, lateral: bool) -> str:
    if view == "AP":
        return "CHEST (PORTABLE AP)"
    return "CHEST (PA AND LAT)" if lateral else "CHEST (PA)"


def _splits(rng: np.random.Generator, studies_of: dict[int, int], total: int) -> dict[int, str]:
    """Subject -> split: whole subjects go to test, then validate, until each holds enough studies."""
    needed = max(MIN_HELD_OUT_STUDIES, math.ceil(HELD_OUT_FRACTION * total))
    subjects = list(studies_of)
    order = rng.permutation(len(subjects))
    split_of, held = {}, {"test": 0, "validate": 0}
    for index in order:
        subject = subjects[index]
        target = next((name for name in ("test", "validate") if held[name] < needed), "train")
        split_of[subject] = target
        if target != "train":
            held[target] += studies_of[subject]
    return split_of


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[object]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_mimic_cxr(folder: Path, seed: int, scale: float = 1.0) -> None:
    """Write the synthetic MIMIC-CXR-JPG download and reports into ``folder`` (see the module docstring)."""
    folder = begin_synthetic_folder(Path(folder))
    rng = np.random.default_rng([seed, 0x4D494D])
    total = synthetic.scaled(DEFAULT_STUDIES, scale)
    counts: list[int] = []
    while sum(counts) < total:
        counts.append(min(int(rng.choice(STUDIES_PER_SUBJECT[0], p=STUDIES_PER_SUBJECT[1])), total - sum(counts)))
    subjects = _ids(rng, len(counts), 10_000_000, 20_000_000)
    study_ids = iter(_ids(rng, total, 50_000_000, 60_000_000))
    split_of = _splits(rng, dict(zip(subjects, counts)), total)
    metadata, split_rows, label_rows = [], [], []
    with synthetic.progress(total, "synthetic mimic-cxr studies") as bar:
        for subject, count in zip(subjects, counts):
            sex = ("M", "F")[int(rng.integers(2))]
            age = int(rng.integers(18, 91))
            date = datetime.date(2100, 1, 1) + datetime.timedelta(days=int(rng.integers(0, 100 * 365)))
            for _ in range(count):
                study_id = next(study_ids)
                study = synthetic.sample_study(rng, PREVALENCE, sex=sex, age=age)
                lateral = bool(rng.random() < LATERAL_RATE)
                report = synthetic.write_report(study.findings, rng, view=study.view, lateral=lateral, sex=sex)
                subject_dir = folder / "files" / f"p{str(subject)[:2]}" / f"p{subject}"
                subject_dir.mkdir(parents=True, exist_ok=True)
                (subject_dir / f"s{study_id}.txt").write_text(report.text)
                views = [study.view] + (["LL" if rng.random() < 0.2 else "LATERAL"] if lateral else [])
                clock = int(rng.integers(0, 86_400_000))
                hours, minutes, seconds = clock // 3_600_000, clock // 60_000 % 60, clock // 1000 % 60
                study_time = f"{hours:02d}{minutes:02d}{seconds:02d}.{clock % 1000:03d}"
                for view in views:
                    dicom_id = synthetic.hex_groups(rng)
                    image = synthetic.render_study(study, lateral=view in ("LATERAL", "LL"), size=IMAGE_SIZE).image
                    synthetic.save_image(subject_dir / f"s{study_id}" / f"{dicom_id}.jpg", image)
                    procedure = _procedure(study.view, lateral)
                    orientation = "Recumbent" if study.view == "AP" and rng.random() < 0.3 else "Erect"
                    metadata.append([dicom_id, subject, study_id, procedure, view, IMAGE_SIZE, IMAGE_SIZE,
                                     date.strftime("%Y%m%d"), study_time, procedure, VIEW_MEANINGS[view], orientation])
                    split_rows.append([dicom_id, study_id, subject, split_of[subject]])
                labels = [report.labels[name] for name in CHEXPERT_COLUMNS]
                label_rows.append([subject, study_id, *("" if math.isnan(v) else f"{v:.1f}" for v in labels)])
                date += datetime.timedelta(days=int(rng.integers(1, 400)))
                bar.update()
    _write_csv(folder / "mimic-cxr-2.0.0-metadata.csv", METADATA_HEADER, metadata)
    _write_csv(folder / "mimic-cxr-2.0.0-split.csv", SPLIT_HEADER, split_rows)
    _write_csv(folder / "mimic-cxr-2.0.0-chexpert.csv", ("subject_id", "study_id", *CHEXPERT_COLUMNS), label_rows)
    finish_synthetic_folder(folder, seed, scale, {"subjects": len(subjects), "studies": total, "images": len(metadata)})
