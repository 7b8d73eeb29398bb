"""Classification metrics from raw scores (logits or similarities), computed in float64 and rank based.

AUROC of one label over ``n`` samples, ``n+`` positives and ``n-`` negatives, with ``r_i`` the 1-based rank of
sample i's score among all ``n`` scores (tied scores share the mean of the ranks they span)::

    AUROC = (sum over positives of r_i  -  n+ (n+ + 1) / 2) / (n+ n-)

that is the Mann-Whitney U statistic over ``n+ n-``: the probability that a random positive scores above a random
negative, a tie counting one half. It is computed on the scores themselves, so it is unchanged by any increasing
transform and no sigmoid can create ties (a float32 sigmoid maps every logit above about 16.6 to exactly 1.0).

* ``auroc`` (binary): the AUROC of the one label.
* ``auroc`` (multilabel): the macro mean of ``auroc_<label>`` over the labels whose evaluated split holds both
  classes. A label with only positives or only negatives has no AUROC: it is left out of the mean with a warning
  that names it and is listed in the result's ``excluded`` (torchmetrics averages such a label in as 0). When no
  label is defined, the metric is undefined and a :class:`~medvlp_bench.errors.DataError` says so.
* ``accuracy`` (multiclass): share of samples whose highest score (first index on ties) is their class.
* ``accuracy_macro`` (multiclass): mean over the classes present in the targets of the per-class recall
  (correct in class c / samples of class c), which is scikit-learn's balanced accuracy; absent classes are listed
  in ``excluded``.

All values are fractions in [0, 1].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from medvlp_bench.errors import DataError


@dataclass(frozen=True)
class ClassificationScores:
    """``metrics`` (name -> value) and ``excluded`` (metric name -> labels left out of its average)."""

    metrics: dict[str, float]
    excluded: dict[str, list[str]] = field(default_factory=dict)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-d array, ties sharing the mean of the ranks they span (float64)."""
    _, inverse, counts = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]


def rank_auroc(scores: np.ndarray, targets: np.ndarray) -> float:
    """AUROC of (n,) scores against (n,) 0/1 targets (module docstring); NaN when one class is missing."""
    positive = np.asarray(targets).reshape(-1) > 0
    n_positive = int(positive.sum())
    n_negative = positive.size - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = average_ranks(np.asarray(scores).reshape(-1))
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2.0) / (n_positive * n_negative))


def label_aurocs(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(L,) AUROC per column of (n, L) scores and 0/1 targets; NaN for a column with one class."""
    scores, targets = np.asarray(scores), np.asarray(targets)
    return np.array([rank_auroc(scores[:, label], targets[:, label]) for label in range(scores.shape[1])])


def auroc_metrics(task_type: str, label_names: Sequence[str], scores, targets, *, split: str = "test"
                  ) -> ClassificationScores:
    """``auroc`` (and ``auroc_<label>`` for multilabel) of (n, L) scores against (n, L) 0/1 targets."""
    per_label = label_aurocs(scores, targets)
    defined = ~np.isnan(per_label)
    excluded = [name for name, ok in zip(label_names, defined) if not ok]
    if not defined.any():
        raise DataError(f"the {split} split holds one class only for every label ({', '.join(label_names)}): "
                        f"AUROC is undefined")
    if excluded:
        warnings.warn(f"AUROC is undefined for label(s) {', '.join(excluded)} (one class only in the {split} "
                      f"split); the macro AUROC averages the other {int(defined.sum())} label(s)", stacklevel=2)
    metrics = {"auroc": float(per_label[defined].mean())}
    if task_type == "multilabel":
        metrics.update({f"auroc_{name}": float(value)
                        for name, value, ok in zip(label_names, per_label, defined) if ok})
    return ClassificationScores(metrics, {"auroc": excluded} if excluded else {})


def accuracy_metrics(label_names: Sequence[str], scores, targets) -> ClassificationScores:
    """``accuracy`` and ``accuracy_macro`` of (n, C) scores against (n,) class indices (module docstring)."""
    targets = np.asarray(targets).reshape(-1)
    correct = np.asarray(scores).argmax(axis=1) == targets
    present = [c for c in range(len(label_names)) if (targets == c).any()]
    recalls = [correct[targets == c].mean() for c in present]
    excluded = [name for c, name in enumerate(label_names) if c not in present]
    metrics = {"accuracy": float(correct.mean()), "accuracy_macro": float(np.mean(recalls))}
    return ClassificationScores(metrics, {"accuracy_macro": excluded} if excluded else {})


def classification_metrics(task_type: str, label_names: Sequence[str], scores, targets, *, split: str = "test"
                           ) -> ClassificationScores:
    """The metrics of a ``binary`` / ``multilabel`` / ``multiclass`` task from raw scores (module docstring)."""
    if task_type == "multiclass":
        return accuracy_metrics(label_names, scores, targets)
    if task_type in ("binary", "multilabel"):
        return auroc_metrics(task_type, label_names, scores, targets, split=split)
    raise ValueError(f"unknown classification task type {task_type!r}")
