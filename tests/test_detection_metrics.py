"""Detection mAP: ``map`` equals pycocotools' COCOeval over IoU 0.40:0.05:0.75 on all images; ``map_reference``
equals the same evaluation restricted to predictions scored >= 0.5 and to images with >= 1 such prediction and
>= 1 ground-truth box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from coco_reference import cocoeval_stats

from medvlp_bench_plugins.protocols.detection_metrics import IOU_THRESHOLDS, DetectionMeanAP, detection_scores

# per image: ground-truth boxes and (box, score) predictions, xyxy pixels
CASE = {
    1: ([[10, 10, 50, 50], [60, 60, 90, 100]],
        [([12, 11, 50, 52], 0.9), ([60, 64, 92, 110], 0.8), ([0, 0, 8, 8], 0.7)]),
    2: ([[20, 20, 40, 60]], []),  # a box nobody found
    3: ([], [([30, 30, 70, 70], 0.95)]),  # a false alarm on a negative image
    4: ([[5, 5, 45, 45]], [([10, 10, 50, 50], 0.6), ([100, 100, 120, 120], 0.85)]),
    5: ([], []),
    6: ([[30, 30, 60, 60], [70, 70, 90, 90], [100, 10, 120, 30]],
        [([31, 30, 60, 62], 0.3)]),  # one found, but below the reference's threshold 0.5
}
# 7 ground-truth boxes: recalls k / 7 never fall on the 101-point recall grid (the grid cases are below)


def _confident(case, threshold=0.5):
    """The case with predictions scored below ``threshold`` dropped."""
    return {k: (gt, [(box, score) for box, score in predictions if score >= threshold])
            for k, (gt, predictions) in case.items()}


def _tensor_format(case):
    preds, targets = [], []
    for gt, predictions in case.values():
        boxes = torch.tensor([box for box, _ in predictions], dtype=torch.float32).reshape(-1, 4)
        scores = torch.tensor([score for _, score in predictions], dtype=torch.float32)
        preds.append({"boxes": boxes, "scores": scores, "labels": torch.zeros(len(scores), dtype=torch.long)})
        gt_boxes = torch.tensor(gt, dtype=torch.float32).reshape(-1, 4)
        targets.append({"boxes": gt_boxes, "labels": torch.zeros(len(gt_boxes), dtype=torch.long)})
    return preds, targets


def _grid_case(n_boxes: int, seed: int):
    """One true box per image, a jittered hit on each and a false alarm on about half, random scores: with 20, 25
    or 50 true boxes recalls k / n land exactly on the 101-point recall grid."""
    rng = np.random.default_rng(seed)
    case = {}
    for image in range(1, n_boxes + 1):
        x, y = rng.uniform(0, 100, 2)
        w, h = rng.uniform(10, 40, 2)
        jitter = rng.normal(0, 4, 4)
        predictions = [([x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3]], float(rng.uniform()))]
        if rng.uniform() < 0.5:
            predictions.append(([x + 50, y + 50, x + 70, y + 70], float(rng.uniform())))
        case[image] = ([[x, y, x + w, y + h]], predictions)
    return case


def _cocoeval_map(case) -> float:
    return float(cocoeval_stats(case)[0])


def test_thresholds():
    assert IOU_THRESHOLDS == (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)


def test_map_is_cocoeval_over_all_images_and_reference_over_images_with_both():
    metric = DetectionMeanAP()
    preds, targets = _tensor_format(CASE)
    metric.update(preds[:2], targets[:2])
    metric.update(preds[2:], targets[2:])
    scores = metric.compute()
    expected_all = _cocoeval_map(CASE)
    expected_reference = _cocoeval_map({k: v for k, v in _confident(CASE).items() if v[0] and v[1]})
    assert scores["map"] == pytest.approx(expected_all, abs=1e-6)
    assert scores["map_reference"] == pytest.approx(expected_reference, abs=1e-6)
    assert 0 <= scores["map"] < scores["map_reference"] <= 1
    assert 0 <= scores["map_50"] <= 1


def test_reset_and_no_qualifying_image():
    metric = DetectionMeanAP()
    preds, targets = _tensor_format(CASE)
    metric.update(preds, targets)
    metric.compute()
    metric.reset()
    metric.update([preds[1]], [targets[1]])  # a box, no prediction
    assert metric.compute() == {"map": 0.0, "map_reference": 0.0, "map_50": 0.0}


@pytest.mark.parametrize("n_boxes", [20, 25, 50])
@pytest.mark.parametrize("seed", [0, 1])
def test_map_equals_pycocotools_when_recalls_land_on_the_recall_grid(n_boxes, seed):
    case = _grid_case(n_boxes, seed)
    metric = DetectionMeanAP()
    metric.update(*_tensor_format(case))
    scores = metric.compute()
    # the boxes as the metric sees them (float32 tensors) so that both evaluate the very same numbers
    stats = cocoeval_stats({image: ([np.float32(gt).tolist() for gt in truth],
                                     [(np.float32(box).tolist(), float(np.float32(score))) for box, score in preds])
                             for image, (truth, preds) in case.items()})
    assert scores["map"] == pytest.approx(stats[0], abs=1e-6)
    assert scores["map_50"] == pytest.approx(stats[1], abs=1e-6)


def test_the_flat_arrays_give_the_same_scores_as_the_accumulator():
    metric = DetectionMeanAP()
    metric.update(*_tensor_format(CASE))
    arrays = metric.arrays()
    assert arrays["pred_index"].tolist() == [0, 0, 0, 2, 3, 3, 5]
    assert arrays["true_index"].tolist() == [0, 0, 1, 3, 5, 5, 5]
    assert detection_scores(**arrays, n_images=len(CASE)) == metric.compute()
