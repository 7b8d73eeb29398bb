"""The synthetic dataset writers: real raw layouts, readable files, determinism and the completion marker."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder, read_image, read_synthetic_marker
from medvlp_bench.data.synthetic_store import MARKER
from medvlp_bench_plugins import synthetic
from medvlp_bench_plugins.datasets.chexpert_synthetic import write_chexpert
from medvlp_bench_plugins.datasets.covidx_synthetic import write_covidx
from medvlp_bench_plugins.datasets.mimic_cxr_synthetic import write_mimic_cxr
from medvlp_bench_plugins.datasets.rsna_synthetic import write_rsna

SCALE = 0.02
CHEXPERT_HEADER = [
    "Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly",
    "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax",
    "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices",
]
MIMIC_METADATA_HEADER = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]
MIMIC_CHEXPERT_HEADER = ["subject_id", "study_id", *sorted(CHEXPERT_HEADER[5:])]
LABEL_VALUES = {"1.0", "0.0", "-1.0", ""}


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def _write_twice(writer, tmp_path: Path, seed: int = 0) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    writer(first, seed, SCALE)
    writer(second, seed, SCALE)
    return first, second


def _assert_marker(folder: Path, seed: int) -> dict:
    marker = json.loads((folder / MARKER).read_text())
    assert marker["seed"] == seed and marker["scale"] == SCALE
    assert marker["generator"] == "medvlp-bench synthetic v2" and marker["counts"]
    assert read_synthetic_marker(folder) == marker
    return marker


def _lungs_darker_than_mediastinum(image: np.ndarray) -> bool:
    size = image.shape[0]
    row = int(0.4 * size)
    patch = lambda column: image[row - 4:row + 5, column - 4:column + 5].mean()
    return max(patch(int(0.27 * size)), patch(int(0.73 * size))) + 30 < patch(size // 2)


def test_rsna_layout_labels_boxes_and_dicoms(tmp_path):
    import pydicom

    folder, again = _write_twice(write_rsna, tmp_path)
    header, rows = _rows(folder / "stage_2_train_labels.csv")
    assert header == ["patientId", "x", "y", "width", "height", "Target"]
    class_header, classes = _rows(folder / "stage_2_detailed_class_info.csv")
    assert class_header == ["patientId", "class"] and len(classes) == len(rows)
    patients = {row["patientId"] for row in rows}
    assert len(patients) == synthetic.scaled(1500, SCALE) == _assert_marker(folder, 0)["counts"]["patients"]
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert all(re.fullmatch(uuid, patient) for patient in patients)
    for row, info in zip(rows, classes):
        assert row["patientId"] == info["patientId"]
        assert (row["Target"] == "1") == (info["class"] == "Lung Opacity")
        if row["Target"] == "1":
            x, y, w, h = (float(row[key]) for key in ("x", "y", "width", "height"))
            assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 256 and y + h <= 256
        else:
            assert row["Target"] == "0" and all(row[key] == "" for key in ("x", "y", "width", "height"))
            assert info["class"] in ("Normal", "No Lung Opacity / Not Normal")
    assert {row["Target"] for row in rows} == {"0", "1"}
    monochrome1 = 0
    for patient in sorted(patients):
        path = folder / "stage_2_train_images" / f"{patient}.dcm"
        image = read_image(path)
        assert image.shape == (256, 256) and image.dtype == np.uint8
        assert _lungs_darker_than_mediastinum(image), patient
        dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
        assert dataset.PatientID == patient
        monochrome1 += dataset.PhotometricInterpretation == "MONOCHROME1"
    assert monochrome1 >= 1
    assert (folder / "stage_2_train_labels.csv").read_bytes() == (again / "stage_2_train_labels.csv").read_bytes()
    write_rsna(tmp_path / "other", 1, SCALE)
    other = (tmp_path / "other" / "stage_2_train_labels.csv").read_bytes()
    assert (folder / "stage_2_train_labels.csv").read_bytes() != other


def test_chexpert_layout_paths_views_and_labels(tmp_path):
    folder, again = _write_twice(write_chexpert, tmp_path)
    marker = _assert_marker(folder, 0)
    for split, count in (("train", marker["counts"]["train_images"]), ("valid", marker["counts"]["valid_images"])):
        header, rows = _rows(folder / f"{split}.csv")
        assert header == CHEXPERT_HEADER and len(rows) == count
        for row in rows:
            assert re.fullmatch(rf"CheXpert-v1\.0-small/{split}/patient\d{{5}}/study\d+/view\d_(frontal|lateral)\.jpg",
                                row["Path"])
            image = read_image(folder / row["Path"].split("/", 1)[1])
            assert image.shape == (256, 256)
            lateral = row["Path"].endswith("lateral.jpg")
            assert row["Frontal/Lateral"] == ("Lateral" if lateral else "Frontal")
            assert row["AP/PA"] in (("",) if lateral else ("AP", "PA"))
            assert row["Sex"] in ("Male", "Female") and 18 <= int(row["Age"]) <= 90
            values = {row[name] for name in CHEXPERT_HEADER[5:]}
            assert values <= (LABEL_VALUES if split == "train" else {"1.0", "0.0"})
    _, train = _rows(folder / "train.csv")
    assert any(row["Frontal/Lateral"] == "Lateral" for row in train)
    assert any(row[name] == "-1.0" for row in train for name in CHEXPERT_HEADER[5:])
    train_patients = {row["Path"].split("/")[2] for row in train}
    valid_patients = {row["Path"].split("/")[2] for row in _rows(folder / "valid.csv")[1]}
    assert not train_patients & valid_patients
    for name in ("train.csv", "valid.csv"):
        assert (folder / name).read_bytes() == (again / name).read_bytes()


def test_covidx_layout_classes_and_patients(tmp_path):
    folder, again = _write_twice(write_covidx, tmp_path)
    marker = _assert_marker(folder, 0)
    patients = {}
    for split in ("train", "test"):
        lines = (folder / f"{split}_COVIDx9A.txt").read_text().splitlines()
        assert len(lines) == marker["counts"][f"{split}_images"]
        patients[split] = set()
        for line in lines:
            patient, filename, label, source = line.split(" ")
            assert label in ("normal", "pneumonia", "COVID-19")
            assert source in ("rsna", "cohen", "actmed", "sirm", "ricord", "bimcv")
            assert filename.endswith((".png", ".jpg"))
            assert read_image(folder / split / filename).shape == (256, 256)
            patients[split].add(patient)
        assert {line.split(" ")[2] for line in lines} == {"normal", "pneumonia", "COVID-19"}
        assert (folder / f"{split}_COVIDx9A.txt").read_bytes() == (again / f"{split}_COVIDx9A.txt").read_bytes()
    assert not patients["train"] & patients["test"]


def test_mimic_cxr_layout_ids_splits_reports_and_labels(tmp_path):
    folder, again = _write_twice(write_mimic_cxr, tmp_path)
    marker = _assert_marker(folder, 0)
    header, metadata = _rows(folder / "mimic-cxr-2.0.0-metadata.csv")
    assert header == MIMIC_METADATA_HEADER and len(metadata) == marker["counts"]["images"]
    split_header, splits = _rows(folder / "mimic-cxr-2.0.0-split.csv")
    assert split_header == ["dicom_id", "study_id", "subject_id", "split"]
    label_header, labels = _rows(folder / "mimic-cxr-2.0.0-chexpert.csv")
    assert label_header == MIMIC_CHEXPERT_HEADER and len(labels) == marker["counts"]["studies"]
    assert [row["dicom_id"] for row in splits] == [row["dicom_id"] for row in metadata]
    for row in metadata:
        subject, study, dicom = row["subject_id"], row["study_id"], row["dicom_id"]
        assert re.fullmatch(r"1\d{7}", subject) and re.fullmatch(r"5\d{7}", study)
        assert re.fullmatch(r"([0-9a-f]{8}-){4}[0-9a-f]{8}", dicom) and len(dicom) == 44
        assert row["ViewPosition"] in ("PA", "AP", "LATERAL", "LL")
        assert re.fullmatch(r"2[12]\d{6}", row["StudyDate"]) and re.fullmatch(r"\d{6}\.\d{3}", row["StudyTime"])
        study_dir = folder / "files" / f"p{subject[:2]}" / f"p{subject}"
        assert read_image(study_dir / f"s{study}" / f"{dicom}.jpg").shape == (256, 256)
        assert (study_dir / f"s{study}.txt").is_file()
    assert {row["ViewPosition"] for row in metadata} >= {"PA", "AP"}
    split_of_subject = {}
    for row in splits:
        assert split_of_subject.setdefault(row["subject_id"], row["split"]) == row["split"]
    studies_per_split = {name: {row["study_id"] for row in splits if row["split"] == name}
                         for name in ("train", "validate", "test")}
    assert all(len(studies) >= 3 for studies in studies_per_split.values())
    for row in labels:
        subject, study = row["subject_id"], row["study_id"]
        text = (folder / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}.txt").read_text()
        assert "FINAL REPORT" in text and "FINDINGS:" in text and "IMPRESSION:" in text
        stated = synthetic.label_report(text)
        for name in MIMIC_CHEXPERT_HEADER[2:]:
            assert row[name] in LABEL_VALUES
            assert row[name] == ("" if math.isnan(stated[name]) else f"{stated[name]:.1f}"), (name, text)
    for name in ("mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.0.0-split.csv", "mimic-cxr-2.0.0-chexpert.csv"):
        assert (folder / name).read_bytes() == (again / name).read_bytes()


@pytest.mark.parametrize("writer", [write_rsna, write_chexpert, write_covidx, write_mimic_cxr])
def test_rewriting_a_folder_removes_the_old_marker_first(tmp_path, writer):
    folder = tmp_path / "data"
    finish_synthetic_folder(begin_synthetic_folder(folder), 9, 1.0, {"images": 1})
    assert read_synthetic_marker(folder)["seed"] == 9
    begin_synthetic_folder(folder)
    assert read_synthetic_marker(folder) is None
    writer(folder, 3, 0.005)
    assert read_synthetic_marker(folder)["seed"] == 3


def test_object_cxr_annotations_use_the_challenge_type_codes_and_scale_points_to_the_image():
    from medvlp_bench_plugins.datasets.object_cxr_synthetic import _annotation

    objects = [("rectangle", [10.0, 20.0, 30.0, 40.0]), ("ellipse", [50.0, 50.0, 70.0, 60.0]),
               ("polygon", [5.0, 5.0, 25.0, 5.0, 15.0, 25.0])]
    # Object-CXR: 0 rectangle, 1 ellipse (its box), 2 polygon (vertices); points scaled then rounded
    assert _annotation(objects, 0.5, 2.0, 100, 200) == "0 5 40 15 80;1 25 100 35 120;2 2 10 12 10 8 50"
    assert _annotation([("rectangle", [10.0, 20.0, 10.4, 40.0])], 1.0, 1.0, 100, 100) is None
