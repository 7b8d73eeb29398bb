"""Synthetic twin of the RSNA Pneumonia Detection Challenge (stage 2) in its raw layout.

Layout written into ``folder``::

    stage_2_train_labels.csv          patientId,x,y,width,height,Target   (one row per box; negatives one row
                                      with empty box fields and Target 0)
    stage_2_detailed_class_info.csv   patientId,class   (one row per labels row: "Lung Opacity", "Normal",
                                      "No Lung Opacity / Not Normal")
    stage_2_train_images/{patientId}.dcm   256 x 256 8-bit DICOMs, about 10 % stored MONOCHROME1
    .medvlp_synthetic.json            completion marker (written last)

Patients (default 1,500, times ``scale``) fall in the real classes with probabilities 0.3 / 0.4 / 0.3:
"Lung Opacity" (phantom ``lung_opacity``, 1-3 boxes, plus each non-opacity finding with probability 0.1),
"No Lung Opacity / Not Normal" (1-2 of effusion, pneumothorax, cardiomegaly, atelectasis, nodule, foreign objects)
and "Normal" (no finding). Boxes are the phantom's recorded opacity boxes in pixels of the written image.
patientIds are UUID strings drawn from the seed; the output is identical for identical (seed, scale).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder, write_dicom
from medvlp_bench_plugins import synthetic

DEFAULT_PATIENTS = 1500
IMAGE_SIZE = 256
CLASSES = ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")
CLASS_PROBABILITIES = (0.3, 0.4, 0.3)
#: the finding whose recorded boxes become the "Lung Opacity" rows (Target 1, x, y, width, height)
BOX_FINDING = "lung_opacity"
#: findings that make a patient "No Lung Opacity / Not Normal"
OTHER_FINDINGS = ("effusion", "pneumothorax", "cardiomegaly", "atelectasis", "nodule", "foreign_object")
FINDINGS_DRAWN = (BOX_FINDING, *OTHER_FINDINGS)
MONOCHROME1_RATE = 0.1


def _findings(rng: np.random.Generator, category: str) -> list[str]:
    """Phantom findings of a patient of RSNA class ``category``."""
    if category == "Lung Opacity":
        return [BOX_FINDING] + [name for name in OTHER_FINDINGS if rng.random() < 0.1]
    if category == "Normal":
        return []
    count = int(rng.integers(1, 3))
    return [str(name) for name in rng.choice(OTHER_FINDINGS, size=count, replace=False)]


def _render(rng: np.random.Generator, category: str):
    """A frontal case of class ``category``; lung-opacity cases are redrawn until an opacity box is visible."""
    while True:
        case = synthetic.render_study(synthetic.sample_study(rng, findings=_findings(rng, category)), size=IMAGE_SIZE)
        if category != "Lung Opacity" or case.records.get(BOX_FINDING):
            return case


def write_rsna(folder: Path, seed: int, scale: float = 1.0) -> None:
    """Write the synthetic RSNA stage-2 download into ``folder`` (see the module docstring)."""
    folder = begin_synthetic_folder(Path(folder))
    rng = np.random.default_rng([seed, 0x525341])
    count = synthetic.scaled(DEFAULT_PATIENTS, scale)
    label_rows: list[list[object]] = []
    class_rows: list[list[str]] = []
    positives = 0
    with synthetic.progress(count, "synthetic rsna") as bar:
        for _ in range(count):
            patient = synthetic.uuid_like(rng)
            category = str(rng.choice(CLASSES, p=CLASS_PROBABILITIES))
            case = _render(rng, category)
            write_dicom(folder / "stage_2_train_images" / f"{patient}.dcm", case.image, patient_id=patient,
                        sop_instance_uid=synthetic.dicom_uid(rng), view_position=case.view, sex=case.sex,
                        age=case.age, monochrome1=bool(rng.random() < MONOCHROME1_RATE))
            if category == "Lung Opacity":
                positives += 1
                rows = [[patient, x, y, w, h, 1] for x, y, w, h in case.records[BOX_FINDING]]
            else:
                rows = [[patient, "", "", "", "", 0]]
            label_rows += rows
            class_rows += [[patient, category]] * len(rows)
            bar.update()
    _write_csv(folder / "stage_2_train_labels.csv", ("patientId", "x", "y", "width", "height", "Target"), label_rows)
    _write_csv(folder / "stage_2_detailed_class_info.csv", ("patientId", "class"), class_rows)
    finish_synthetic_folder(folder, seed, scale, {"patients": count, "positive": positives, "rows": len(label_rows)})


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[object]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
