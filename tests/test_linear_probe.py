"""Linear-probe metrics against scikit-learn, and the head learning a separable problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from medvlp_bench.protocols.linear_probe import LinearHead, score, targets_of
from medvlp_bench.specs import TaskSpec


def _task(target, labels, metric="auroc"):
    return TaskSpec(name="t", dataset="d", protocol="linear_probe", description="", load_splits=lambda f: None,
                    label_names=labels, target=target, primary_metric=metric)


def test_multilabel_auroc_is_sklearn_macro():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, size=(200, 5)).astype(np.float32)
    logits = targets * 0.8 + rng.normal(size=(200, 5)).astype(np.float32)
    metrics = score(_task("multilabel", tuple("abcde")), torch.from_numpy(logits), torch.from_numpy(targets)).metrics
    assert np.isclose(metrics["auroc"], roc_auc_score(targets, logits, average="macro"), atol=1e-6)
    assert np.isclose(metrics["auroc_c"], roc_auc_score(targets[:, 2], logits[:, 2]), atol=1e-6)


def test_binary_auroc_and_multiclass_accuracy_match_sklearn():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, size=(150, 1)).astype(np.float32)
    logits = targets + rng.normal(size=(150, 1)).astype(np.float32)
    binary = score(_task("binary", ("p",)), torch.from_numpy(logits), torch.from_numpy(targets)).metrics
    assert np.isclose(binary["auroc"], roc_auc_score(targets[:, 0], logits[:, 0]), atol=1e-6)

    classes = rng.integers(0, 3, size=300)
    class_logits = rng.normal(size=(300, 3)).astype(np.float32)
    class_logits[np.arange(300), classes] += 1.0
    multi = score(_task("multiclass", ("a", "b", "c"), "accuracy"), torch.from_numpy(class_logits),
                  torch.from_numpy(classes)).metrics
    predicted = class_logits.argmax(1)
    assert np.isclose(multi["accuracy"], accuracy_score(classes, predicted), atol=1e-6)
    assert np.isclose(multi["accuracy_macro"], balanced_accuracy_score(classes, predicted), atol=1e-6)


def test_targets_follow_the_task_kind():
    table = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0], "label": [2, 0]})
    assert targets_of(_task("multilabel", ("a", "b")), table).shape == (2, 2)
    assert targets_of(_task("multiclass", ("x", "y", "z")), table).dtype == torch.long


def test_head_learns_a_separable_problem():
    torch.manual_seed(0)
    features = torch.randn(256, 8)
    targets = (features[:, :1] > 0).float()
    head = LinearHead(8, 1, multiclass=False, lr=5e-2, weight_decay=0.0)
    optimiser = head.configure_optimizers()
    for _ in range(200):
        optimiser.zero_grad()
        head._loss((features, targets)).backward()
        optimiser.step()
    assert score(_task("binary", ("p",)), head(features).detach(), targets).metrics["auroc"] > 0.98
