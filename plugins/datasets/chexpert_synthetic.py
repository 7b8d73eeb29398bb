"""Synthetic twin of CheXpert-v1.0-small in its raw layout.

Layout written into ``folder`` (any name; CSV paths keep the literal prefix ``CheXpert-v1.0-small/``, as the
real CSVs do)::

    train.csv, valid.csv   Path,Sex,Age,Frontal/Lateral,AP/PA, then the 14 observations (CheXpert order)
    train/patient00001/study1/view1_frontal.jpg, .../view2_lateral.jpg   256 x 256 JPEG, quality 90
    valid/patient{N}/study1/...   (valid patients are numbered after the train patients)
    .medvlp_synthetic.json   completion marker (written last)

Train: default 2,000 images; each patient has 1-3 studies (probabilities 0.6 / 0.3 / 0.1), each study one
frontal view (AP 35 %, PA 65 %) and, with probability 0.18, a lateral view too (about 15 % of images are
lateral). Valid: default 200 images drawn the same way from other patients. Findings follow the phantom's
default prevalences (Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion each 10-30 % positive).
Labels are the CheXpert labels of a template report of each study (1.0 / 0.0 / -1.0 / blank); valid.csv has
no uncertain labels (reports without hedges) and no blanks (blank -> 0.0), as the real valid.csv.
Both views of a study share its labels. Identical output for identical (seed, scale).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder
from medvlp_bench_plugins import synthetic

DEFAULT_TRAIN_IMAGES = 2000
DEFAULT_VALID_IMAGES = 200
IMAGE_SIZE = 256
PREFIX = "CheXpert-v1.0-small"
LATERAL_RATE = 0.18
STUDIES_PER_PATIENT = ((1, 2, 3), (0.6, 0.3, 0.1))
#: the phantom findings drawn and their per-study probabilities: the phantom's defaults
PREVALENCE = synthetic.DEFAULT_PREVALENCE
FINDINGS_DRAWN = tuple(name for name, rate in PREVALENCE.items() if rate > 0)
#: label columns: the observations each study's template report states (each finding module's templates say which)
LABELS = synthetic.OBSERVATIONS
HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS)
SEX_WORDS = {"M": "Male", "F": "Female"}


def _value(label: float, valid: bool) -> str:
    """A label as the CSVs spell it: "1.0", "0.0", "-1.0" or "" (blank; "0.0" in valid.csv)."""
    if math.isnan(label):
        return "0.0" if valid else ""
    return f"{label:.1f}"


def _write_split(folder: Path, split: str, images: int, first_patient: int, rng: np.random.Generator) -> int:
    """Write the images of one split and its CSV; returns the number of patients used."""
    valid = split == "valid"
    rows: list[list[str]] = []
    patient = first_patient
    with synthetic.progress(images, f"synthetic chexpert {split}") as bar:
        while len(rows) < images:
            patient += 1
            sex, age = ("M", "F")[int(rng.integers(2))], int(rng.integers(18, 91))
            for study_index in range(1, int(rng.choice(STUDIES_PER_PATIENT[0], p=STUDIES_PER_PATIENT[1])) + 1):
                views = [False] + ([True] if rng.random() < LATERAL_RATE else [])
                study = synthetic.sample_study(rng, PREVALENCE, sex=sex, age=age)
                report = synthetic.write_report(study.findings, rng, view=study.view,
                                                hedge_rate=0.0 if valid else 0.15, lateral=len(views) > 1)
                labels = [_value(report.labels[name], valid) for name in LABELS]
                for number, lateral in enumerate(views[: images - len(rows)], start=1):
                    name = f"view{number}_{'lateral' if lateral else 'frontal'}.jpg"
                    relative = f"{split}/patient{patient:05d}/study{study_index}/{name}"
                    image = synthetic.render_study(study, lateral=lateral, size=IMAGE_SIZE).image
                    synthetic.save_image(folder / relative, image)
                    rows.append([f"{PREFIX}/{relative}", SEX_WORDS[sex], str(age),
                                 "Lateral" if lateral else "Frontal", "" if lateral else study.view, *labels])
                    bar.update()
                if len(rows) >= images:
                    break
    with open(folder / f"{split}.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return patient - first_patient


def write_chexpert(folder: Path, seed: int, scale: float = 1.0) -> None:
    """Write the synthetic CheXpert-v1.0-small download into ``folder`` (see the module docstring)."""
    folder = begin_synthetic_folder(Path(folder))
    rng = np.random.default_rng([seed, 0x434858])
    train = synthetic.scaled(DEFAULT_TRAIN_IMAGES, scale)
    valid = synthetic.scaled(DEFAULT_VALID_IMAGES, scale)
    train_patients = _write_split(folder, "train", train, 0, rng)
    valid_patients = _write_split(folder, "valid", valid, train_patients, rng)
    finish_synthetic_folder(folder, seed, scale, {"train_images": train, "valid_images": valid,
                                           "train_patients": train_patients, "valid_patients": valid_patients})
