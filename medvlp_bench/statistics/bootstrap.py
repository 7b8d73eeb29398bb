"""Vectorised cluster bootstrap over test patients: resampling weights and weighted metrics.

A bootstrap resample draws ``P`` patients with replacement from the ``P`` test patients (every image of a drawn
patient comes along, as often as the patient is drawn: the cluster bootstrap, so images of one patient are never
treated as independent). A resample is therefore a count ``c_p`` per patient, and every metric here is computed
from those counts directly, as if each image of patient ``p`` were repeated ``c_p`` times, for all resamples at
once: ``weights`` is a (B, N) array of per-image counts (B resamples, N images); a row of ones gives the metric on
the test set itself.

* :class:`AurocStatistic`: AUROC from ranks. Per label, with scores sorted once and tied scores grouped,
  ``AUROC = sum_g P_g (C_g + N_g / 2) / (sum P)(sum N)`` where ``P_g``, ``N_g`` are the weighted numbers of
  positives and negatives in score group ``g`` and ``C_g`` the weighted number of negatives in lower groups (the
  Mann-Whitney statistic, ties counting one half). Macro AUROC is the mean over the labels that have both classes
  in the test set; in a resample, a label whose resample lacks a class is left out of that resample's mean.
* :class:`AccuracyStatistic`: ``sum w_i [pred_i = target_i] / sum w_i`` (micro accuracy) of predicted classes
  (:func:`predicted_classes`: the argmax over the class scores; for one score column, the class ``[score > 0]``).
* :class:`MacroF1Statistic`: ``mean_k F1_k`` with ``F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)`` from weighted
  counts (``TP_k = sum_i w_i [pred_i = k][target_i = k]``, ...), over the classes with ``TP_k + FP_k + FN_k > 0``
  in that resample (torchmetrics' macro F1 leaves the others out the same way).
* :class:`MeanStatistic`: ``sum w_i v_i / sum w_i`` of per-image values (segmentation: per-image Dice).
* mAP: :class:`medvlp_bench.statistics.detection_map.MeanAPStatistic`.

:func:`percentile_interval` turns the resampled values into the percentile interval
``[q_{(1-level)/2}, q_{(1+level)/2}]`` (numpy's linear interpolation), resamples where the metric is undefined
(NaN) left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

#: default number of bootstrap resamples and seed of the resampling
N_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
#: resamples evaluated at once (bounds memory: a chunk holds CHUNK x N float64 weights)
CHUNK = 200


class Statistic(Protocol):
    """A metric of N test images that can be evaluated under (B, N) per-image weights."""

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        """(B,) metric values, one per row of weights; NaN where undefined."""


def patient_index(patient_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Index of each image's patient in ``0..P-1`` (order of first appearance) and the number of patients P."""
    _, first, inverse = np.unique(np.asarray(patient_ids), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()], len(first)


def patient_counts(n_patients: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B, P) int32 counts: how often each patient is drawn in each of B resamples of P draws with replacement
    (``numpy.random.default_rng(seed).integers``, so a seed gives the same resamples everywhere)."""
    draws = np.random.default_rng(seed).integers(0, n_patients, size=(n_resamples, n_patients))
    flat = draws + (np.arange(n_resamples) * n_patients)[:, None]
    return np.bincount(flat.ravel(), minlength=n_resamples * n_patients).reshape(n_resamples, n_patients) \
        .astype(np.int32)


def evaluate_resamples(statistics: list[Statistic], patients: np.ndarray, n_resamples: int = N_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(S, B) values of each statistic on B cluster-bootstrap resamples of the patients ``patients`` (N,) ids;
    all statistics share the resamples (a paired bootstrap when they are several methods on the same images)."""
    index, n_patients = patient_index(patients)
    counts = patient_counts(n_patients, n_resamples, seed)
    values = np.empty((len(statistics), n_resamples))
    for start in range(0, n_resamples, CHUNK):
        weights = counts[start:start + CHUNK][:, index].astype(np.float64)
        for row, statistic in enumerate(statistics):
            values[row, start:start + CHUNK] = statistic.evaluate(weights)
    return values


def full_value(statistic: Statistic, n_samples: int) -> float:
    """The statistic on the test set itself (all weights 1)."""
    return float(statistic.evaluate(np.ones((1, n_samples)))[0])


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval: ``low``/``high`` bound ``level`` (e.g. 0.95) of the bootstrap
    distribution; ``method`` names how it was made; ``n_resamples`` counts the resamples where the metric is
    defined; ``seed`` is the resampling seed (None for analytic intervals)."""

    estimate: float
    low: float
    high: float
    level: float
    method: str
    n_resamples: Optional[int] = None
    seed: Optional[int] = None


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, int]:
    """``(low, high, n)``: the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the defined (non-NaN)
    ``values`` and their number n; NaNs when none is defined."""
    defined = values[~np.isnan(values)]
    if not len(defined):
        return float("nan"), float("nan"), 0
    low, high = np.quantile(defined, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high), len(defined)


def bootstrap_interval(statistic: Statistic, patients: np.ndarray, n_resamples: int = N_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED, level: float = LEVEL) -> Interval:
    """The statistic on the test set and its percentile cluster-bootstrap interval (see the module docstring)."""
    values = evaluate_resamples([statistic], patients, n_resamples, seed)[0]
    low, high, defined = percentile_interval(values, level)
    return Interval(full_value(statistic, len(patients)), low, high, level, "cluster bootstrap, percentile",
                    defined, seed)


class AurocStatistic:
    """(Macro) AUROC of scores (N, L) against 0/1 targets (N, L) from ranks (see the module docstring)."""

    def __init__(self, target: np.ndarray, score: np.ndarray):
        target, score = np.asarray(target).reshape(len(target), -1), np.asarray(score, dtype=np.float64)
        score = score.reshape(len(score), -1)
        self.labels = []
        for label in range(target.shape[1]):
            positive = target[:, label] == 1
            if positive.all() or not positive.any():
                continue
            order = np.argsort(score[:, label], kind="stable")
            sorted_scores = score[order, label]
            starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
            self.labels.append((order, positive[order], starts if len(starts) < len(order) else None))

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        if not self.labels:
            return np.full(len(weights), np.nan)
        per_label = np.empty((len(self.labels), len(weights)))
        for row, (order, positive, starts) in enumerate(self.labels):
            sample_weights = weights[:, order]
            pos = sample_weights * positive
            neg = sample_weights - pos
            if starts is not None:
                pos, neg = np.add.reduceat(pos, starts, axis=1), np.add.reduceat(neg, starts, axis=1)
            below = np.cumsum(neg, axis=1) - neg
            total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                per_label[row] = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
        defined = ~np.isnan(per_label)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(defined, per_label, 0.0).sum(axis=0) / defined.sum(axis=0)


def predicted_classes(score: np.ndarray) -> np.ndarray:
    """(N,) predicted class per row of scores (N, C): the argmax for C > 1; for C = 1 (a binary task's logit or
    score difference), 1 where the score is above 0, else 0."""
    score = np.asarray(score, dtype=np.float64).reshape(len(score), -1)
    return (score[:, 0] > 0).astype(np.int64) if score.shape[1] == 1 else np.argmax(score, axis=1)


class AccuracyStatistic:
    """Micro accuracy of :func:`predicted_classes` of scores (N, C) against class indices (N,)."""

    def __init__(self, target: np.ndarray, score: np.ndarray):
        self.correct = (predicted_classes(score) == np.asarray(target).reshape(-1)).astype(np.float64)

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        return weighted_mean(self.correct, weights)


class MacroF1Statistic:
    """Macro F1 of :func:`predicted_classes` of scores (N, C) against class indices (N,) over ``n_classes``
    classes (see the module docstring)."""

    def __init__(self, target: np.ndarray, score: np.ndarray, n_classes: int):
        target, predicted = np.asarray(target).reshape(-1), predicted_classes(score)
        classes = np.arange(n_classes)[:, None]
        self.true_positive = ((predicted == target) & (target == classes)).astype(np.float64)  # (K, N)
        self.false_positive = ((predicted != target) & (predicted == classes)).astype(np.float64)
        self.false_negative = ((predicted != target) & (target == classes)).astype(np.float64)

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        tp, fp, fn = (weights @ counts.T for counts in (self.true_positive, self.false_positive,
                                                          self.false_negative))  # (B, K) each
        present = (tp + fp + fn) > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(present, 2 * tp / (2 * tp + fp + fn), 0.0)
            return f1.sum(axis=1) / present.sum(axis=1)


class MeanStatistic:
    """Mean of per-image values (N,), e.g. per-image Dice."""

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, dtype=np.float64)

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        return weighted_mean(self.values, weights)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i w_bi v_i / sum_i w_bi`` per row b (NaN for an all-zero row)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ values) / weights.sum(axis=1)
