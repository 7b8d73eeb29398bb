"""Tests of the vectorised COCO mAP: equal to pycocotools on the full set, and under resampling equal to
pycocotools on the resampled set written out image by image."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from medvlp_bench.statistics.bootstrap import evaluate_resamples, full_value, patient_counts, patient_index
from medvlp_bench.statistics.detection_map import MeanAPStatistic

THRESHOLDS = np.round(np.arange(0.40, 0.751, 0.05), 2)


def simulated_detections(n_images=60, seed=0):
    """Boxes near the true ones (some shifted, so matches change with the IoU threshold) plus false alarms."""
    rng = np.random.default_rng(seed)
    true_boxes, true_index, pred_boxes, pred_scores, pred_index = [], [], [], [], []
    for image in range(n_images):
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 80, size=2)
            box = np.array([x, y, x + rng.uniform(10, 40), y + rng.uniform(10, 40)])
            true_boxes.append(box)
            true_index.append(image)
            if rng.uniform() < 0.8:
                moved = box + rng.normal(scale=4, size=4)
                pred_boxes.append(np.r_[moved[:2], np.maximum(moved[2:], moved[:2] + 1)])
                pred_scores.append(rng.uniform(0.3, 1.0))
                pred_index.append(image)
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 80, size=2)
            pred_boxes.append(np.array([x, y, x + rng.uniform(5, 30), y + rng.uniform(5, 30)]))
            pred_scores.append(rng.uniform(0.05, 0.9))
            pred_index.append(image)
    return {
        "kind": np.array("detection"), "sample_id": np.arange(n_images).astype(str),
        "patient_id": np.arange(n_images).astype(str), "pred_boxes": np.array(pred_boxes),
        "pred_scores": np.array(pred_scores), "pred_index": np.array(pred_index),
        "true_boxes": np.array(true_boxes), "true_index": np.array(true_index),
        "iou_thresholds": THRESHOLDS, "score_threshold": np.array(0.05),
    }


def pycocotools_map(outputs, images):
    """pycocotools' mAP (area all, 100 detections) on the images ``images`` (repeats allowed: each copy is a new
    image)."""
    gt_images, annotations, detections = [], [], []
    for new_id, image in enumerate(images, start=1):
        gt_images.append({"id": new_id, "width": 200, "height": 200})
        for box in outputs["true_boxes"][outputs["true_index"] == image]:
            annotations.append({"id": len(annotations) + 1, "image_id": new_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                "area": (box[2] - box[0]) * (box[3] - box[1])})
        selected = outputs["pred_index"] == image
        for box, score in zip(outputs["pred_boxes"][selected], outputs["pred_scores"][selected]):
            detections.append({"image_id": new_id, "category_id": 1, "score": float(score),
                               "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": gt_images, "annotations": annotations, "categories": [{"id": 1}]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.params.iouThrs = THRESHOLDS
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_set_map_equals_pycocotools(seed):
    outputs = simulated_detections(seed=seed)
    statistic = MeanAPStatistic(outputs)
    assert full_value(statistic, 60) == pytest.approx(pycocotools_map(outputs, range(60)), abs=1e-6)


def test_more_than_100_predictions_per_image_are_cut_as_coco_does():
    outputs = simulated_detections(n_images=3, seed=4)
    rng = np.random.default_rng(5)
    extra = rng.uniform(0, 60, size=(150, 2))
    outputs["pred_boxes"] = np.r_[outputs["pred_boxes"], np.c_[extra, extra + 20]]
    outputs["pred_scores"] = np.r_[outputs["pred_scores"], rng.uniform(0.05, 1, size=150)]
    outputs["pred_index"] = np.r_[outputs["pred_index"], np.zeros(150, dtype=int)]
    assert full_value(MeanAPStatistic(outputs), 3) == pytest.approx(pycocotools_map(outputs, range(3)), abs=1e-6)


def test_resampled_map_equals_pycocotools_on_the_written_out_resample():
    outputs = simulated_detections(seed=3)
    values = evaluate_resamples([MeanAPStatistic(outputs)], outputs["patient_id"], n_resamples=6, seed=11)[0]
    index, n_patients = patient_index(outputs["patient_id"])
    counts = patient_counts(n_patients, 6, 11)
    for b in range(6):
        images = np.repeat(np.arange(60), counts[b][index])
        assert values[b] == pytest.approx(pycocotools_map(outputs, images), abs=1e-6)
