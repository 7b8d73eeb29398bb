"""RSNA Pneumonia plugin: per-patient labels and boxes, splits, errors naming file and row, check()."""

from __future__ import annotations

import csv
import random

import numpy as np
import pandas as pd
import pluggy
import pytest
from protocol_settings import resolved_settings
from raw_layouts import image, rsna_patient, write_rsna

from medvlp_bench.api import DataError, read_image
from medvlp_bench import hookspecs
from medvlp_bench_plugins.datasets import rsna

LABELS = "stage_2_train_labels.csv"


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "rsna-pneumonia"
    return folder, write_rsna(folder)


def rewrite_rows(folder, rows, header=("patientId", "x", "y", "width", "height", "Target")):
    with open(folder / LABELS, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def all_rows(splits):
    """sample_id -> row (as a dict) over the three splits."""
    table = pd.concat([table for _, table in splits.items()])
    return {row["sample_id"]: row for row in table.to_dict("records")}


def test_one_row_per_patient_with_labels_and_boxes(layout):
    folder, written = layout
    rows = all_rows(rsna.load_splits(folder))
    assert set(rows) == set(written["labels"])
    for patient, row in rows.items():
        assert row["Pneumonia"] == float(written["labels"][patient])
        assert row["boxes"] == written["boxes"][patient]
        assert row["image_path"] == str((folder / "stage_2_train_images" / f"{patient}.dcm").absolute())
        assert row["source_file"] == str(folder / LABELS)
    merged = rsna_patient(6)
    assert len(rows[merged]["boxes"]) == 2
    first_line = 2 + [row[0] for row in written["rows"]].index(merged)
    assert rows[merged]["source_row"] == first_line


def test_table_columns_and_types(layout):
    folder, _ = layout
    train = rsna.load_splits(folder).train
    assert list(train.columns) == ["sample_id", "patient_id", "image_path", "source_file", "source_row", "Pneumonia",
                                   "boxes"]
    assert (train["patient_id"] == train["sample_id"]).all()
    assert train["Pneumonia"].dtype == np.float64
    assert train["source_row"].dtype == np.int64
    assert train["sample_id"].is_unique


def test_split_sizes_disjoint_and_deterministic(layout):
    folder, _ = layout
    first, second = rsna.load_splits(folder), rsna.load_splits(folder)
    ids = {name: set(table["sample_id"]) for name, table in first.items()}
    assert [len(ids[name]) for name in ("train", "val", "test")] == [12, 4, 4]
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    for (_, a), (_, b) in zip(first.items(), second.items()):
        assert a["sample_id"].tolist() == b["sample_id"].tolist()


def test_split_ignores_csv_row_order(layout):
    folder, written = layout
    before = {name: table["sample_id"].tolist() for name, table in rsna.load_splits(folder).items()}
    shuffled = list(written["rows"])
    random.Random(3).shuffle(shuffled)
    rewrite_rows(folder, shuffled)
    after = {name: table["sample_id"].tolist() for name, table in rsna.load_splits(folder).items()}
    assert after == before


def test_monochrome1_image_reads_bone_bright(layout):
    folder, _ = layout
    pixels = read_image(folder / "stage_2_train_images" / f"{rsna_patient(1)}.dcm")
    original = image(1).astype(float)
    expected = np.round((original - original.min()) / (original.max() - original.min()) * 255)
    assert np.abs(pixels.astype(float) - expected).max() <= 1


def test_conflicting_targets_name_the_rows(layout):
    folder, written = layout
    rows = written["rows"] + [[rsna_patient(1), "1", "2", "3", "4", 1]]
    rewrite_rows(folder, rows)
    conflict_row = len(rows) + 1
    original_row = 2 + [row[0] for row in written["rows"]].index(rsna_patient(1))
    with pytest.raises(DataError) as error:
        rsna.load_splits(folder)
    assert str(folder / LABELS) in str(error.value)
    assert f"{[original_row, conflict_row]}" in str(error.value)


def test_missing_image_names_file_and_row(layout):
    folder, written = layout
    patient = rsna_patient(4)
    (folder / "stage_2_train_images" / f"{patient}.dcm").unlink()
    row = 2 + [r[0] for r in written["rows"]].index(patient)
    with pytest.raises(DataError) as error:
        rsna.load_splits(folder)
    message = str(error.value)
    assert str(folder / LABELS) in message and f"row {row}" in message
    assert "1 of 20" in message and f"{patient}.dcm" in message


def test_missing_column_names_file_and_header_row(layout):
    folder, written = layout
    rewrite_rows(folder, [row[:5] for row in written["rows"]], header=("patientId", "x", "y", "width", "height"))
    with pytest.raises(DataError, match=r"stage_2_train_labels\.csv, row 1: missing column\(s\) \['Target'\]"):
        rsna.load_splits(folder)


@pytest.mark.parametrize(
    "bad_row, reason",
    [
        (["p-bad", "", "", "", "", "yes"], "Target must be 0 or 1"),
        (["p-bad", "1", "two", "3", "4", "1"], "Target 1 needs a box"),
        (["p-bad", "-1", "2", "3", "4", "1"], "Target 1 needs a box"),
        (["p-bad", "1", "2", "3", "4", "0"], "Target 0 row carries a box"),
        (["p-bad", "1", "2"], "expected 6 fields, found 3"),
    ],
)
def test_malformed_rows_name_file_and_row(layout, bad_row, reason):
    folder, written = layout
    rewrite_rows(folder, written["rows"][:3] + [bad_row] + written["rows"][3:])
    with pytest.raises(DataError) as error:
        rsna.load_splits(folder)
    assert str(error.value).startswith(f"{folder / LABELS}, row 5: {reason}")
    assert error.value.row == 5


def test_header_only_file_is_an_error(layout):
    folder, _ = layout
    rewrite_rows(folder, [])
    with pytest.raises(DataError, match="stage_2_train_labels.csv: no data rows"):
        rsna.load_splits(folder)


def test_check_accepts_a_valid_layout(layout):
    folder, _ = layout
    assert rsna.check(folder) == []


def test_check_reports_a_corrupted_dicom(layout):
    folder, written = layout
    patient = rsna_patient(7)
    (folder / "stage_2_train_images" / f"{patient}.dcm").write_bytes(b"not a dicom at all" * 20)
    problems = rsna.check(folder)
    row = 2 + [r[0] for r in written["rows"]].index(patient)
    assert len(problems) == 1
    assert f"row {row}" in problems[0] and f"{patient}.dcm" in problems[0]


def test_check_reports_an_undecodable_dicom_among_the_sample(layout):
    folder, _ = layout
    path = folder / "stage_2_train_images" / f"{rsna_patient(0)}.dcm"
    path.write_bytes(path.read_bytes()[:200])
    problems = rsna.check(folder)
    assert len(problems) == 1 and str(path) in problems[0] and "cannot decode DICOM" in problems[0]


def test_check_reports_missing_files_and_bad_rows(layout):
    folder, written = layout
    (folder / "stage_2_train_images" / f"{rsna_patient(2)}.dcm").unlink()
    rewrite_rows(folder, written["rows"] + [["p-extra", "", "", "", "", "maybe"]])
    problems = rsna.check(folder)
    bad_row = len(written["rows"]) + 2
    assert any("Target must be 0 or 1" in problem and f"row {bad_row}" in problem for problem in problems)
    assert any("not found" in problem and rsna_patient(2) in problem for problem in problems)
    (folder / LABELS).unlink()
    assert rsna.check(folder) == [f"{folder / LABELS}: file not found"]


def test_check_never_raises_on_an_empty_folder(tmp_path):
    assert rsna.check(tmp_path / "nothing-here") == [f"{tmp_path / 'nothing-here' / LABELS}: file not found"]


def test_specs():
    (dataset,) = rsna.medvlp_bench_datasets()
    task = rsna.medvlp_bench_tasks()[0]
    assert (dataset.name, dataset.folder) == ("rsna", "rsna-pneumonia")
    assert dataset.citation and dataset.url and callable(dataset.write_synthetic)
    assert (task.name, task.dataset, task.protocol, task.target) == ("rsna_cls", "rsna", "linear_probe", "binary")
    assert task.label_names == ("Pneumonia",) and task.primary_metric == "auroc" and "seed=0" in task.split_rule
    # the reference's linear-probe settings are the protocol's defaults: the task overrides none
    assert dict(task.hparams) == {}
    assert resolved_settings(task) == {"lr": 5e-4, "weight_decay": 1e-6, "batch_size": 48, "max_epochs": 50,
                                       "patience": 10}


def test_synthetic_twin_reads_back(tmp_path):
    pytest.importorskip("medvlp_bench_plugins.datasets.rsna_synthetic")
    (dataset,) = rsna.medvlp_bench_datasets()
    dataset.write_synthetic(tmp_path / "rsna", 0, 0.02)
    assert rsna.check(tmp_path / "rsna") == []
    splits = rsna.load_splits(tmp_path / "rsna")
    assert all(len(table) for _, table in splits.items())


def test_registered_through_the_entry_point():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    assert manager.load_setuptools_entrypoints(hookspecs.PROJECT, name="rsna") == 1
    assert [spec.name for specs in manager.hook.medvlp_bench_datasets() for spec in specs] == ["rsna"]
    tasks = [spec.name for specs in manager.hook.medvlp_bench_tasks() for spec in specs]
    assert tasks == ["rsna_cls", "rsna_det", "rsna_seg"]
