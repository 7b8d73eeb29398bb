"""From a record's metric name and its per-sample outputs to a statistic that the bootstrap can evaluate.

Metrics with a statistic (names as the protocols report them):

* classification: ``auroc`` (binary / multilabel: macro over the labels with both classes; multiclass: macro over
  the classes of the one-vs-rest AUROC of each class's own score column), ``auroc_<label>``, ``accuracy`` (micro)
  and ``f1_macro`` (multiclass: of the argmax; binary: of ``[score > 0]``, the zero-shot rule, over both classes);
* detection: ``map`` (COCO mAP over the outputs' IoU thresholds), ``map_50`` (AP at IoU 0.5);
* segmentation: ``dice`` (mean per-image Dice), ``dice_positive`` (mean over images whose truth is not empty),
  ``empty_correct`` (share of images with an empty truth predicted empty);
* retrieval: ``{i2t,t2i}_recall_at_K`` and ``{i2t,t2i}_precision_at_K``
  (:mod:`medvlp_bench.statistics.retrieval`).

Other metrics have none: their cells get no interval. :func:`resampling_units` gives, per metric, the ids of the
evaluated items (matched across runs) and the clusters a bootstrap draw resamples: the test samples and their
patients, except for the text queries of class-level retrieval (the prompts, each its own unit).
:func:`record_intervals` gives a record's bootstrap interval (and DeLong's for AUROC).
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
    MacroF1Statistic,
    Statistic,
    bootstrap_interval,
    weighted_mean,
)
from medvlp_bench.statistics.delong import delong_interval
from medvlp_bench.statistics.detection_map import MeanAPStatistic
from medvlp_bench.statistics.retrieval import restricted_arrays, retrieval_statistic, retrieval_units


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
        return _classification_statistic(metric, outputs)
    if kind == "retrieval":
        return retrieval_statistic(metric, outputs)
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


def _classification_statistic(metric: str, outputs: dict) -> Optional[Statistic]:
    task_type, target, score = str(outputs["task_type"]), outputs["target"], outputs["score"]
    if task_type == "multiclass":
        n_classes = score.shape[1]
        if metric == "accuracy":
            return AccuracyStatistic(target, score)
        if metric == "f1_macro":
            return MacroF1Statistic(target, score, n_classes)
        return AurocStatistic(np.eye(n_classes, dtype=np.int8)[target], score) if metric == "auroc" else None
    if task_type == "binary" and metric in ("accuracy", "f1_macro"):
        return AccuracyStatistic(target, score) if metric == "accuracy" else MacroF1Statistic(target, score, 2)
    labels = [str(name) for name in outputs["label_names"]]
    if metric == "auroc":
        return AurocStatistic(target, score)
    if metric.startswith("auroc_") and metric[len("auroc_"):] in labels:
        label = labels.index(metric[len("auroc_"):])
        return AurocStatistic(target[:, label:label + 1], score[:, label:label + 1])
    return None


def resampling_units(metric: str, outputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, clusters)``: the items ``metric`` averages over, identified across runs, and the unit each belongs
    to in a bootstrap draw (module docstring)."""
    if str(outputs["kind"]) == "retrieval":
        units = retrieval_units(metric, outputs)
        if units is not None:
            return units
    return outputs["sample_id"], outputs["patient_id"]


def restrict(outputs: dict, ids: np.ndarray, metric: str = "") -> dict:
    """``outputs`` restricted to the items ``ids`` (all present among :func:`resampling_units` of ``metric``),
    in that order: the arrays aligned with those items are indexed; detection indices remapped and the
    predictions and boxes of other images dropped."""
    unit_ids = resampling_units(metric, outputs)[0]
    position = {item: index for index, item in enumerate(unit_ids.tolist())}
    keep = np.array([position[item] for item in np.asarray(ids).tolist()], dtype=np.int64)
    n = len(unit_ids)
    aligned = restricted_arrays(metric, outputs) if str(outputs["kind"]) == "retrieval" else _PER_SAMPLE
    restricted = {}
    for name, value in outputs.items():
        restricted[name] = value[keep] if value.ndim >= 1 and len(value) == n and name in aligned else value
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


_PER_SAMPLE = frozenset({"sample_id", "patient_id", "target", "score", "dice", "truth_empty", "pred_empty"})


def record_intervals(metric: str, outputs: dict, n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = LEVEL) -> list[Interval]:
    """A record's ``metric`` with its cluster-bootstrap interval over its resampling units (the test patients, or
    the prompts of class-level text queries: :func:`resampling_units`) and, for an AUROC of a binary or multilabel
    task, DeLong's interval beside it; empty when the metric has no statistic."""
    statistic = statistic_for(metric, outputs)
    if statistic is None:
        return []
    intervals = [bootstrap_interval(statistic, resampling_units(metric, outputs)[1], n_resamples, seed, level)]
    if metric == "auroc" and str(outputs["kind"]) == "classification" and str(outputs["task_type"]) != "multiclass":
        intervals.append(delong_interval(outputs["target"], outputs["score"], outputs["patient_id"], level))
    return intervals
