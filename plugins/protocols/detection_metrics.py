"""Detection mAP as the reference protocol reports it, and as it should be reported.

Both are COCO evaluations (one class, box format xyxy, area range "all", at most 100 detections per image, highest
scores first) averaged over the IoU thresholds 0.40, 0.45, ..., 0.75: ``AP = mean_t AP_t``, where ``AP_t`` is the
101-point interpolated area under the precision-recall curve at IoU threshold t,
``AP_t = mean over r in {0, 0.01, ..., 1} of max{precision(r') : r' >= r}`` (0 where recall r is never reached).
They are computed by faster-coco-eval's ``COCOeval_faster`` (a C++ re-implementation of pycocotools' COCOeval) on
float64 boxes, and equal pycocotools' COCOeval to 1e-6, including when a recall lands exactly on the 101-point
grid (tests check both). torchmetrics' ``MeanAveragePrecision`` is not used: it builds that grid in float32 and
differs from pycocotools by up to 2e-3 when recalls fall on it (20, 25 or 50 true boxes). Values are fractions in
[0, 1].

* ``map``: over ALL evaluated images and every prediction given (the detection protocol keeps scores >= 0.05,
  so the precision-recall curve is not cut short). A ground-truth box in an image without predictions is a miss
  (lowers recall); a prediction in an image without boxes is a false positive (lowers precision). The primary
  metric.
* ``map_reference``: the reference code's variant: only predictions with score >= ``reference_score_threshold``
  (0.5, the reference's confidence threshold) count, and only images with >= 1 such prediction AND >= 1
  ground-truth box enter the metric, so missed images and false alarms on negative images cost nothing
  (optimistic). 0 when no image qualifies.
* ``map_50``: AP at IoU 0.5 over all images (as ``map``).

The inputs are flat arrays, the layout of the protocol's per-sample outputs: ``pred_boxes`` (M, 4) xyxy,
``pred_scores`` (M,), ``pred_index`` (M,) image index; ``true_boxes`` (K, 4), ``true_index`` (K,); ``n_images``.
IoU is invariant to a uniform scaling and a translation of both boxes, so the metrics are the same whether boxes
are given in original or in letterboxed pixels (the area ranges would differ, but only "all" is used).
"""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np
import torch

#: the reference code's confidence threshold, applied to predictions for ``map_reference`` only
REFERENCE_SCORE_THRESHOLD = 0.5
#: 0.40, 0.45, ..., 0.75
IOU_THRESHOLDS = tuple(round(0.40 + 0.05 * step, 2) for step in range(8))
#: COCO's per-image detection limit (the highest-scored ones count)
MAX_DETECTIONS = 100

METRIC_DEFINITIONS = {
    "map": "COCO mAP over IoU 0.40:0.05:0.75, all test images (images without predictions or boxes count)",
    "map_reference": "as map, only predictions with score >= 0.5 and only images with >= 1 such prediction and "
                     ">= 1 ground-truth box (reference code)",
    "map_50": "COCO AP at IoU 0.50, all test images",
}


def _coco_annotations(boxes: np.ndarray, index: np.ndarray, scores: np.ndarray | None) -> list[dict]:
    """COCO annotation / result dicts ([x, y, w, h] boxes, image ids = index + 1) of xyxy boxes."""
    rows = []
    for number, ((x1, y1, x2, y2), image) in enumerate(zip(boxes.tolist(), index.tolist())):
        width, height = x2 - x1, y2 - y1
        row = {"id": number + 1, "image_id": image + 1, "category_id": 1, "bbox": [x1, y1, width, height],
               "area": width * height, "iscrowd": 0}
        if scores is not None:
            row["score"] = float(scores[number])
        rows.append(row)
    return rows


def coco_average_precision(pred_boxes, pred_scores, pred_index, true_boxes, true_index, n_images: int,
                           iou_thresholds: Sequence[float] = IOU_THRESHOLDS) -> np.ndarray:
    """(T,) COCO AP at each IoU threshold (module docstring); NaN where no image has a true box."""
    from faster_coco_eval import COCO, COCOeval_faster

    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    true_boxes = np.asarray(true_boxes, dtype=np.float64).reshape(-1, 4)
    ground_truth = {
        "images": [{"id": image + 1} for image in range(n_images)],
        "annotations": _coco_annotations(true_boxes, np.asarray(true_index, dtype=np.int64), None),
        "categories": [{"id": 1}],
    }
    results = _coco_annotations(pred_boxes, np.asarray(pred_index, dtype=np.int64),
                                np.asarray(pred_scores, dtype=np.float64))
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(ground_truth)
        evaluation = COCOeval_faster(truth, truth.loadRes(results), "bbox", print_function=lambda *args: None)
        evaluation.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
        evaluation.params.maxDets = [1, 10, MAX_DETECTIONS]
        evaluation.evaluate()
        evaluation.accumulate()
    # precision: (T, R recall points, K classes, A area ranges, M max-detection settings); -1 = no true box
    precision = evaluation.eval["precision"][:, :, 0, 0, -1]
    return np.array([row.mean() if (row > -1).all() else np.nan for row in precision])


def detection_scores(pred_boxes, pred_scores, pred_index, true_boxes, true_index, n_images: int,
                     reference_score_threshold: float = REFERENCE_SCORE_THRESHOLD,
                     iou_thresholds: Sequence[float] = IOU_THRESHOLDS) -> dict[str, float]:
    """``{"map", "map_reference", "map_50"}`` (module docstring) of flat prediction and truth arrays."""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    pred_index = np.asarray(pred_index, dtype=np.int64).reshape(-1)
    true_index = np.asarray(true_index, dtype=np.int64).reshape(-1)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    at_50 = np.flatnonzero(np.isclose(thresholds, 0.5))
    if at_50.size != 1:
        raise ValueError(f"the IoU thresholds {tuple(iou_thresholds)} must include 0.5 once (for map_50)")
    per_threshold = coco_average_precision(pred_boxes, pred_scores, pred_index, true_boxes, true_index, n_images,
                                           thresholds)
    if np.isnan(per_threshold).any():
        overall, at_half = 0.0, 0.0
    else:
        overall, at_half = float(per_threshold.mean()), float(per_threshold[at_50[0]])
    return {"map": overall, "map_reference": reference_map(pred_boxes, pred_scores, pred_index, true_boxes,
                                                           true_index, reference_score_threshold, thresholds),
            "map_50": at_half}


def reference_map(pred_boxes, pred_scores, pred_index, true_boxes, true_index, reference_score_threshold: float,
                  iou_thresholds: Sequence[float] = IOU_THRESHOLDS) -> float:
    """``map_reference``: mAP of the predictions scored >= the threshold on the images with >= 1 such prediction
    and >= 1 true box (images renumbered); 0 when no image qualifies."""
    confident = pred_scores >= reference_score_threshold
    both = np.intersect1d(pred_index[confident], true_index)
    if both.size == 0:
        return 0.0
    kept_pred = confident & np.isin(pred_index, both)
    kept_true = np.isin(true_index, both)
    per_threshold = coco_average_precision(
        pred_boxes[kept_pred], pred_scores[kept_pred], np.searchsorted(both, pred_index[kept_pred]),
        np.asarray(true_boxes, dtype=np.float64).reshape(-1, 4)[kept_true], np.searchsorted(both, true_index[kept_true]),
        int(both.size), iou_thresholds)
    return float(per_threshold.mean())


class DetectionMeanAP:
    """Accumulates per-image predictions and targets in float64; ``compute()`` -> ``{"map", "map_reference",
    "map_50"}``; ``arrays()`` -> the flat arrays (module docstring) of everything accumulated, images numbered in
    update order.

    ``update(preds, targets)`` takes per image ``{"boxes" (K, 4) xyxy, "scores" (K,), ...}`` and
    ``{"boxes" (G, 4), ...}`` (tensors or arrays).
    """

    def __init__(self, iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
                 reference_score_threshold: float = REFERENCE_SCORE_THRESHOLD):
        self.iou_thresholds = tuple(iou_thresholds)
        self.reference_score_threshold = reference_score_threshold
        self.reset()

    def reset(self) -> None:
        self.n_images = 0
        self._pred_boxes, self._pred_scores, self._pred_index = [], [], []
        self._true_boxes, self._true_index = [], []

    def update(self, preds: list[dict], targets: list[dict]) -> None:
        for prediction, target in zip(preds, targets, strict=True):
            boxes = _float64(prediction["boxes"]).reshape(-1, 4)
            truth = _float64(target["boxes"]).reshape(-1, 4)
            self._pred_boxes.append(boxes)
            self._pred_scores.append(_float64(prediction["scores"]).reshape(-1))
            self._pred_index.append(np.full(len(boxes), self.n_images, dtype=np.int64))
            self._true_boxes.append(truth)
            self._true_index.append(np.full(len(truth), self.n_images, dtype=np.int64))
            self.n_images += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """``pred_boxes``, ``pred_scores``, ``pred_index``, ``true_boxes``, ``true_index`` of all updates."""
        def joined(parts, shape):
            return np.concatenate(parts) if parts else np.zeros(shape)

        return {
            "pred_boxes": joined(self._pred_boxes, (0, 4)),
            "pred_scores": joined(self._pred_scores, (0,)),
            "pred_index": joined(self._pred_index, (0,)).astype(np.int64),
            "true_boxes": joined(self._true_boxes, (0, 4)),
            "true_index": joined(self._true_index, (0,)).astype(np.int64),
        }

    def compute(self) -> dict[str, float]:
        return detection_scores(**self.arrays(), n_images=self.n_images,
                                reference_score_threshold=self.reference_score_threshold,
                                iou_thresholds=self.iou_thresholds)


def _float64(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)
