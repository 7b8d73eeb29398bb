"""Speed of the vectorised cluster bootstrap against a straightforward loop over resamples.

For each metric, a simulated test set of ``--samples`` images (default 5,000, one patient per two images for
the classification sets) gets ``--resamples`` (default 1,000) cluster-bootstrap resamples. The vectorised path
(:func:`medvlp_bench.statistics.bootstrap.bootstrap_interval`) is timed in full; the straightforward path writes
each resample out image by image and scores it with the field's reference implementation (sklearn's
``roc_auc_score`` and ``accuracy_score``, numpy's mean, pycocotools' COCOeval), on the first ``--loop-resamples``
resamples only (it is slow); its time is scaled to all resamples, and its values are checked to equal the
vectorised ones on those resamples. Prints seconds per record (interval of the primary metric) and the ratio.

    python benchmarks/perf/bootstrap_speed.py [--samples 5000] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import accuracy_score, roc_auc_score

from medvlp_bench.statistics.bootstrap import (
    AccuracyStatistic,
    AurocStatistic,
    MeanStatistic,
    bootstrap_interval,
    evaluate_resamples,
    patient_counts,
    patient_index,
)
from medvlp_bench.statistics.detection_map import MeanAPStatistic

IOU_THRESHOLDS = np.round(np.arange(0.40, 0.751, 0.05), 2)


def classification_set(n, labels, rng):
    target = rng.integers(0, 2, size=(n, labels))
    return target, rng.normal(size=(n, labels)) + target


def detection_set(n, rng):
    """About a third of the images hold 1-3 boxes; each box is found (shifted) with probability 0.7, and every
    image gets 0-4 false alarms: about 3 predictions per image."""
    true_boxes, true_index, pred_boxes, pred_scores, pred_index = [], [], [], [], []
    for image in range(n):
        for _ in range(rng.integers(1, 4) if rng.uniform() < 0.33 else 0):
            x, y = rng.uniform(0, 800, size=2)
            box = np.array([x, y, x + rng.uniform(50, 300), y + rng.uniform(50, 300)])
            true_boxes.append(box)
            true_index.append(image)
            if rng.uniform() < 0.7:
                moved = box + rng.normal(scale=20, size=4)
                pred_boxes.append(np.r_[moved[:2], np.maximum(moved[2:], moved[:2] + 1)])
                pred_scores.append(rng.uniform(0.2, 1.0))
                pred_index.append(image)
        for _ in range(rng.integers(0, 5)):
            x, y = rng.uniform(0, 800, size=2)
            pred_boxes.append(np.array([x, y, x + rng.uniform(30, 200), y + rng.uniform(30, 200)]))
            pred_scores.append(rng.uniform(0.05, 0.8))
            pred_index.append(image)
    ids = np.arange(n).astype(str)
    return {"kind": np.array("detection"), "sample_id": ids, "patient_id": ids,
            "pred_boxes": np.array(pred_boxes), "pred_scores": np.array(pred_scores),
            "pred_index": np.array(pred_index), "true_boxes": np.array(true_boxes), "true_index": np.array(true_index),
            "iou_thresholds": IOU_THRESHOLDS, "score_threshold": np.array(0.05)}


def coco_map(outputs, images):
    """pycocotools' mAP on the written-out resample ``images`` (each copy a new image)."""
    gt_images, annotations, detections = [], [], []
    true_order = np.argsort(outputs["true_index"], kind="stable")
    true_starts = np.searchsorted(outputs["true_index"][true_order], np.arange(len(outputs["sample_id"]) + 1))
    pred_order = np.argsort(outputs["pred_index"], kind="stable")
    pred_starts = np.searchsorted(outputs["pred_index"][pred_order], np.arange(len(outputs["sample_id"]) + 1))
    for new_id, image in enumerate(images, start=1):
        gt_images.append({"id": new_id})
        for box in outputs["true_boxes"][true_order[true_starts[image]:true_starts[image + 1]]]:
            annotations.append({"id": len(annotations) + 1, "image_id": new_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                "area": (box[2] - box[0]) * (box[3] - box[1])})
        for row in pred_order[pred_starts[image]:pred_starts[image + 1]]:
            box = outputs["pred_boxes"][row]
            detections.append({"image_id": new_id, "category_id": 1, "score": float(outputs["pred_scores"][row]),
                               "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": gt_images, "annotations": annotations, "categories": [{"id": 1}]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluation.params.iouThrs = IOU_THRESHOLDS
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluation.params.maxDets = [100]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"]
    return float(precision[precision > -1].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--loop-resamples", type=int, default=20, help="resamples the slow loop runs (per metric)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.samples
    paired_patients = np.array([f"p{i // 2}" for i in range(n)])
    binary_target, binary_score = classification_set(n, 1, rng)
    multi_target, multi_score = classification_set(n, 5, rng)
    classes = rng.integers(0, 3, size=n)
    class_scores = rng.normal(size=(n, 3)) + np.eye(3)[classes]
    dice = rng.uniform(size=n)
    detection = detection_set(n, rng)

    def auroc_loop(target, score):
        return lambda images: np.mean([roc_auc_score(target[images, k], score[images, k])
                                       for k in range(target.shape[1]) if len(set(target[images, k])) == 2])

    cases = [
        ("AUROC, binary", AurocStatistic(binary_target, binary_score), paired_patients,
         auroc_loop(binary_target, binary_score)),
        ("AUROC, macro over 5 labels", AurocStatistic(multi_target, multi_score), paired_patients,
         auroc_loop(multi_target, multi_score)),
        ("accuracy, 3 classes", AccuracyStatistic(classes, class_scores), paired_patients,
         lambda images: accuracy_score(classes[images], class_scores[images].argmax(axis=1))),
        ("Dice, per-image mean", MeanStatistic(dice), paired_patients, lambda images: dice[images].mean()),
        ("mAP, IoU 0.40:0.05:0.75", None, detection["patient_id"], lambda images: coco_map(detection, images)),
    ]
    print(f"{n} test images, {args.resamples} cluster-bootstrap resamples; the loop runs {args.loop_resamples} "
          "resamples per metric, its time scaled to all")
    print(f"{'metric':<28} {'vectorised s/record':>20} {'loop s/record':>14} {'ratio':>8}  max |difference|")
    for name, statistic, patients, loop in cases:
        start = time.perf_counter()
        if statistic is None:  # mAP: the per-image matching is part of the record's cost
            statistic = MeanAPStatistic(detection)
        bootstrap_interval(statistic, patients, args.resamples, seed=0)
        vectorised = time.perf_counter() - start
        values = evaluate_resamples([statistic], patients, args.loop_resamples, seed=0)[0]
        index, n_patients = patient_index(patients)
        counts = patient_counts(n_patients, args.loop_resamples, seed=0)
        start = time.perf_counter()
        looped = [loop(np.repeat(np.arange(n), counts[b][index])) for b in range(args.loop_resamples)]
        per_loop = (time.perf_counter() - start) / args.loop_resamples
        difference = float(np.max(np.abs(np.asarray(looped) - values)))
        total_loop = per_loop * (args.resamples + 1)
        print(f"{name:<28} {vectorised:>20.3f} {total_loop:>14.1f} {total_loop / vectorised:>7.1f}x  {difference:.1e}")


if __name__ == "__main__":
    main()
