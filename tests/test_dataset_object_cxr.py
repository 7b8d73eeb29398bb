"""Object-CXR plugin: annotation parsing (rectangle, ellipse, polygon, empty), boxes and image sizes, splits,
malformed input reported with file and row, check(), and the synthetic twin."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
from PIL import Image
from protocol_settings import resolved_settings

from medvlp_bench.api import DataError, read_image
from medvlp_bench_plugins.datasets import object_cxr
from medvlp_bench_plugins.datasets.object_cxr import parse_annotation
from medvlp_bench_plugins.datasets.object_cxr_synthetic import write_object_cxr

#: (annotation as written, boxes [x, y, w, h] worked out by hand)
TRAIN = [
    ("0 2 3 12 10", [[2, 3, 10, 7]]),
    ("1 5 6 15 20", [[5, 6, 10, 14]]),
    ("2 4 4 10 2 12 9 3 8", [[3, 2, 9, 7]]),
    ("", []),
    ("0 1 1 5 5;1 10 10 20 18;2 2 20 6 25 1 22", [[1, 1, 4, 4], [10, 10, 10, 8], [1, 20, 5, 5]]),
    ("0 12 10 2 3", [[2, 3, 10, 7]]),
    ("0 1.5 2.5 8.25 9;", [[1.5, 2.5, 6.75, 6.5]]),
    ("", []),
    ("2 0 0 64 0 64 46", [[0, 0, 64, 46]]),
    (" 0 3 3 9 9 ", [[3, 3, 6, 6]]),
]
DEV = [("1 3 3 13 13", [[3, 3, 10, 10]]), ("", []), ("0 0 0 5 5", [[0, 0, 5, 5]])]


def size_of(index: int) -> tuple[int, int]:
    """(width, height) of image ``index``: varied and non-square."""
    return 40 + 3 * index, 30 + 2 * index


def name_of(split: str, index: int) -> str:
    return f"{index + (1 if split == 'train' else 8001):05d}.jpg"


def write_csv(path, rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("image_name", "annotation"))
        writer.writerows(rows)


def write_part(folder, split: str, entries) -> list[tuple[str, str]]:
    rows = []
    for index, (annotation, _) in enumerate(entries):
        name = name_of(split, index)
        (folder / split).mkdir(parents=True, exist_ok=True)
        Image.new("L", size_of(index), color=index * 10).save(folder / split / name)
        rows.append((name, annotation))
    write_csv(folder / f"{split}.csv", rows)
    return rows


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "object-CXR"
    return folder, write_part(folder, "train", TRAIN), write_part(folder, "dev", DEV)


def test_parse_each_type_and_empty():
    assert parse_annotation("0 10 20 30 50") == [[10, 20, 20, 30]]
    assert parse_annotation("1 10 20 30 50") == [[10, 20, 20, 30]]
    assert parse_annotation("2 10 20 30 25 15 50 5 40") == [[5, 20, 25, 30]]
    assert parse_annotation("") == [] and parse_annotation("  ") == [] and parse_annotation(";") == []
    assert parse_annotation("0 1 1 4 4; 2 0 0 3 0 3 3 ;") == [[1, 1, 3, 3], [0, 0, 3, 3]]


@pytest.mark.parametrize(
    "annotation, reason",
    [
        ("3 1 1 5 5", "object 1: unknown annotation type '3'"),
        ("0 1 1 5 5;x 1 2 3 4", "object 2: unknown annotation type 'x'"),
        ("0 1 2 3", "object 1: rectangle has an odd number of coordinates (3)"),
        ("2 1 2 3 4 5 6 7", "object 1: polygon has an odd number of coordinates (7)"),
        ("0 1 1 5 5 6 6", "object 1: rectangle needs 4 coordinates"),
        ("1 1 1", "object 1: ellipse needs 4 coordinates (x1 y1 x2 y2), got 2"),
        ("1 1 1 4 4 5 5", "object 1: ellipse needs 4 coordinates"),
        ("2 1 1 5 5", "object 1: polygon needs at least 3 points, got 2"),
        ("0 a 1 5 5", "object 1: non-numeric coordinate"),
        ("0 1 1 5 inf", "object 1: non-numeric coordinate"),
        ("0 5 1 5 9", "object 1: rectangle '0 5 1 5 9' encloses no area"),
        ("2 1 1 2 1 3 1", "object 1: polygon '2 1 1 2 1 3 1' encloses no area"),
    ],
)
def test_parse_rejects_malformed_objects(annotation, reason):
    with pytest.raises(ValueError) as error:
        parse_annotation(annotation)
    assert str(error.value).startswith(reason)


def test_rows_carry_boxes_sizes_and_sources(layout):
    folder, train_rows, dev_rows = layout
    splits = object_cxr.load_splits(folder)
    rows = {row["sample_id"]: row for _, table in splits.items() for row in table.to_dict("records")}
    for split, entries in (("train", TRAIN), ("dev", DEV)):
        for index, (_, boxes) in enumerate(entries):
            row = rows[f"{split}/{name_of(split, index)}"]
            assert row["boxes"] == boxes
            assert (row["width"], row["height"]) == size_of(index)
            assert row["image_path"] == str((folder / split / name_of(split, index)).absolute())
            assert row["source_file"] == str(folder / f"{split}.csv") and row["source_row"] == index + 2
    table = splits.train
    assert list(table.columns) == ["sample_id", "patient_id", "image_path", "source_file", "source_row", "boxes",
                                   "height", "width"]
    assert (table["patient_id"] == table["sample_id"]).all()
    assert table["width"].dtype == np.int64 and table["source_row"].dtype == np.int64


def test_split_train_val_from_train_csv_and_dev_as_test(layout):
    folder, _, _ = layout
    splits = object_cxr.load_splits(folder)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 2, 3)
    assert set(splits.test["sample_id"]) == {f"dev/{name_of('dev', index)}" for index in range(3)}
    assert not set(splits.train["sample_id"]) & set(splits.val["sample_id"])
    assert all(sample.startswith("train/") for sample in [*splits.train["sample_id"], *splits.val["sample_id"]])
    again = object_cxr.load_splits(folder)
    for (_, first), (_, second) in zip(splits.items(), again.items()):
        assert first["sample_id"].tolist() == second["sample_id"].tolist()


def test_split_ignores_csv_row_order(layout):
    folder, train_rows, _ = layout
    before = {name: table["sample_id"].tolist() for name, table in object_cxr.load_splits(folder).items()}
    shuffled = list(train_rows)
    random.Random(1).shuffle(shuffled)
    write_csv(folder / "train.csv", shuffled)
    after = {name: table["sample_id"].tolist() for name, table in object_cxr.load_splits(folder).items()}
    assert after == before


@pytest.mark.parametrize(
    "row, reason",
    [
        ((name_of("train", 3), "4 1 1 5 5"), "object 1: unknown annotation type '4'"),
        ((name_of("train", 3), "0 1 1 5 5;0 1 2 3"), "object 2: rectangle has an odd number of coordinates (3)"),
        ((name_of("train", 3), "2 1 1 5 5"), "object 1: polygon needs at least 3 points"),
        ((name_of("train", 3), "0 2 3 50 10"), "object 1: box [2.0, 3.0, 48.0, 7.0] reaches outside the 49 x 36 image"),
        ((name_of("train", 3), "0 2 3 20 37"), "object 1: box [2.0, 3.0, 18.0, 34.0] reaches outside the 49 x 36"),
        ((name_of("train", 3), "1 -1 2 5 5"), "object 1: box [-1.0, 2.0, 6.0, 3.0] reaches outside"),
        ((name_of("train", 1), ""), f"image_name {name_of('train', 1)} repeated (first on row 3)"),
        (("sub/00004.jpg", ""), "image_name must be a plain file name"),
        ((" ", "0 1 1 5 5"), "empty image_name"),
        ((name_of("train", 3), "", "extra"), "expected 2 fields, found 3"),
    ],
)
def test_malformed_rows_name_file_and_row(layout, row, reason):
    folder, train_rows, _ = layout
    write_csv(folder / "train.csv", train_rows[:3] + [row] + train_rows[4:])
    with pytest.raises(DataError) as error:
        object_cxr.load_splits(folder)
    assert str(error.value).startswith(f"{folder / 'train.csv'}, row 5: {reason}")
    assert error.value.row == 5


def test_box_on_the_image_edge_is_inside(layout):
    folder, train_rows, _ = layout
    write_csv(folder / "train.csv", train_rows[:3] + [(name_of("train", 3), "0 0 0 49 36")] + train_rows[4:])
    row = object_cxr.load_csv(folder, "train.csv").set_index("sample_id").loc[f"train/{name_of('train', 3)}"]
    assert row["boxes"] == [[0, 0, 49, 36]]


def test_missing_image_names_file_and_row(layout):
    folder, _, _ = layout
    (folder / "dev" / name_of("dev", 1)).unlink()
    with pytest.raises(DataError) as error:
        object_cxr.load_splits(folder)
    assert str(error.value).startswith(f"{folder / 'dev.csv'}, row 3: 1 of 3 referenced image file(s) not found")


def test_unreadable_image_names_the_image(layout):
    folder, _, _ = layout
    path = folder / "train" / name_of("train", 2)
    path.write_bytes(b"no jpeg here")
    with pytest.raises(DataError, match="cannot read the image header") as error:
        object_cxr.load_splits(folder)
    assert error.value.file == str(path.absolute())


def test_check_accepts_a_valid_layout(layout):
    folder, _, _ = layout
    assert object_cxr.check(folder) == []


def test_check_lists_every_kind_of_problem(layout):
    folder, train_rows, dev_rows = layout
    write_csv(folder / "train.csv", train_rows + [(name_of("train", 0), "5 1 1 2 2"), ("absent.jpg", "")])
    write_csv(folder / "dev.csv", [(name, "0 0 0 500 5") if index == 2 else (name, note)
                                   for index, (name, note) in enumerate(dev_rows)])
    (folder / "train" / name_of("train", 5)).write_bytes(b"broken")
    problems = object_cxr.check(folder)
    assert any("train.csv, row 12: object 1: unknown annotation type '5'" in problem for problem in problems)
    assert any("train.csv, row 13: 1 of 11 referenced image file(s) not found" in problem for problem in problems)
    assert any("cannot read the image header" in problem and name_of("train", 5) in problem for problem in problems)
    assert any("dev.csv, row 4: object 1: box" in problem and "outside" in problem for problem in problems)
    assert len(problems) == 4


def test_check_never_raises(tmp_path):
    folder = tmp_path / "nothing"
    expected = [f"{folder / name}: file not found" for name in ("train.csv", "dev.csv")]
    assert object_cxr.check(folder) == expected


def test_specs():
    (dataset,) = object_cxr.medvlp_bench_datasets()
    (task,) = object_cxr.medvlp_bench_tasks()
    assert (dataset.name, dataset.folder) == ("object_cxr", "object-CXR")
    assert dataset.citation and dataset.url and callable(dataset.write_synthetic)
    assert (task.name, task.dataset, task.protocol) == ("object_cxr_det", "object_cxr", "detection")
    assert task.target == "boxes"
    assert task.label_names == ("Foreign object",) and task.primary_metric == "map" and "seed=0" in task.split_rule
    # the reference's detection settings are the detection protocol's defaults: the task overrides none
    assert dict(task.hparams) == {}
    settings = resolved_settings(task)
    assert {name: settings[name] for name in ("lr", "lr_at_1pct", "weight_decay", "batch_size", "batch_size_at_1pct",
                                              "max_epochs", "patience", "head_width")} == {
        "lr": 5e-4, "lr_at_1pct": 2e-4, "weight_decay": 1e-6, "batch_size": 16, "batch_size_at_1pct": 8,
        "max_epochs": 50, "patience": 10, "head_width": "auto"}


@pytest.fixture(scope="module")
def synthetic_twin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("object-cxr") / "object-CXR"
    write_object_cxr(folder, 0, 0.03)
    return folder


def test_synthetic_twin_is_valid(synthetic_twin):
    assert object_cxr.check(synthetic_twin) == []
    splits = object_cxr.load_splits(synthetic_twin)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 8)


def test_synthetic_twin_has_varied_sizes_and_real_annotations(synthetic_twin):
    splits = object_cxr.load_splits(synthetic_twin)
    table = splits.train
    assert table["width"].between(200, 320).all() and table["height"].between(200, 320).all()
    assert (table["width"] != table["height"]).mean() > 0.8 and table["width"].nunique() > 10
    with_objects = table["boxes"].str.len() > 0
    assert 0.3 < with_objects.mean() < 0.7 and table["boxes"].str.len().max() <= 3
    with open(synthetic_twin / "train.csv", newline="") as handle:
        annotations = [row["annotation"] for row in csv.DictReader(handle)]
    kinds = {piece.split()[0] for annotation in annotations for piece in annotation.split(";") if piece}
    assert kinds == {"0", "1", "2"}
    assert all(token.isdigit() for annotation in annotations for token in annotation.replace(";", " ").split())


def test_synthetic_twin_boxes_lie_on_bright_objects(synthetic_twin):
    table = object_cxr.load_splits(synthetic_twin).train
    for row in table[table["boxes"].str.len() > 0].itertuples():
        image = read_image(row.image_path)
        assert image.shape == (row.height, row.width)
        x, y, w, h = (int(round(value)) for value in row.boxes[0])
        assert image[y:y + h, x:x + w].max() > np.median(image)


def test_synthetic_twin_is_deterministic(tmp_path):
    write_object_cxr(tmp_path / "a", 2, 0.005)
    write_object_cxr(tmp_path / "b", 2, 0.005)
    for name in ("train.csv", "dev.csv", "train/00001.jpg", "dev/00016.jpg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
