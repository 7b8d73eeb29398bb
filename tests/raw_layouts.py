"""Tiny hand-made raw downloads (RSNA, CheXpert, COVIDx, MIMIC-CXR) in their real layouts, for the dataset tests.

Each writer returns what it wrote (labels, rows) so tests can compare loaders against it value by value.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from medvlp_bench.api import write_dicom

CHEXPERT_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
CHEXPERT_OTHER = (
    "No Finding", "Enlarged Cardiomediastinum", "Lung Opacity", "Lung Lesion", "Pneumonia", "Pneumothorax",
    "Pleural Other", "Fracture", "Support Devices",
)
CHEXPERT_HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS, *CHEXPERT_OTHER)
#: raw observation values cycled over rows and labels so every label sees every value
CHEXPERT_VALUES = ("1.0", "0.0", "-1.0", "")


def image(seed: int, size: int = 64) -> np.ndarray:
    """A (size, size) uint8 test image: a horizontal gradient plus seeded noise."""
    noise = np.random.default_rng(seed).integers(0, 40, size=(size, size))
    gradient = np.linspace(0, 200, size)[None, :]
    return np.clip(gradient + noise, 0, 255).astype(np.uint8)


def write_raster(path: Path, seed: int, size: int = 32) -> None:
    """Write a small JPEG / PNG test image (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image(seed, size)).save(path)


def write_csv(path: Path, header, rows) -> None:
    """Write ``rows`` under ``header`` as a CSV (creates the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def rsna_patient(index: int) -> str:
    return f"{index:02d}a1b2c3-rsna-patient"


def write_rsna(folder: Path, patients: int = 20) -> dict:
    """RSNA stage-2 layout with ``patients`` 64x64 DICOMs; patient 1 is stored MONOCHROME1.

    Patients with index % 3 == 0 are positive; those with index % 6 == 0 have two boxes (two CSV rows).
    Returns ``labels`` (patientId -> 0/1), ``boxes`` (patientId -> list of [x, y, w, h]), ``rows`` (the CSV rows).
    """
    labels, boxes, rows = {}, {}, []
    for index in range(patients):
        patient = rsna_patient(index)
        labels[patient] = int(index % 3 == 0)
        count = (2 if index % 6 == 0 else 1) if labels[patient] else 0
        boxes[patient] = [[float(4 + index), float(8 + k), 20.0 + k, 30.0] for k in range(count)]
        rows += [[patient, *box, 1] for box in boxes[patient]] or [[patient, "", "", "", "", 0]]
        write_dicom(
            folder / "stage_2_train_images" / f"{patient}.dcm", image(index), patient_id=patient,
            sop_instance_uid=f"1.2.826.0.1.3680043.8.498.{index + 1}", monochrome1=index == 1,
        )
    write_csv(folder / "stage_2_train_labels.csv", ("patientId", "x", "y", "width", "height", "Target"), rows)
    return {"labels": labels, "boxes": boxes, "rows": rows}


def chexpert_row(split: str, index: int, lateral: bool, prefix: str) -> list[str]:
    """One CheXpert CSV row; observation j of row i is CHEXPERT_VALUES[(i + j) % 4]."""
    view = "lateral" if lateral else "frontal"
    path = f"{prefix}/{split}/patient{index:05d}/study1/view1_{view}.jpg"
    values = [CHEXPERT_VALUES[(index + offset) % len(CHEXPERT_VALUES)] for offset in range(len(CHEXPERT_LABELS))]
    return [path, "Female", "60", "Lateral" if lateral else "Frontal", "" if lateral else "AP", *values,
            *[""] * len(CHEXPERT_OTHER)]


def write_chexpert(folder: Path, train_rows: int = 30, valid_rows: int = 8) -> dict:
    """CheXpert layout: every 4th row lateral; train Paths alternate the small / full-size folder prefixes.

    Returns ``train`` and ``valid``: the CSV rows written (without header).
    """
    written = {}
    for split, count in (("train", train_rows), ("valid", valid_rows)):
        rows = []
        for index in range(count):
            prefix = "CheXpert-v1.0" if split == "train" and index % 2 else "CheXpert-v1.0-small"
            row = chexpert_row(split, index + (1000 if split == "valid" else 0), index % 4 == 3, prefix)
            rows.append(row)
            write_raster(folder / row[0].split("/", 1)[1], seed=index)
        write_csv(folder / f"{split}.csv", CHEXPERT_HEADER, rows)
        written[split] = rows
    return written


COVIDX_CLASSES = ("normal", "pneumonia", "COVID-19")


def write_covidx(folder: Path, train_lines: int = 30, test_lines: int = 6) -> dict:
    """COVIDx v9A layout: class = index % 3; odd lines end in trailing blanks and CRLF; a blank line in the middle.

    Returns ``train`` and ``test``: lists of (patient_id, filename, class, source) in file order.
    """
    written = {}
    for split, count in (("train", train_lines), ("test", test_lines)):
        entries, text = [], ""
        for index in range(count):
            suffix = "png" if index % 2 else "jpg"
            entry = (f"{split}-pt{index // 2}", f"{split}_{index:03d}.{suffix}", COVIDX_CLASSES[index % 3], "cohen")
            entries.append(entry)
            text += " ".join(entry) + ("  \r\n" if index % 2 else "\n")
            if index == count // 2:
                text += "\n"
            write_raster(folder / split / entry[1], seed=index)
        (folder / f"{split}_COVIDx9A.txt").write_bytes(text.encode())
        written[split] = entries
    return written


def mimic_study(subject: str, study: str, dicoms: list[str], folder: Path) -> None:
    """Write the JPEGs and the report of one MIMIC-CXR study."""
    study_folder = folder / "files" / f"p{subject[:2]}" / f"p{subject}"
    for index, dicom in enumerate(dicoms):
        write_raster(study_folder / f"s{study}" / f"{dicom}.jpg", seed=index)
    (study_folder / f"s{study}.txt").write_text("FINDINGS: No focal consolidation.\nIMPRESSION: No acute process.\n")


def write_mimic_cxr(folder: Path) -> dict:
    """MIMIC-CXR-JPG layout: 3 subjects x 2 studies x 2 images, the three CSVs and the reports.

    Returns ``metadata``: the metadata rows (dicom_id, subject_id, study_id, ViewPosition).
    """
    metadata, split_rows, chexpert_rows = [], [], []
    for subject_index in range(3):
        subject = f"1{subject_index}00003{subject_index}"
        for study_index in range(2):
            study = f"5{subject_index}{study_index}14267"
            dicoms = [f"d{subject_index}{study_index}{k}-abc" for k in range(2)]
            mimic_study(subject, study, dicoms, folder)
            metadata += [[dicom, subject, study, "PA"] for dicom in dicoms]
            split_rows += [[dicom, study, subject, ("train", "validate", "test")[subject_index]] for dicom in dicoms]
            chexpert_rows.append([subject, study, "1.0", ""])
    prefix = folder / "mimic-cxr-2.0.0"
    write_csv(Path(f"{prefix}-metadata.csv"), ("dicom_id", "subject_id", "study_id", "ViewPosition"), metadata)
    write_csv(Path(f"{prefix}-split.csv"), ("dicom_id", "study_id", "subject_id", "split"), split_rows)
    write_csv(Path(f"{prefix}-chexpert.csv"), ("subject_id", "study_id", "Atelectasis", "Edema"), chexpert_rows)
    return {"metadata": metadata}
