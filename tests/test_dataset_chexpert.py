"""CheXpert plugin: label policy value by value, frontal filter, held-out val by id, errors, check(), 5x200."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pluggy
import pytest
from protocol_settings import resolved_settings
from raw_layouts import CHEXPERT_HEADER, CHEXPERT_LABELS, write_chexpert, write_csv, write_raster

from medvlp_bench.api import DataError
from medvlp_bench import hookspecs
from medvlp_bench_plugins.datasets import chexpert

#: expected target of each raw value, per label (U-Ones: Atelectasis, Edema, Pleural Effusion; U-Zeros: others)
POLICY = {
    "1.0": dict.fromkeys(CHEXPERT_LABELS, 1.0),
    "0.0": dict.fromkeys(CHEXPERT_LABELS, 0.0),
    "": dict.fromkeys(CHEXPERT_LABELS, 0.0),
    "-1.0": {"Atelectasis": 1.0, "Cardiomegaly": 0.0, "Consolidation": 0.0, "Edema": 1.0, "Pleural Effusion": 1.0},
}
LABEL_COLUMNS = slice(5, 10)


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "my-chexpert-copy"
    return folder, write_chexpert(folder)


def frontal(rows):
    return [row for row in rows if row[3] == "Frontal"]


def split_ids(splits):
    return {name: table["sample_id"].tolist() for name, table in splits.items()}


def test_label_policy_value_by_value(layout):
    folder, written = layout
    splits = chexpert.load_splits(folder)
    table = pd.concat([splits.train, splits.val, splits.test]).set_index("sample_id")
    checked = 0
    for row in frontal(written["train"] + written["valid"]):
        for name, raw in zip(CHEXPERT_LABELS, row[LABEL_COLUMNS]):
            assert table.at[row[0], name] == POLICY[raw][name], (row[0], name, raw)
            checked += 1
    assert checked == 5 * 29
    raw_seen = {raw for row in written["train"] for raw in row[LABEL_COLUMNS]}
    assert raw_seen == {"1.0", "0.0", "-1.0", ""}


def test_frontal_only_and_columns(layout):
    folder, written = layout
    splits = chexpert.load_splits(folder)
    assert sorted(splits.train["sample_id"].tolist() + splits.val["sample_id"].tolist()) == sorted(
        row[0] for row in frontal(written["train"])
    )
    assert splits.test["sample_id"].tolist() == sorted(row[0] for row in frontal(written["valid"]))
    assert list(splits.train.columns) == ["sample_id", "patient_id", "image_path", "source_file", "source_row",
                                          *CHEXPERT_LABELS]
    for table in (splits.train, splits.test):
        assert (table["patient_id"] == table["sample_id"].str.split("/").str[2]).all()
        assert table["patient_id"].str.fullmatch(r"patient\d+").all()
    assert all(splits.train[name].dtype == np.float64 for name in CHEXPERT_LABELS)


def test_paths_resolve_inside_a_renamed_folder(layout):
    folder, written = layout
    test = chexpert.load_splits(folder).test
    row = test.iloc[0]
    assert row["sample_id"].startswith("CheXpert-v1.0-small/valid/")
    assert row["image_path"] == str(folder.absolute() / row["sample_id"].split("/", 1)[1])
    assert row["source_file"] == str(folder / "valid.csv")
    assert row["source_row"] == 2 + [r[0] for r in written["valid"]].index(row["sample_id"])
    train = chexpert.load_splits(folder).train
    full_size = train[train["sample_id"].str.startswith("CheXpert-v1.0/")]
    assert len(full_size) and all(path.startswith(str(folder.absolute() / "train")) for path in full_size["image_path"])


def test_held_out_val_is_disjoint_from_train(layout):
    folder, written = layout
    splits = chexpert.load_splits(folder)
    train, val = set(splits.train["sample_id"]), set(splits.val["sample_id"])
    assert len(val) == max(1, len(frontal(written["train"])) // 10) == 2
    assert not train & val
    assert not (train | val) & set(splits.test["sample_id"])


def test_val_size_is_capped_at_5000():
    ids = [f"CheXpert-v1.0-small/train/patient{index:06d}/study1/view1_frontal.jpg" for index in range(60_000)]
    held_out = chexpert.validation_ids(ids, "train.csv")
    assert len(held_out) == len(set(held_out)) == 5000
    assert held_out == chexpert.validation_ids(list(reversed(ids)), "train.csv")


def test_split_is_deterministic_and_ignores_row_order(layout):
    folder, written = layout
    before = split_ids(chexpert.load_splits(folder))
    assert split_ids(chexpert.load_splits(folder)) == before
    shuffled = list(written["train"])
    random.Random(5).shuffle(shuffled)
    write_csv(folder / "train.csv", CHEXPERT_HEADER, shuffled)
    assert split_ids(chexpert.load_splits(folder)) == before


def test_identical_repeats_are_read_once_and_conflicting_repeats_rejected(layout):
    folder, written = layout
    write_csv(folder / "train.csv", CHEXPERT_HEADER, written["train"] + [written["train"][0]])
    splits = chexpert.load_splits(folder)
    assert len(splits.train) + len(splits.val) == len(frontal(written["train"]))
    changed = list(written["train"][0])
    changed[5] = "0.0" if changed[5] != "0.0" else "1.0"
    write_csv(folder / "train.csv", CHEXPERT_HEADER, written["train"] + [changed])
    last = len(written["train"]) + 2
    with pytest.raises(DataError, match=rf"train\.csv, row 2: Path \S+ repeats on rows \[2, {last}\]"):
        chexpert.load_splits(folder)


def test_test_rows_also_in_train_are_rejected(layout):
    folder, written = layout
    write_csv(folder / "valid.csv", CHEXPERT_HEADER, written["valid"] + [written["train"][0]])
    with pytest.raises(DataError, match=rf"valid\.csv, row {len(written['valid']) + 2}: 1 Path\(s\) also appear"):
        chexpert.load_splits(folder)


def test_missing_frontal_image_names_file_and_row(layout):
    folder, written = layout
    row = written["train"][4]
    (folder / row[0].split("/", 1)[1]).unlink()
    with pytest.raises(DataError) as error:
        chexpert.load_splits(folder)
    assert str(error.value).startswith(f"{folder / 'train.csv'}, row 6: 1 of 23 referenced image file(s) not found")


def test_missing_lateral_image_only_fails_check(layout):
    folder, written = layout
    lateral = written["train"][3]
    (folder / lateral[0].split("/", 1)[1]).unlink()
    chexpert.load_splits(folder)
    (problem,) = chexpert.check(folder)
    assert problem.startswith(f"{folder / 'train.csv'}, row 5: 1 of 30 referenced image file(s) not found")


@pytest.mark.parametrize(
    "column, value, reason",
    [
        (5, "2.0", "Atelectasis must be 1.0, 0.0, -1.0 or blank, got '2.0'"),
        (9, "yes", "Pleural Effusion must be 1.0, 0.0, -1.0 or blank, got 'yes'"),
        (3, "Oblique", "Frontal/Lateral must be one of ('Frontal', 'Lateral'), got 'Oblique'"),
        (0, "/abs/train/p1/study1/view1_frontal.jpg", "Path must be relative"),
        (0, "CheXpert-v1.0-small/../../etc/x.jpg", "Path must not contain '..'"),
    ],
)
def test_malformed_values_name_file_and_row(layout, column, value, reason):
    folder, written = layout
    rows = [list(row) for row in written["train"]]
    rows[6][column] = value
    write_csv(folder / "train.csv", CHEXPERT_HEADER, rows)
    with pytest.raises(DataError) as error:
        chexpert.load_splits(folder)
    assert str(error.value).startswith(f"{folder / 'train.csv'}, row 8: {reason}")


def test_missing_column_names_file_and_header_row(layout):
    folder, written = layout
    header = [name for name in CHEXPERT_HEADER if name != "Edema"]
    write_csv(folder / "valid.csv", header, [row[:8] + row[9:] for row in written["valid"]])
    with pytest.raises(DataError, match=r"valid\.csv, row 1: missing column\(s\) \['Edema'\]"):
        chexpert.load_splits(folder)


def test_valid_csv_without_frontal_rows_is_an_error(layout):
    folder, written = layout
    write_csv(folder / "valid.csv", CHEXPERT_HEADER, [row for row in written["valid"] if row[3] == "Lateral"])
    with pytest.raises(DataError, match="valid.csv: no frontal rows"):
        chexpert.load_splits(folder)


def test_check_accepts_a_valid_layout(layout):
    folder, _ = layout
    assert chexpert.check(folder) == []


def test_check_reports_corrupted_image_and_missing_file(layout):
    folder, written = layout
    first = folder / written["valid"][0][0].split("/", 1)[1]
    first.write_bytes(b"\xff\xd8 truncated jpeg")
    (folder / "train.csv").unlink()
    problems = chexpert.check(folder)
    assert problems[0] == f"{folder / 'train.csv'}: file not found"
    assert len(problems) == 2 and str(first) in problems[1] and "cannot decode image" in problems[1]


def test_check_lists_bad_rows_with_their_rows(layout):
    folder, written = layout
    rows = [list(row) for row in written["train"]]
    rows[0][6] = "3"
    rows[2][3] = ""
    write_csv(folder / "train.csv", CHEXPERT_HEADER, rows)
    problems = chexpert.check(folder)
    assert [problem.split(": ")[0] for problem in problems] == [f"{folder / 'train.csv'}, row {row}" for row in (2, 4)]


def test_five_by_two_hundred_single_positive_images(tmp_path):
    folder = tmp_path / "chexpert"
    rows = []
    for index in range(40):
        values = [""] * 5
        values[index % 5] = "1.0"
        if index % 10 == 9:
            values[(index + 1) % 5] = "-1.0"
        rows.append([f"CheXpert-v1.0-small/train/patient{index:05d}/study1/view1_frontal.jpg", "Male", "50",
                     "Frontal", "PA", *values, *[""] * 9])
        write_raster(folder / rows[-1][0].split("/", 1)[1], seed=index)
    write_csv(folder / "train.csv", CHEXPERT_HEADER, rows)
    subset = chexpert.five_by_two_hundred(folder, per_label=3)
    assert subset["label"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    onehot = subset[list(CHEXPERT_LABELS)].to_numpy()
    assert (onehot == np.eye(5)[subset["label"]]).all()
    uncertain = {row[0] for row in rows if "-1.0" in row}
    assert not uncertain & set(subset["sample_id"])
    assert subset.equals(chexpert.five_by_two_hundred(folder, per_label=3))
    with pytest.raises(DataError, match=r"4 single-positive frontal image\(s\) for Pleural Effusion, 8 needed"):
        chexpert.five_by_two_hundred(folder, per_label=8)


def test_specs():
    (dataset,) = chexpert.medvlp_bench_datasets()
    (task,) = chexpert.medvlp_bench_tasks()
    assert (dataset.name, dataset.folder) == ("chexpert", "CheXpert-v1.0-small")
    assert (task.name, task.dataset, task.target, task.primary_metric) == (
        "chexpert_cls", "chexpert", "multilabel", "auroc"
    )
    assert task.label_names == CHEXPERT_LABELS and task.protocol == "linear_probe" and "seed=42" in task.split_rule
    # the reference's linear-probe settings are the protocol's defaults: the task overrides none
    assert dict(task.hparams) == {}
    assert resolved_settings(task) == {"lr": 5e-4, "weight_decay": 1e-6, "batch_size": 48, "max_epochs": 50,
                                       "patience": 10}


def test_synthetic_twin_reads_back(tmp_path):
    pytest.importorskip("medvlp_bench_plugins.datasets.chexpert_synthetic")
    (dataset,) = chexpert.medvlp_bench_datasets()
    dataset.write_synthetic(tmp_path / "chexpert", 0, 0.02)
    assert chexpert.check(tmp_path / "chexpert") == []
    splits = chexpert.load_splits(tmp_path / "chexpert")
    assert all(len(table) for _, table in splits.items())


def test_registered_through_the_entry_point():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    assert manager.load_setuptools_entrypoints(hookspecs.PROJECT, name="chexpert") == 1
    assert [spec.name for specs in manager.hook.medvlp_bench_datasets() for spec in specs] == ["chexpert"]
    assert [spec.name for specs in manager.hook.medvlp_bench_tasks() for spec in specs] == ['chexpert_cls']
