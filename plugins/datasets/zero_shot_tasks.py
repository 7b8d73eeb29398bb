"""Zero-shot classification and image-text retrieval tasks (no training: only a test selection is evaluated).

Every task reads its dataset with that dataset's own loaders and evaluates one test selection; its train and val
tables are empty. The prompts are JSON files of this package (``prompts/``), written for this project in the
wording of radiology reports (and of the synthetic reports, so that they mean something on the synthetic
default); ``--option prompts=FILE`` replaces them, and the record keeps the file's sha256 and the sha256 of the
evaluated selection (``details.selection_sha256``).

* ``chexpert5x200_zs`` / ``chexpert5x200_ret``: CheXpert "5x200" (:func:`chexpert_five_by_two_hundred`).
  Candidates for label k: frontal ``train.csv`` images whose raw observation of k is 1.0 (positive) and of each
  of the other four labels 0.0 or blank (an uncertain -1.0 on another label excludes the image), so exactly one of
  the five is positive. Chosen: the first 200 of ``partition(sorted candidate Paths, seed=42)`` (a seeded
  permutation of the sorted ids); when a label has fewer candidates, all of them (the counts are printed and
  recorded). Five-way zero-shot (accuracy) and class-level retrieval against the class prompts
  (image-to-text Precision@5). The images come from the training file, which is correct here: nothing is trained
  on CheXpert.
* ``rsna_zs``: RSNA Pneumonia, the ``rsna_cls`` test split (patients 60/20/20, seed 0), pneumonia or not (AUROC).
* ``covidx_zs``: COVIDx, the official test list, normal / pneumonia / COVID-19 (accuracy).
* ``siim_zs``: SIIM-ACR, the ``siim_seg`` test split (ImageIds 70/15/15, seed 0), pneumothorax (any encoded
  pixel) or not (AUROC).
* ``mimic_cxr_ret``: MIMIC-CXR, the official ``test`` split of the pretraining corpus (frontal PA/AP images, the
  corpus's text: impression then findings sentences, studies under 3 tokens dropped), image-to-report and
  report-to-image retrieval (image-to-text Recall@10).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from medvlp_bench.api import SAMPLE_COLUMNS, DataError, SplitTables, TaskSpec, hookimpl, partition

PROMPTS_PACKAGE = "medvlp_bench_plugins.datasets"
FIVE_BY_200_PER_LABEL = 200
FIVE_BY_200_SEED = 42
FIVE_BY_200_RULE = (
    "test = per label of Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion: frontal train.csv "
    "rows positive (1.0) for it and 0.0/blank for the other four, the first 200 of medvlp_bench "
    "partition(sorted Paths, seed=42) (all when fewer); no train, no val"
)


def prompts_option(file_name: str) -> str:
    """The ``prompts`` option value naming one of this package's prompt files."""
    return f"{PROMPTS_PACKAGE}:prompts/{file_name}"


def test_only(test: pd.DataFrame) -> SplitTables:
    """Splits with ``test`` and empty train / val tables of the same columns."""
    test = test.reset_index(drop=True)
    return SplitTables(train=test.iloc[:0].copy(), val=test.iloc[:0].copy(), test=test)


def chexpert_patient(sample_id: str) -> str:
    """The ``patientNNNNN`` component of a CheXpert Path (the Path itself when it has none)."""
    return next((part for part in sample_id.split("/") if part.startswith("patient")), sample_id)


def chexpert_five_by_two_hundred(folder: Path, per_label: int = FIVE_BY_200_PER_LABEL,
                                 seed: int = FIVE_BY_200_SEED) -> SplitTables:
    """The CheXpert 5x200 selection (module docstring) as a test table: SAMPLE_COLUMNS, ``patient_id``, ``label``
    (index into the five labels) and the five one-hot target columns; ordered by label, then sample_id."""
    from medvlp_bench_plugins.datasets.chexpert import LABEL_NAMES, TRAIN_CSV, load_frontal

    pool = load_frontal(Path(folder), TRAIN_CSV)
    raw = pool[list(LABEL_NAMES)]
    negative = raw.isna() | (raw == 0.0)
    parts, short = [], []
    for index, name in enumerate(LABEL_NAMES):
        others = [other for other in LABEL_NAMES if other != name]
        candidates = pool[(raw[name] == 1.0) & negative[others].all(axis=1)]
        chosen = partition(candidates["sample_id"].tolist(), {"all": 1.0}, seed)["all"][:per_label]
        if len(chosen) < per_label:
            short.append(f"{name} {len(chosen)}")
        part = candidates[candidates["sample_id"].isin(set(chosen))].sort_values("sample_id")
        table = part[list(SAMPLE_COLUMNS)].assign(patient_id=part["sample_id"].map(chexpert_patient), label=index)
        for column, other in enumerate(LABEL_NAMES):
            table[other] = np.float64(column == index)
        parts.append(table)
    if short:
        print(f"medvlp-bench: chexpert 5x200: fewer than {per_label} single-positive frontal images for "
              f"{', '.join(short)}; all of them are used", file=sys.stderr)
    selection = pd.concat(parts, ignore_index=True)
    if selection.empty:
        raise DataError("no frontal image with exactly one of the five labels positive",
                        file=str(Path(folder) / TRAIN_CSV))
    return test_only(selection)


def rsna_test(folder: Path) -> SplitTables:
    from medvlp_bench_plugins.datasets.rsna import load_splits

    test = load_splits(folder).test
    return test_only(test.assign(patient_id=test["sample_id"]))


def covidx_test(folder: Path) -> SplitTables:
    from medvlp_bench_plugins.datasets.covidx import load_splits

    return test_only(load_splits(folder).test)


def siim_test(folder: Path) -> SplitTables:
    from medvlp_bench_plugins.datasets.siim import load_splits

    test = load_splits(folder).test
    positive = test["rle"].map(len).gt(0).astype(np.float64)
    return test_only(test.assign(Pneumothorax=positive, patient_id=test["sample_id"]))


def mimic_subject(image_path: str) -> str:
    """The ``pSUBJECT`` folder of a MIMIC-CXR-JPG image path (``files/pXX/pSUBJECT/sSTUDY/DICOM.jpg``)."""
    return Path(image_path).parent.parent.name


def mimic_test(folder: Path) -> SplitTables:
    from medvlp_bench_plugins.datasets.mimic_cxr_corpus import load_corpus

    test = load_corpus(folder).test
    if test.empty:
        raise DataError("the official split has no test images with a report", file=str(Path(folder)))
    return test_only(test.assign(patient_id=test["image_path"].map(mimic_subject)))


@hookimpl
def medvlp_bench_tasks():
    chexpert_prompts = {"prompts": prompts_option("chexpert5x200.json")}
    return [
        TaskSpec(
            name="chexpert5x200_zs", dataset="chexpert", protocol="zero_shot",
            description="CheXpert 5x200 five-way zero-shot classification (class prompts), accuracy",
            load_splits=chexpert_five_by_two_hundred,
            label_names=("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"),
            target="multiclass", primary_metric="accuracy", split_rule=FIVE_BY_200_RULE, hparams=chexpert_prompts,
        ),
        TaskSpec(
            name="chexpert5x200_ret", dataset="chexpert", protocol="retrieval",
            description="CheXpert 5x200 class-level image-text retrieval (class prompts), image-to-text "
                        "Precision@5",
            load_splits=chexpert_five_by_two_hundred,
            label_names=("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"),
            target="multiclass", primary_metric="i2t_precision_at_5", split_rule=FIVE_BY_200_RULE,
            hparams=chexpert_prompts,
        ),
        TaskSpec(
            name="rsna_zs", dataset="rsna", protocol="zero_shot",
            description="RSNA Pneumonia zero-shot, pneumonia or not (rsna_cls test split), AUROC",
            load_splits=rsna_test, label_names=("Pneumonia",), target="binary", primary_metric="auroc",
            split_rule="test = the rsna_cls test split (patients 60/20/20, partition seed 0); no train, no val",
            hparams={"prompts": prompts_option("rsna_pneumonia.json")},
        ),
        TaskSpec(
            name="covidx_zs", dataset="covidx", protocol="zero_shot",
            description="COVIDx zero-shot, normal / pneumonia / COVID-19 (official test list), accuracy",
            load_splits=covidx_test, label_names=("normal", "pneumonia", "COVID-19"), target="multiclass",
            primary_metric="accuracy", split_rule="test = the official test list; no train, no val",
            hparams={"prompts": prompts_option("covidx.json")},
        ),
        TaskSpec(
            name="siim_zs", dataset="siim", protocol="zero_shot",
            description="SIIM-ACR zero-shot, pneumothorax or not (siim_seg test split), AUROC",
            load_splits=siim_test, label_names=("Pneumothorax",), target="binary", primary_metric="auroc",
            split_rule="test = the siim_seg test split (ImageIds 70/15/15, partition seed 0), positive = any "
                       "encoded pixel; no train, no val",
            hparams={"prompts": prompts_option("siim_pneumothorax.json")},
        ),
        TaskSpec(
            name="mimic_cxr_ret", dataset="mimic_cxr", protocol="retrieval",
            description="MIMIC-CXR image-report retrieval (official test split, frontal), image-to-text Recall@10",
            load_splits=mimic_test, label_names=(), target="report", primary_metric="i2t_recall_at_10",
            split_rule="test = the pretraining corpus's official test split (frontal PA/AP, impression + findings "
                       "text, studies under 3 tokens dropped); no train, no val",
        ),
    ]
