"""SIIM-ACR Pneumothorax plugin: the spaced RLE header, merged instance rows, nested DICOMs, the balanced split,
malformed input reported with file and row, check(), and the synthetic twin."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pandas as pd
import pytest
from protocol_settings import resolved_settings

from medvlp_bench.api import DataError, read_image, write_dicom
from medvlp_bench_plugins.datasets import siim
from medvlp_bench_plugins.datasets.siim_synthetic import write_siim

LABELS = "train-rle.csv"
HEADER = "ImageId, EncodedPixels"
HEIGHT, WIDTH = 8, 6
IMAGES = 20
#: image index -> EncodedPixels values as written (one CSV row each)
VALUES = {
    0: [" 9 3"],
    1: [" 0 2", " 40 8"],  # each row encodes its own instance from pixel 0
    2: [" -1", " 10 1 5 2"],
    5: [" 47 1"],
    8: [" 3 4 1 1"],
    13: [" 0 48"],
}
#: image index -> (start, length) runs in absolute column-major pixel numbers, worked out by hand from VALUES
ABSOLUTE_RUNS = {
    0: [(9, 3)],
    1: [(0, 2), (40, 8)],
    2: [(10, 1), (16, 2)],
    5: [(47, 1)],
    8: [(3, 4), (8, 1)],
    13: [(0, 48)],
}
NEGATIVE_VALUES = (" -1", "-1", "-1 ")


def image_id(index: int) -> str:
    return f"1.2.276.0.7230010.3.1.4.8323329.{100 + index}.1517875162.{300 + index}"


def dicom_path(folder, index: int):
    """Nested like the real download; image 19 sits one level up (any depth is found)."""
    root = folder / "dicom-images-train"
    if index == 19:
        return root / f"study-{index}" / f"{image_id(index)}.dcm"
    study, series = f"1.2.276.0.7230010.3.1.2.8323329.{index}", f"1.2.276.0.7230010.3.1.3.{index}"
    return root / study / series / f"{image_id(index)}.dcm"


def expected_mask(index: int) -> np.ndarray:
    flat = np.zeros(HEIGHT * WIDTH, dtype=bool)
    for start, length in ABSOLUTE_RUNS.get(index, []):
        flat[start:start + length] = True
    return flat.reshape((HEIGHT, WIDTH), order="F")


def csv_lines() -> list[str]:
    lines = []
    for index in range(IMAGES):
        values = VALUES.get(index, [NEGATIVE_VALUES[index % len(NEGATIVE_VALUES)]])
        lines += [f"{image_id(index)},{value}" for value in values]
    return lines


def write_lines(folder, lines) -> None:
    (folder / LABELS).write_text("\n".join([HEADER, *lines]) + "\n")


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "siim-acr-pneumothorax"
    rng = np.random.default_rng(0)
    for index in range(IMAGES):
        write_dicom(dicom_path(folder, index), rng.integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8),
                    patient_id=f"p{index}", sop_instance_uid=image_id(index))
    write_dicom(folder / "dicom-images-train" / "a" / "b" / "1.2.3.not-in-the-csv.dcm",
                np.zeros((HEIGHT, WIDTH), np.uint8), patient_id="x", sop_instance_uid="1.2.3.4")
    lines = csv_lines()
    write_lines(folder, lines)
    return folder, lines


def test_one_row_per_image_with_merged_masks(layout):
    folder, lines = layout
    table = siim.load_table(folder)
    assert table["sample_id"].tolist() == sorted(image_id(index) for index in range(IMAGES))
    first_rows = {}
    for number, line in enumerate(lines, start=2):
        first_rows.setdefault(line.split(",")[0], number)
    by_id = table.set_index("sample_id")
    for index in range(IMAGES):
        row = by_id.loc[image_id(index)]
        assert row["image_path"] == str(dicom_path(folder, index).absolute())
        assert (row["height"], row["width"]) == (HEIGHT, WIDTH)
        assert row["rle"] == [value.strip() for value in VALUES.get(index, []) if value.strip() != "-1"]
        assert row["source_row"] == first_rows[image_id(index)]
        mask = siim.load_mask(row)
        assert mask.shape == (HEIGHT, WIDTH) and mask.dtype == bool
        assert np.array_equal(mask, expected_mask(index)), index


def test_mask_orientation_is_column_major(layout):
    folder, _ = layout
    row = siim.load_table(folder).set_index("sample_id").loc[image_id(0)]
    mask = siim.load_mask(row)
    assert mask[1:4, 1].all() and mask.sum() == 3  # pixels 9-11 = rows 1-3 of column 1


def test_table_columns_and_types(layout):
    folder, _ = layout
    table = siim.load_table(folder)
    assert list(table.columns) == ["sample_id", "patient_id", "image_path", "source_file", "source_row", "rle",
                                   "height", "width"]
    assert (table["patient_id"] == table["sample_id"]).all()
    assert table["source_row"].dtype == np.int64 and table["height"].dtype == np.int64
    assert (table["source_file"] == str(folder / LABELS)).all()
    assert "1.2.3.not-in-the-csv" not in set(table["sample_id"])


def test_splits_partition_balance_and_determinism(layout):
    folder, _ = layout
    splits = siim.load_splits(folder)
    ids = {name: set(table["sample_id"]) for name, table in splits.items()}
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    assert (len(ids["val"]), len(ids["test"])) == (3, 3)
    positive = splits.train["rle"].str.len() > 0
    assert positive.sum() == (~positive).sum() > 0
    pool = set(map(image_id, range(IMAGES))) - ids["val"] - ids["test"]
    assert len(pool) == 14 and ids["train"] <= pool
    assert {image_id(index) for index in VALUES} & pool <= ids["train"]
    again = siim.load_splits(folder)
    for (_, first), (_, second) in zip(splits.items(), again.items()):
        assert first["sample_id"].tolist() == second["sample_id"].tolist()


def test_split_ignores_csv_row_order(layout):
    folder, lines = layout
    before = {name: table["sample_id"].tolist() for name, table in siim.load_splits(folder).items()}
    shuffled = list(lines)
    random.Random(5).shuffle(shuffled)
    write_lines(folder, shuffled)
    after = {name: table["sample_id"].tolist() for name, table in siim.load_splits(folder).items()}
    assert after == before


def test_balanced_training_keeps_all_negatives_when_they_are_few():
    train = pd.DataFrame({"sample_id": list("abcde"), "rle": [["1 2"], ["1 2"], ["1 2"], [], []]})
    assert siim.balanced_training(train)["sample_id"].tolist() == list("abcde")
    train = pd.DataFrame({"sample_id": list("abcde"), "rle": [["1 2"], [], [], [], []]})
    assert len(siim.balanced_training(train)) == 2


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        (f"{image_id(3)}, 1 2 x 4", "non-integer token 'x'"),
        (f"{image_id(3)}, 1 2 3", "odd number of tokens (3)"),
        (f"{image_id(3)}, -2 3", "negative offset -2"),
        (f"{image_id(3)}, 4 0", "run length 0 < 1"),
        (f"{image_id(3)}, 40 9", f"runs end at pixel 49, past the {HEIGHT} x {WIDTH} image"),
        (f"{image_id(3)}, 1 2 44 2", f"runs end at pixel 49, past the {HEIGHT} x {WIDTH} image"),
        (" , 1 2", "empty ImageId"),
        (f"{image_id(3)},  ", "empty EncodedPixels"),
        ("1.2.276.0.7230010.3.1.4.8323329.999.1.1, -1", "1 of 21 ImageId(s) have no .dcm file"),
        (f"{image_id(3)}, 1 2, 3", "expected 2 fields, found 3"),
    ],
)
def test_malformed_rows_name_file_and_row(layout, bad_line, reason):
    folder, lines = layout
    write_lines(folder, lines[:3] + [bad_line] + lines[3:])
    with pytest.raises(DataError) as error:
        siim.load_splits(folder)
    assert str(error.value).startswith(f"{folder / LABELS}, row 5: {reason}")
    assert error.value.row == 5


def test_duplicated_dicom_is_reported_with_both_paths(layout):
    folder, _ = layout
    copy = folder / "dicom-images-train" / "elsewhere" / f"{image_id(4)}.dcm"
    copy.parent.mkdir()
    shutil.copy(dicom_path(folder, 4), copy)
    with pytest.raises(DataError, match=f"ImageId {image_id(4)} found 2 times") as error:
        siim.load_table(folder)
    assert str(copy) in str(error.value) and str(dicom_path(folder, 4).absolute()) in str(error.value)


def test_duplicates_of_unlisted_dicoms_are_ignored_and_check_lists_listed_ones(layout):
    folder, _ = layout
    unlisted = folder / "dicom-images-train" / "a" / "b" / "1.2.3.not-in-the-csv.dcm"
    shutil.copy(unlisted, folder / "dicom-images-train" / "1.2.3.not-in-the-csv.dcm")
    assert len(siim.load_table(folder)) == IMAGES
    shutil.copy(dicom_path(folder, 4), folder / "dicom-images-train" / f"{image_id(4)}.dcm")
    problems = siim.check(folder)
    assert len(problems) == 1 and f"ImageId {image_id(4)} found 2 times" in problems[0]


def test_unreadable_dicom_header_names_the_dicom(layout):
    folder, _ = layout
    dicom_path(folder, 6).write_bytes(b"not a dicom" * 30)
    with pytest.raises(DataError, match="cannot read the DICOM header") as error:
        siim.load_table(folder)
    assert error.value.file == str(dicom_path(folder, 6).absolute())


def test_missing_images_folder_and_csv(layout):
    folder, _ = layout
    shutil.rmtree(folder / "dicom-images-train")
    with pytest.raises(DataError, match="dicom-images-train: folder not found"):
        siim.load_table(folder)
    (folder / LABELS).unlink()
    with pytest.raises(DataError, match="train-rle.csv: file not found"):
        siim.load_table(folder)


def test_header_needs_both_columns(layout):
    folder, _ = layout
    (folder / LABELS).write_text("ImageId, Pixels\nx, -1\n")
    with pytest.raises(DataError, match=r"train-rle\.csv, row 1: missing column\(s\) \['EncodedPixels'\]"):
        siim.load_table(folder)


def test_check_accepts_a_valid_layout(layout):
    folder, _ = layout
    assert siim.check(folder) == []


def test_check_lists_every_kind_of_problem(layout):
    folder, lines = layout
    write_lines(folder, lines + [f"{image_id(3)}, 1 2 3", "1.2.9.no-dicom, -1", f"{image_id(7)}, 47 2"])
    dicom_path(folder, 6).write_bytes(b"garbage" * 40)
    problems = siim.check(folder)
    bad = len(lines) + 2
    assert any(f"row {bad}: odd number of tokens" in problem for problem in problems)
    assert any(f"row {bad + 1}" in problem and "have no .dcm file" in problem for problem in problems)
    assert any(f"row {bad + 2}: runs end at pixel 49" in problem for problem in problems)
    assert any("cannot read the DICOM header" in problem and image_id(6) in problem for problem in problems)
    assert len(problems) == 4


def test_check_never_raises(tmp_path):
    assert siim.check(tmp_path / "nothing") == [f"{tmp_path / 'nothing' / LABELS}: file not found"]
    (tmp_path / "only-csv").mkdir()
    write_lines(tmp_path / "only-csv", ["x, -1"])
    assert siim.check(tmp_path / "only-csv") == [f"{tmp_path / 'only-csv' / 'dicom-images-train'}: folder not found"]


def test_specs():
    (dataset,) = siim.medvlp_bench_datasets()
    (task,) = siim.medvlp_bench_tasks()
    assert (dataset.name, dataset.folder) == ("siim", "siim-acr-pneumothorax")
    assert dataset.citation and dataset.url and callable(dataset.write_synthetic)
    assert (task.name, task.dataset, task.protocol, task.target) == ("siim_seg", "siim", "segmentation", "mask")
    assert task.label_names == ("Pneumothorax",) and task.primary_metric == "dice" and task.load_mask is siim.load_mask
    assert "seed=0" in task.split_rule and "balanced" in task.split_rule
    # the reference's SIIM settings are the segmentation protocol's defaults: the task overrides none
    assert dict(task.hparams) == {}
    settings = resolved_settings(task)
    assert {name: settings[name] for name in ("lr", "weight_decay", "batch_size", "max_epochs", "patience",
                                              "monitor")} == {"lr": 5e-4, "weight_decay": 0.05, "batch_size": 8,
                                                              "max_epochs": 50, "patience": 10, "monitor": "val_loss"}


@pytest.fixture(scope="module")
def synthetic_twin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("siim") / "siim-acr-pneumothorax"
    write_siim(folder, 0, 0.05)
    return folder


def test_synthetic_twin_is_valid_and_balanced(synthetic_twin):
    assert siim.check(synthetic_twin) == []
    splits = siim.load_splits(synthetic_twin)
    assert sum(len(table) for _, table in splits.items()) < 60
    positive = splits.train["rle"].str.len() > 0
    assert positive.sum() == (~positive).sum() > 0
    row = splits.train[positive].iloc[0]
    mask = siim.load_mask(row)
    assert mask.shape == (256, 256) and mask.any()
    assert mask.shape == read_image(row["image_path"]).shape


def test_synthetic_twin_raw_layout(synthetic_twin):
    text = (synthetic_twin / LABELS).read_text().splitlines()
    assert text[0] == HEADER
    ids = [line.split(",")[0] for line in text[1:]]
    values = [line.split(",", 1)[1] for line in text[1:]]
    assert {" -1", "-1"} <= set(values)
    assert all(value.startswith(" ") for value in values if value.strip() != "-1")
    assert all(image.startswith("1.2.276.0.7230010.3.1.4.8323329.") for image in ids)
    assert len(ids) > len(set(ids))  # bilateral pneumothoraces: one row per lung
    positives = {image for image, value in zip(ids, values) if value.strip() != "-1"}
    assert 0.2 < len(positives) / len(set(ids)) < 0.5
    for path in (synthetic_twin / "dicom-images-train").rglob("*.dcm"):
        study, series = path.parent.parent.name, path.parent.name
        assert study.startswith("1.2.276.0.7230010.3.1.2.") and series.startswith("1.2.276.0.7230010.3.1.3.")
        assert path.parent.parent.parent == synthetic_twin / "dicom-images-train"


def test_synthetic_twin_masks_are_the_union_of_per_lung_instances():
    from medvlp_bench_plugins.datasets.siim_synthetic import instance_masks

    mask = np.zeros((4, 10), bool)
    mask[1:3, 1:3] = mask[0:2, 7:9] = True
    left, right = instance_masks(mask, 0.5)
    assert np.array_equal(left | right, mask) and not (left & right).any()
    assert left[:, 5:].sum() == 0 and right[:, :5].sum() == 0
    assert len(instance_masks(np.pad(np.ones((2, 2), bool), 1), 0.5)) == 2


def test_synthetic_twin_is_deterministic(tmp_path):
    write_siim(tmp_path / "a", 3, 0.005)
    write_siim(tmp_path / "b", 3, 0.005)
    assert (tmp_path / "a" / LABELS).read_text() == (tmp_path / "b" / LABELS).read_text()
    first = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*.dcm"))
    second = sorted(path.relative_to(tmp_path / "b") for path in (tmp_path / "b").rglob("*.dcm"))
    assert first == second and len(first) == 8
    assert (tmp_path / "a" / first[0]).read_bytes() == (tmp_path / "b" / first[0]).read_bytes()
