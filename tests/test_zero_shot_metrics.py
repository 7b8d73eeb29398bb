"""Zero-shot metrics against scikit-learn on known scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from medvlp_bench_plugins.protocols.zero_shot_metrics import (
    binary_metrics,
    multiclass_metrics,
    multilabel_metrics,
    unit_interval,
)


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 4, size=60)
    scores = rng.normal(size=(60, 4)) + 1.5 * np.eye(4)[targets] * rng.random((60, 1))
    metrics = multiclass_metrics(torch.tensor(scores), torch.tensor(targets))
    predictions = scores.argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(targets, predictions))
    assert metrics["f1_macro"] == pytest.approx(f1_score(targets, predictions, average="macro"))
    per_class = [roc_auc_score(targets == k, scores[:, k]) for k in range(4)]
    assert metrics["auroc"] == pytest.approx(np.mean(per_class), abs=1e-6)


def test_binary_metrics_decide_at_zero_and_rank_the_score():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, size=(50, 1))
    scores = rng.normal(size=(50, 1)) + targets * 0.8
    metrics = binary_metrics(torch.tensor(scores), torch.tensor(targets))
    predictions = (scores[:, 0] > 0).astype(int)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(targets[:, 0], predictions))
    assert metrics["f1_macro"] == pytest.approx(f1_score(targets[:, 0], predictions, average="macro"))
    assert metrics["auroc"] == pytest.approx(roc_auc_score(targets[:, 0], scores[:, 0]), abs=1e-6)


def test_large_scores_are_not_tied_by_a_sigmoid():
    scores = torch.tensor([[30.0], [31.0], [32.0], [33.0]], dtype=torch.float64)
    targets = torch.tensor([[0], [0], [1], [1]])
    assert binary_metrics(scores, targets)["auroc"] == pytest.approx(1.0)
    assert unit_interval(scores).min() == 0 and unit_interval(scores).max() == 1


def test_multilabel_metrics_are_the_macro_auroc():
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 2, size=(40, 3))
    scores = rng.normal(size=(40, 3)) + targets
    metrics = multilabel_metrics(torch.tensor(scores), torch.tensor(targets))
    expected = np.mean([roc_auc_score(targets[:, k], scores[:, k]) for k in range(3)])
    assert metrics == {"auroc": pytest.approx(expected, abs=1e-6)}
