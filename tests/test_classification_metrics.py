"""Classification metrics against scikit-learn: rank AUROC on logits (ties, saturating logits), macro AUROC over the
labels defined in the split, accuracy and balanced accuracy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from medvlp_bench.errors import DataError
from medvlp_bench.protocols.classification_metrics import (
    average_ranks,
    classification_metrics,
    rank_auroc,
)


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_rank_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, 500)
    scores = np.round(targets * 0.7 + rng.normal(size=500), 1)  # rounded: many ties across classes
    assert rank_auroc(scores, targets) == pytest.approx(roc_auc_score(targets, scores), abs=1e-12)


def test_auroc_is_taken_from_the_logits_without_sigmoid_saturation():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 300)
    logits = 20.0 + 5.0 * targets + rng.normal(size=300)  # every logit above 16.6
    saturated = torch.sigmoid(torch.tensor(logits, dtype=torch.float32)).numpy()
    assert np.unique(saturated).size == 1  # a float32 sigmoid makes them all ties
    assert roc_auc_score(targets, saturated) == 0.5
    expected = roc_auc_score(targets, logits)
    assert expected > 0.9
    metrics = classification_metrics("binary", ("p",), logits[:, None], targets[:, None]).metrics
    assert metrics["auroc"] == pytest.approx(expected, abs=1e-12)


def test_macro_auroc_averages_the_labels_defined_in_the_split_and_names_the_excluded_one():
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 2, size=(120, 4))
    targets[:, 2] = 0  # label "c": negatives only, no AUROC
    scores = targets * 0.6 + rng.normal(size=(120, 4))
    with pytest.warns(UserWarning, match=r"label\(s\) c .*other 3 label"):
        result = classification_metrics("multilabel", tuple("abcd"), scores, targets)
    defined = [0, 1, 3]
    assert result.metrics["auroc"] == pytest.approx(
        roc_auc_score(targets[:, defined], scores[:, defined], average="macro"), abs=1e-12)
    # averaging a 0 in for "c" (what torchmetrics does) would give 3/4 of it
    assert result.metrics["auroc"] > roc_auc_score(targets[:, defined], scores[:, defined]) * 3 / 4 + 0.1
    assert result.excluded == {"auroc": ["c"]}
    assert "auroc_c" not in result.metrics
    assert result.metrics["auroc_d"] == pytest.approx(roc_auc_score(targets[:, 3], scores[:, 3]), abs=1e-12)


def test_no_warning_and_no_exclusion_when_every_label_is_defined():
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 2, size=(80, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = classification_metrics("multilabel", tuple("abc"), rng.normal(size=(80, 3)), targets)
    assert result.excluded == {}


def test_an_undefined_binary_auroc_is_an_error():
    with pytest.raises(DataError, match="one class only for every label"):
        classification_metrics("binary", ("p",), np.zeros((5, 1)), np.ones((5, 1)))


def test_multiclass_accuracy_and_balanced_accuracy_equal_sklearn_with_an_absent_class():
    rng = np.random.default_rng(4)
    classes = rng.choice([0, 1, 3], size=200)  # class 2 never occurs
    scores = rng.normal(size=(200, 4))
    scores[np.arange(200), classes] += 1.0
    predicted = scores.argmax(1)
    result = classification_metrics("multiclass", ("a", "b", "c", "d"), scores, classes)
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(classes, predicted), abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the predicted-only class
        expected = balanced_accuracy_score(classes, predicted)
    assert result.metrics["accuracy_macro"] == pytest.approx(expected, abs=1e-12)
    assert result.excluded == {"accuracy_macro": ["c"]}
