"""The example task ``example_rsna_quick``: pneumonia yes/no on the RSNA Pneumonia dataset (``rsna``, registered by
another plugin), with its own split rule and a short linear probe.

Raw layout read: ``stage_2_train_labels.csv`` (``patientId``, ``Target``; one row per box) and
``stage_2_train_images/<patientId>.dcm``. One sample per patient (its first row); label ``Pneumonia`` = ``Target``.
Split rule: patients partitioned 70 / 15 / 15 into train / val / test by ``partition(ids, seed=1)``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medvlp_bench.api import SplitTables, TaskSpec, partition

LABELS = "stage_2_train_labels.csv"


def load_splits(folder: Path) -> SplitTables:
    rows = pd.read_csv(Path(folder) / LABELS)
    rows["source_row"] = rows.index + 2  # 1-based, after the header
    patients = rows.drop_duplicates("patientId").reset_index(drop=True)
    table = pd.DataFrame({
        "sample_id": patients["patientId"].astype(str),
        "image_path": [str(Path(folder) / "stage_2_train_images" / f"{pid}.dcm") for pid in patients["patientId"]],
        "source_file": LABELS,
        "source_row": patients["source_row"],
        "Pneumonia": patients["Target"].astype(float),
    })
    parts = partition(table["sample_id"], {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    return SplitTables(*(table[table["sample_id"].isin(set(parts[name]))].reset_index(drop=True)
                         for name in ("train", "val", "test")))


TASKS = [
    TaskSpec(
        name="example_rsna_quick",
        dataset="rsna",
        protocol="linear_probe",
        description="RSNA pneumonia yes/no, 70/15/15 patient split (seed 1), 5-epoch linear probe (example plugin)",
        load_splits=load_splits,
        label_names=("Pneumonia",),
        target="binary",
        primary_metric="auroc",
        split_rule="patients partitioned 70/15/15 into train/val/test by partition(patientIds, seed=1)",
        hparams={"max_epochs": 5},
    )
]
