"""From a record's metric name and its per-sample outputs to a statistic that the bootstrap can evaluate.

Metrics with a statistic (names as the protocols report them):

* classification: ``auroc`` (binary / multilabel: macro over the labels with both classes), ``auroc_<label>``,
  ``accuracy`` (multiclass, micro);
* detection: ``map`` (COCO mAP over the outputs' IoU thresholds), ``map_50`` (AP at IoU 0.5);
* segmentation: ``dice`` (mean per-image Dice), ``dice_positive`` (mean over images whose truth is not empty),
  ``empty_correct`` (share of images with an empty truth predicted empty).

Other metrics (and retrieval outputs) have none: their cells get no interval. :func:`record_intervals` gives a
record's bootstrap interval (and DeLong's for AUROC).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from medvlp_bench.statistics.bootstrap import (
    BOOTSTRAP_SEED,
    LEVEL,
    N_RESAMPLES,
    AccuracyStatistic,
    AurocStatistic,
    Interval,
    Statistic,
    bootstrap_interval,
    weighted_mean,
)
from medvlp_bench.statistics.delong import delong_interval
from medvlp_bench.statistics.detection_map import MeanAPStatistic


class SubsetMeanStatistic:
    """Mean of per-image values (N,) over the images in ``include`` (N,) bool."""

    def __init__(self, values: np.ndarray, include: np.ndarray):
        self.include = np.flatnonzero(include)
        self.values = np.asarray(values, dtype=np.float64)[self.include]

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        return weighted_mean(self.values, weights[:, self.include])


def statistic_for(metric: str, outputs: dict) -> Optional[Statistic]:
    """The statistic computing ``metric`` from ``outputs`` (see the module docstring), or None."""
    kind = str(outputs["kind"])
    if kind == "classification":
        task_type = str(outputs["task_type"])
        if task_type == "multiclass":
            return AccuracyStatistic(outputs["target"], outputs["score"]) if metric == "accuracy" else None
        labels = [str(name) for name in outputs["label_names"]]
        if metric == "auroc":
            return AurocStatistic(outputs["target"], outputs["score"])
        if metric.startswith("auroc_") and metric[len("auroc_"):] in labels:
            label = labels.index(metric[len("auroc_"):])
            return AurocStatistic(outputs["target"][:, label:label + 1], outputs["score"][:, label:label + 1])
        return None
    if kind == "detection":
        if metric == "map":
            return MeanAPStatistic(outputs)
        return MeanAPStatistic(outputs, thresholds=[0.5]) if metric == "map_50" else None
    if kind == "segmentation":
        dice = outputs["dice"]
        if metric == "dice":
            return SubsetMeanStatistic(dice, np.ones(len(dice), dtype=bool))
        if metric == "dice_positive":
            return SubsetMeanStatistic(dice, ~outputs["truth_empty"])
        if metric == "empty_correct":
            return SubsetMeanStatistic(outputs["pred_empty"].astype(np.float64), outputs["truth_empty"])
    return None


def restrict(outputs: dict, sample_ids: np.ndarray) -> dict:
    """``outputs`` restricted to ``sample_ids`` (all present in them), in that order; detection indices
    remapped and the predictions and boxes of other images dropped."""
    position = {sample: index for index, sample in enumerate(outputs["sample_id"].tolist())}
    keep = np.array([position[sample] for sample in np.asarray(sample_ids).tolist()], dtype=np.int64)
    n = len(outputs["sample_id"])
    restricted = {}
    for name, value in outputs.items():
        restricted[name] = value[keep] if value.ndim >= 1 and len(value) == n and name in _PER_SAMPLE else value
    if str(outputs["kind"]) == "detection":
        new_index = np.full(n, -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        for prefix, index_name in (("pred", "pred_index"), ("true", "true_index")):
            mapped = new_index[outputs[index_name]]
            kept = mapped >= 0
            restricted[index_name] = mapped[kept]
            restricted[f"{prefix}_boxes"] = outputs[f"{prefix}_boxes"][kept]
            if prefix == "pred":
                restricted["pred_scores"] = outputs["pred_scores"][kept]
    return restricted


_PER_SAMPLE = frozenset({"sample_id", "patient_id", "target", "score", "dice", "truth_empty", "pred_empty",
                         "rank_image_to_text", "rank_text_to_image"})


def record_intervals(metric: str, outputs: dict, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = LEVEL) -> list[Interval]:
    """A record's ``metric`` with its cluster-bootstrap interval over the test patients and, for an AUROC of a
    binary or multilabel task, DeLong's interval beside it; empty when the metric has no statistic."""
    statistic = statistic_for(metric, outputs)
    if statistic is None:
        return []
    intervals = [bootstrap_interval(statistic, outputs["patient_id"], n_resamples, seed, level)]
    if metric == "auroc" and str(outputs["kind"]) == "classification" and str(outputs["task_type"]) != "multiclass":
        intervals.append(delong_interval(outputs["target"], outputs["score"], outputs["patient_id"], level))
    return intervals
