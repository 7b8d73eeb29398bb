"""Detection mAP as the reference protocol reports it, and as it should be reported.

Both come from torchmetrics' ``MeanAveragePrecision`` (COCO evaluation, box format xyxy, area range "all",
at most 100 detections per image), averaged over the IoU thresholds 0.40, 0.45, ..., 0.75; with one class,
``AP = mean_t AP_t`` where ``AP_t`` is the 101-point interpolated area under the precision-recall curve at IoU
threshold t. Values are fractions in [0, 1].

* ``map``: over ALL evaluated images and every prediction given (the detection protocol keeps scores >= 0.05,
  so the precision-recall curve is not cut short). A ground-truth box in an image without predictions is a miss
  (lowers recall); a prediction in an image without boxes is a false positive (lowers precision). The primary
  metric.
* ``map_reference``: the reference code's variant: only predictions with score >= ``reference_score_threshold``
  (0.5, the reference's confidence threshold) count, and only images with >= 1 such prediction AND >= 1
  ground-truth box enter the metric, so missed images and false alarms on negative images cost nothing
  (optimistic). 0 when no image qualifies.
* ``map_50``: AP at IoU 0.5 over all images (as ``map``).

IoU is invariant to a uniform scaling and a translation of both boxes, so the metrics are the same whether boxes
are compared in original or in letterboxed pixels (the area ranges would differ, but only "all" is used).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision

#: the reference code's confidence threshold, applied to predictions for ``map_reference`` only
REFERENCE_SCORE_THRESHOLD = 0.5
#: 0.40, 0.45, ..., 0.75
IOU_THRESHOLDS = tuple(round(0.40 + 0.05 * step, 2) for step in range(8))

METRIC_DEFINITIONS = {
    "map": "COCO mAP over IoU 0.40:0.05:0.75, all test images (images without predictions or boxes count)",
    "map_reference": "as map, only predictions with score >= 0.5 and only images with >= 1 such prediction and "
                     ">= 1 ground-truth box (reference code)",
    "map_50": "COCO AP at IoU 0.50, all test images",
}


def _mean_average_precision(iou_thresholds: Sequence[float]) -> MeanAveragePrecision:
    """torchmetrics' COCO mAP on the ``faster_coco_eval`` backend (the same numbers as pycocotools, which the tests
    check, about 5x faster to compute: validation computes it every epoch)."""
    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=list(iou_thresholds),
                                backend="faster_coco_eval")


class DetectionMeanAP(nn.Module):
    """Accumulates per-image predictions and targets; ``compute()`` -> ``{"map", "map_reference", "map_50"}``.

    ``update(preds, targets)`` takes torchmetrics' format: per image ``{"boxes" (K, 4), "scores" (K,),
    "labels" (K,)}`` and ``{"boxes" (G, 4), "labels" (G,)}``.
    """

    def __init__(self, iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
                 reference_score_threshold: float = REFERENCE_SCORE_THRESHOLD):
        super().__init__()
        self.all_images = _mean_average_precision(iou_thresholds)
        self.reference = _mean_average_precision(iou_thresholds)
        self.reference_score_threshold = reference_score_threshold
        self.reference_images = 0

    def update(self, preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> None:
        self.all_images.update(preds, targets)
        confident = [{name: value[p["scores"] >= self.reference_score_threshold] for name, value in p.items()}
                     for p in preds]
        both = [i for i, (p, t) in enumerate(zip(confident, targets)) if len(p["boxes"]) and len(t["boxes"])]
        if both:
            self.reference.update([confident[i] for i in both], [targets[i] for i in both])
            self.reference_images += len(both)

    def compute(self) -> dict[str, float]:
        overall = self.all_images.compute()
        reference = float(self.reference.compute()["map"]) if self.reference_images else 0.0
        return {"map": float(overall["map"]), "map_reference": reference, "map_50": float(overall["map_50"])}

    def reset(self) -> None:
        self.all_images.reset()
        self.reference.reset()
        self.reference_images = 0
