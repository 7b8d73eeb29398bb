"""COVIDx plugin: tolerant line parsing, class labels, 80/20 split by filename, errors naming file and row, check()."""

from __future__ import annotations

import random

import numpy as np
import pluggy
import pytest
from protocol_settings import resolved_settings
from raw_layouts import COVIDX_CLASSES, write_covidx

from medvlp_bench.api import DataError
from medvlp_bench import hookspecs
from medvlp_bench_plugins.datasets import covidx

TRAIN = "train_COVIDx9A.txt"
TEST = "test_COVIDx9A.txt"
FIELD_COUNT = "expected 4 space-separated fields (patient_id filename class source)"


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "COVIDx"
    return folder, write_covidx(folder)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


def test_labels_rows_and_columns(layout):
    folder, written = layout
    splits = covidx.load_splits(folder)
    train = {row["sample_id"]: row for _, table in list(splits.items())[:2] for row in table.to_dict("records")}
    assert len(train) == 30
    for entry in written["train"]:
        row = train[f"train/{entry[1]}"]
        assert row["label"] == COVIDX_CLASSES.index(entry[2])
        assert (row["patient_id"], row["source"]) == (entry[0], entry[3])
        assert row["image_path"] == str(folder.absolute() / "train" / entry[1])
    assert list(splits.test.columns) == [
        "sample_id", "image_path", "source_file", "source_row", "label", "patient_id", "source"
    ]
    assert splits.test["label"].dtype == np.int64
    assert splits.test["label"].tolist() == [COVIDX_CLASSES.index(entry[2]) for entry in written["test"]]


def test_source_rows_count_blank_lines(layout):
    folder, written = layout
    test = covidx.load_splits(folder).test.set_index("sample_id")
    assert test.at["test/test_000.jpg", "source_row"] == 1
    assert test.at["test/test_003.png", "source_row"] == 4
    assert test.at["test/test_004.jpg", "source_row"] == 6
    assert test.at["test/test_004.jpg", "source_file"] == str(folder / TEST)


def test_split_sizes_disjoint_and_deterministic(layout):
    folder, _ = layout
    splits = covidx.load_splits(folder)
    train, val = set(splits.train["sample_id"]), set(splits.val["sample_id"])
    assert (len(train), len(val), len(splits.test)) == (24, 6, 6)
    assert not train & val
    again = covidx.load_splits(folder)
    assert again.val["sample_id"].tolist() == splits.val["sample_id"].tolist()


def test_split_ignores_line_order(layout):
    folder, written = layout
    before = covidx.load_splits(folder).val["sample_id"].tolist()
    shuffled = [" ".join(entry) for entry in written["train"]]
    random.Random(1).shuffle(shuffled)
    write_lines(folder / TRAIN, shuffled)
    assert covidx.load_splits(folder).val["sample_id"].tolist() == before


@pytest.mark.parametrize(
    "line, reason",
    [
        ("pt9 extra.png COVID-19", f"{FIELD_COUNT}, found 3"),
        ("pt9 extra.png COVID-19 cohen more", f"{FIELD_COUNT}, found 5"),
        ("pt9 extra.png covid cohen", "unknown class 'covid'; expected one of ('normal', 'pneumonia', 'COVID-19')"),
        ("pt9 ../extra.png normal cohen", "filename must be a plain file name"),
    ],
)
def test_malformed_lines_name_file_and_row(layout, line, reason):
    folder, written = layout
    lines = [" ".join(entry) for entry in written["train"]]
    write_lines(folder / TRAIN, lines[:4] + [line] + lines[4:])
    with pytest.raises(DataError) as error:
        covidx.load_splits(folder)
    assert str(error.value).startswith(f"{folder / TRAIN}, row 5: {reason}")


def test_repeated_filename_with_another_class_is_rejected(layout):
    folder, written = layout
    lines = [" ".join(entry) for entry in written["train"]]
    write_lines(folder / TRAIN, lines + [lines[0]])
    assert len(covidx.load_splits(folder).train) + len(covidx.load_splits(folder).val) == 30
    write_lines(folder / TRAIN, lines + [lines[0].replace("normal", "pneumonia")])
    with pytest.raises(DataError, match=r"train_COVIDx9A\.txt, row 1: train_000\.jpg is listed on rows \[1, 31\]"):
        covidx.load_splits(folder)


def test_missing_image_names_file_and_row(layout):
    folder, _ = layout
    (folder / "test" / "test_004.jpg").unlink()
    with pytest.raises(DataError) as error:
        covidx.load_splits(folder)
    message = str(error.value)
    assert message.startswith(f"{folder / TEST}, row 6: 1 of 6 referenced image file(s) not found")
    assert "test_004.jpg" in message


def test_empty_list_is_an_error(layout):
    folder, _ = layout
    (folder / TEST).write_text("\n")
    with pytest.raises(DataError, match="test_COVIDx9A.txt: no entries"):
        covidx.load_splits(folder)


def test_check_accepts_a_valid_layout(layout):
    folder, _ = layout
    assert covidx.check(folder) == []


def test_check_reports_problems_without_raising(layout):
    folder, written = layout
    (folder / "train" / "train_000.jpg").write_bytes(b"garbage")
    (folder / "train" / "train_007.png").unlink()
    (folder / TEST).unlink()
    lines = [" ".join(entry) for entry in written["train"]] + ["pt x.png flu cohen"]
    write_lines(folder / TRAIN, lines)
    problems = covidx.check(folder)
    assert problems[0] == f"{folder / TRAIN}, row 31: unknown class 'flu'; expected one of {COVIDX_CLASSES}"
    assert problems[1].startswith(f"{folder / TRAIN}, row 8: 1 of 30 referenced image file(s) not found")
    assert str(folder / "train" / "train_000.jpg") in problems[2] and "cannot decode" in problems[2]
    assert problems[3] == f"{folder / TEST}: file not found"
    assert len(problems) == 4


def test_specs():
    (dataset,) = covidx.medvlp_bench_datasets()
    (task,) = covidx.medvlp_bench_tasks()
    assert (dataset.name, dataset.folder) == ("covidx", "COVIDx")
    assert (task.name, task.target, task.primary_metric, task.label_names) == (
        "covidx_cls", "multiclass", "accuracy", ("normal", "pneumonia", "COVID-19")
    )
    assert task.protocol == "linear_probe" and "seed=0" in task.split_rule
    # the reference's linear-probe settings are the protocol's defaults: the task overrides none
    assert dict(task.hparams) == {}
    assert resolved_settings(task) == {"lr": 5e-4, "weight_decay": 1e-6, "batch_size": 48, "max_epochs": 50,
                                       "patience": 10}


def test_synthetic_twin_reads_back(tmp_path):
    pytest.importorskip("medvlp_bench_plugins.datasets.covidx_synthetic")
    (dataset,) = covidx.medvlp_bench_datasets()
    dataset.write_synthetic(tmp_path / "covidx", 0, 0.02)
    assert covidx.check(tmp_path / "covidx") == []
    splits = covidx.load_splits(tmp_path / "covidx")
    assert all(len(table) for _, table in splits.items())


def test_registered_through_the_entry_point():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    assert manager.load_setuptools_entrypoints(hookspecs.PROJECT, name="covidx") == 1
    assert [spec.name for specs in manager.hook.medvlp_bench_datasets() for spec in specs] == ["covidx"]
    assert [spec.name for specs in manager.hook.medvlp_bench_tasks() for spec in specs] == ['covidx_cls']
