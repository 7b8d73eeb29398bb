"""RSNA detection and segmentation tasks: specs, the rsna_cls patient split, boxes, and masks filled from boxes at
the DICOM's size."""

from __future__ import annotations

import numpy as np
import pytest
from raw_layouts import rsna_patient, write_rsna

from medvlp_bench.api import write_dicom
from medvlp_bench_plugins.datasets import rsna
from medvlp_bench_plugins.protocols.detection import DETECTION_OPTIONS
from medvlp_bench_plugins.protocols.segmentation import SEGMENTATION_OPTIONS


@pytest.fixture
def layout(tmp_path):
    folder = tmp_path / "rsna-pneumonia"
    return folder, write_rsna(folder)


def tasks() -> dict:
    return {task.name: task for task in rsna.medvlp_bench_tasks()}


def test_specs():
    specs = tasks()
    assert list(specs) == ["rsna_cls", "rsna_det", "rsna_seg"]
    det, seg = specs["rsna_det"], specs["rsna_seg"]
    assert (det.dataset, det.protocol, det.target, det.primary_metric) == ("rsna", "detection", "boxes", "map")
    assert (seg.dataset, seg.protocol, seg.target, seg.primary_metric) == ("rsna", "segmentation", "mask", "dice")
    assert det.label_names == seg.label_names == ("Lung Opacity",)
    assert det.higher_is_better and seg.higher_is_better
    assert det.load_mask is None and seg.load_mask is rsna.load_mask
    assert det.split_rule == seg.split_rule == specs["rsna_cls"].split_rule
    # the reference's settings: detection's are the protocol's defaults; RSNA segmentation trains with batch 16
    assert dict(det.hparams) == {} and dict(seg.hparams) == {"batch_size": 16}
    detection = {option.name: option.default for option in DETECTION_OPTIONS}
    assert {name: detection[name] for name in ("lr", "lr_at_1pct", "weight_decay", "batch_size", "batch_size_at_1pct",
                                               "max_epochs", "patience", "head_width")} == {
        "lr": 5e-4, "lr_at_1pct": 2e-4, "weight_decay": 1e-6, "batch_size": 16, "batch_size_at_1pct": 8,
        "max_epochs": 50, "patience": 10, "head_width": "auto"}
    segmentation = {option.name: option.default for option in SEGMENTATION_OPTIONS}
    assert {name: segmentation[name] for name in ("lr", "weight_decay", "max_epochs", "patience", "monitor")} == {
        "lr": 5e-4, "weight_decay": 0.05, "max_epochs": 50, "patience": 10, "monitor": "val_loss"}


def test_same_patient_split_as_rsna_cls(layout):
    folder, _ = layout
    specs = tasks()
    reference = {name: table["sample_id"].tolist() for name, table in specs["rsna_cls"].load_splits(folder).items()}
    for name in ("rsna_det", "rsna_seg"):
        splits = specs[name].load_splits(folder)
        assert {part: table["sample_id"].tolist() for part, table in splits.items()} == reference


def test_detection_boxes_are_the_patients_boxes(layout):
    folder, written = layout
    splits = tasks()["rsna_det"].load_splits(folder)
    for _, table in splits.items():
        for sample_id, boxes in table[["sample_id", "boxes"]].itertuples(index=False):
            assert boxes == written["boxes"][sample_id]


def test_segmentation_masks_fill_the_boxes_at_the_dicom_size(layout):
    folder, written = layout
    task = tasks()["rsna_seg"]
    table = rsna.load_table(folder).set_index("sample_id")
    for index in (0, 1, 3, 6):
        patient = rsna_patient(index)
        mask = task.load_mask(table.loc[patient])
        assert mask.shape == (64, 64) and mask.dtype == bool
        expected = np.zeros((64, 64), bool)
        for k in range(len(written["boxes"][patient])):
            expected[8 + k:38 + k, 4 + index:24 + index + k] = True  # box [4 + i, 8 + k, 20 + k, 30]
        assert np.array_equal(mask, expected), patient
    assert not task.load_mask(table.loc[rsna_patient(1)]).any()


def test_mask_size_comes_from_the_header_without_decoding_pixels(tmp_path):
    path = tmp_path / "patient.dcm"
    write_dicom(path, np.zeros((48, 80), np.uint8), patient_id="p", sop_instance_uid="1.2.3")
    path.write_bytes(path.read_bytes()[:-1000])  # pixel data cut short: the header still gives the size
    mask = rsna.load_mask({"image_path": str(path), "boxes": [[70.0, 40.0, 20.0, 20.0]]})
    assert mask.shape == (48, 80) and mask[40:, 70:].all() and mask.sum() == 8 * 10


def test_boxes_mask_uses_pixel_centres_and_clips_to_the_image():
    mask = rsna.boxes_mask([[1.4, 0.6, 2.0, 1.0]], 4, 5)  # centres x in [1.4, 3.4): 1.5, 2.5; y in [0.6, 1.6): 1.5
    assert np.argwhere(mask).tolist() == [[1, 1], [1, 2]]
    assert rsna.boxes_mask([[-5.0, -5.0, 100.0, 100.0]], 3, 4).all()
    assert not rsna.boxes_mask([], 3, 4).any()
    overlapping = rsna.boxes_mask([[0, 0, 2, 2], [1, 1, 2, 2]], 4, 4)
    assert overlapping.sum() == 7
