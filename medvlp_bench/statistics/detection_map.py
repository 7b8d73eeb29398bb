"""COCO mean average precision (one class, area "all", at most 100 detections per image) from per-image matches
computed once, evaluated under bootstrap weights for all resamples at once.

Matching (as pycocotools' ``evaluateImg``), per image and IoU threshold t: predictions sorted by descending score
(stable), the first 100 kept; each in turn is matched to the not yet matched true box of highest IoU if that IoU
is >= min(t, 1 - 1e-10) (ties: the later box), else it is a false positive. Accumulation (as ``accumulate``): all
kept predictions sorted by descending score (stable, images in order), ``tp_j``, ``fp_j`` the cumulative counts,
``recall_j = tp_j / G`` (G true boxes), ``precision_j = tp_j / (tp_j + fp_j + eps)``, the precision made
non-increasing from the right; ``AP_t`` is its mean at the 101 recalls 0, 0.01, ..., 1 (the precision at the
first point whose recall reaches r, 0 where none does); ``mAP = mean_t AP_t``. Undefined (NaN) when G = 0.

Under weights (image i counted ``w_i`` times) the same curve is computed without repeating anything: only the
true positives' points can set an interpolated precision (a false positive keeps the recall and lowers the
precision of the point before it), so the curve is evaluated at the true positives only, with
``tp_m = sum_{m' <= m} w_{img(m')}`` and ``fp_m`` = the weighted number of false positives ranked before
true positive m (one sparse product per threshold), ``G = sum_i w_i g_i``. Copies of one image's predictions
have equal scores and sit side by side, which leaves the interpolated curve of the repeated set unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

#: COCO's per-image detection limit and recall points
MAX_DETECTIONS = 100
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(A, B) IoU of x1, y1, x2, y2 boxes; area = (x2 - x1)(y2 - y1), as COCO's for x, y, w, h boxes."""
    width = np.clip(np.minimum(first[:, None, 2], second[None, :, 2]) - np.maximum(first[:, None, 0],
                    second[None, :, 0]), 0, None)
    height = np.clip(np.minimum(first[:, None, 3], second[None, :, 3]) - np.maximum(first[:, None, 1],
                     second[None, :, 1]), 0, None)
    inter = width * height
    area_first = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    area_second = (second[:, 2] - second[:, 0]) * (second[:, 3] - second[:, 1])
    union = area_first[:, None] + area_second[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_image(iou: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(T, D) bool: whether each prediction (rows of ``iou``, in descending score order) is a true positive at
    each threshold, by COCO's greedy matching (see the module docstring)."""
    n_pred, n_true = iou.shape
    matched = np.zeros((len(thresholds), n_pred), dtype=bool)
    if not n_true:
        return matched
    limits = np.minimum(thresholds, 1 - 1e-10)
    taken = np.zeros((len(thresholds), n_true), dtype=bool)
    candidates = np.flatnonzero(iou.max(axis=1) >= limits.min())
    for pred in candidates:
        open_iou = np.where(taken, -1.0, iou[pred][None, :])
        best = n_true - 1 - np.argmax(open_iou[:, ::-1], axis=1)
        hit = open_iou[np.arange(len(thresholds)), best] >= limits
        matched[hit, pred] = True
        taken[np.flatnonzero(hit), best[hit]] = True
    return matched


class MeanAPStatistic:
    """COCO mAP of detection outputs (arrays of :mod:`medvlp_bench.sample_outputs`) over ``thresholds``
    (default: the outputs' ``iou_thresholds``), evaluated under (B, N) per-image weights."""

    def __init__(self, outputs: dict, thresholds=None):
        n_images = len(outputs["sample_id"])
        self.thresholds = np.asarray(outputs["iou_thresholds"] if thresholds is None else thresholds, dtype=float)
        pred_index = np.asarray(outputs["pred_index"], dtype=np.int64)
        scores = np.asarray(outputs["pred_scores"], dtype=np.float64)
        boxes = np.asarray(outputs["pred_boxes"], dtype=np.float64).reshape(-1, 4)
        true_index = np.asarray(outputs["true_index"], dtype=np.int64)
        true_boxes = np.asarray(outputs["true_boxes"], dtype=np.float64).reshape(-1, 4)
        self.true_count = np.bincount(true_index, minlength=n_images).astype(np.float64)
        by_image = np.lexsort((-scores, pred_index))  # per image, descending score (stable)
        kept, kept_tp = [], []
        starts = np.searchsorted(pred_index[by_image], np.arange(n_images + 1))
        true_order = np.argsort(true_index, kind="stable")
        true_starts = np.searchsorted(true_index[true_order], np.arange(n_images + 1))
        for image in range(n_images):
            preds = by_image[starts[image]:starts[image + 1]][:MAX_DETECTIONS]
            if not len(preds):
                continue
            truths = true_order[true_starts[image]:true_starts[image + 1]]
            kept.append(preds)
            kept_tp.append(match_image(box_iou(boxes[preds], true_boxes[truths]), self.thresholds))
        kept_all = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        tp = np.concatenate(kept_tp, axis=1) if kept_tp else np.zeros((len(self.thresholds), 0), dtype=bool)
        ranking = np.argsort(-scores[kept_all], kind="mergesort")
        images, tp = pred_index[kept_all][ranking], tp[:, ranking]
        self.curves = []
        for hits in tp:
            positions = np.flatnonzero(hits)
            # segment m holds the false positives ranked after true positive m - 1 and before true positive m
            false = np.flatnonzero(~hits)
            segment = np.searchsorted(positions, false)
            inside = segment < len(positions)
            before = sparse.csr_matrix((np.ones(inside.sum(), dtype=np.int32),
                                        (segment[inside], images[false[inside]])), shape=(len(positions), n_images))
            self.curves.append((images[positions], before))

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        """(B,) mAP under (B, N) whole-count image weights (counted exactly in int32)."""
        n_true = np.asarray(weights, dtype=np.float64) @ self.true_count
        weights = np.asarray(weights).astype(np.int32)
        precision_at_recall = np.zeros((len(weights), len(self.thresholds), len(RECALL_POINTS)))
        for t, (tp_images, fp_before) in enumerate(self.curves):
            if not len(tp_images):
                continue
            tp = np.cumsum(weights[:, tp_images], axis=1, dtype=np.int32)
            fp = np.cumsum(np.asarray((fp_before @ weights.T).T), axis=1, dtype=np.int32)
            with np.errstate(invalid="ignore", divide="ignore"):
                recall = tp / n_true[:, None]
            precision = tp / (tp + fp + np.spacing(1))
            envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
            padded = np.concatenate([envelope, np.zeros((len(weights), 1))], axis=1)
            for row in range(len(weights)):
                first = np.searchsorted(recall[row], RECALL_POINTS, side="left")
                precision_at_recall[row, t] = padded[row, first]
        values = precision_at_recall.mean(axis=(1, 2))
        return np.where(n_true > 0, values, np.nan)
