"""pycocotools' COCOeval as the independent reference for the detection metrics (used by several test modules)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from medvlp_bench_plugins.protocols.detection_metrics import IOU_THRESHOLDS


def cocoeval_stats(case, iou_thresholds=IOU_THRESHOLDS) -> np.ndarray:
    """COCOeval's summary of ``case`` ({image id: (true xyxy boxes, [(xyxy box, score), ...])}) over
    ``iou_thresholds``: [0] AP averaged over the thresholds, [1] AP at IoU 0.5 (area all, maxDets 100)."""
    images, annotations, results = [], [], []
    for image_id, (truth, predictions) in case.items():
        images.append({"id": image_id, "width": 128, "height": 128})
        for x1, y1, x2, y2 in truth:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for (x1, y1, x2, y2), score in predictions:
            results.append({"image_id": image_id, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1}]}
        ground_truth.createIndex()
        evaluation = COCOeval(ground_truth, ground_truth.loadRes(results) if results else COCO(), "bbox")
        evaluation.params.iouThrs = np.array(iou_thresholds)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


def case_from_outputs(outputs) -> dict:
    """A detection protocol's per-sample outputs as a ``cocoeval_stats`` case (image ids 1..N)."""
    case = {image + 1: ([], []) for image in range(len(outputs["sample_id"]))}
    for box, image in zip(outputs["true_boxes"].tolist(), outputs["true_index"].tolist()):
        case[image + 1][0].append(box)
    for box, score, image in zip(outputs["pred_boxes"].tolist(), outputs["pred_scores"].tolist(),
                                 outputs["pred_index"].tolist()):
        case[image + 1][1].append((box, score))
    return case
