"""Per-image Dice with the empty-mask rule, its summaries, and the torchmetrics accumulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from medvlp_bench_plugins.protocols.dice import (
    MeanImageDice,
    dice_from_logits,
    image_dice,
    reference_batched_mean,
    summarise_dice,
)


def _mask(*pixels, shape=(4, 4)) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    for row, column in pixels:
        mask[row, column] = True
    return mask


def test_empty_ground_truth_scores_one_only_for_an_empty_prediction():
    empty = _mask()
    predicted = torch.stack([empty, _mask((0, 0))])
    scores = image_dice(predicted, torch.stack([empty, empty]))
    assert scores.tolist() == [1.0, 0.0]


def test_partial_overlap_by_hand():
    predicted = _mask((0, 0), (0, 1), (1, 1))
    target = _mask((0, 1), (1, 1), (2, 2), (3, 3))
    # |P ∩ T| = 2, |P| = 3, |T| = 4 -> 2 * 2 / 7
    assert image_dice(predicted[None], target[None]).item() == pytest.approx(4 / 7)
    assert image_dice(_mask()[None], target[None]).item() == 0.0


def test_positive_images_agree_with_sklearn_f1_per_image():
    rng = np.random.default_rng(0)
    target = rng.random((6, 16, 16)) < 0.3
    predicted = target ^ (rng.random((6, 16, 16)) < 0.2)
    scores = image_dice(torch.from_numpy(predicted), torch.from_numpy(target))
    expected = [f1_score(t.ravel(), p.ravel()) for p, t in zip(predicted, target)]
    assert np.allclose(scores.numpy(), expected)


def test_logits_are_thresholded_at_probability_one_half():
    logits = torch.tensor([[-0.1, 0.1], [0.0, 3.0]]).reshape(1, 1, 2, 2)
    target = torch.tensor([[0.0, 1.0], [0.0, 1.0]]).reshape(1, 1, 2, 2)
    assert dice_from_logits(logits, target).item() == 1.0


def test_reference_batched_mean_differs_from_per_image_mean_with_a_short_last_batch():
    scores = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    # batches of 2: [1, 0] -> 0.5, [1] -> 1; mean 0.75, while the per-image mean is 2/3
    assert reference_batched_mean(scores, 2) == pytest.approx(0.75)
    metrics = summarise_dice(scores, torch.tensor([True, True, False]), batch_size=2)
    assert metrics["dice"] == pytest.approx(2 / 3)
    assert metrics["dice_reference_batched"] == pytest.approx(0.75)
    assert metrics["dice_positive"] == pytest.approx(0.5)
    assert metrics["empty_correct"] == 1.0
    assert reference_batched_mean(scores, 3) == pytest.approx(2 / 3)


def test_dice_positive_is_absent_without_positive_images():
    metrics = summarise_dice(torch.tensor([1.0, 0.0]), torch.tensor([False, False]), batch_size=8)
    assert "dice_positive" not in metrics and metrics["dice"] == 0.5 and metrics["empty_correct"] == 0.5


def test_dice_is_the_weighted_mean_of_positive_dice_and_empty_correct():
    scores = torch.tensor([0.8, 0.0, 1.0, 0.4, 1.0])
    positive = torch.tensor([True, False, False, True, False])
    metrics = summarise_dice(scores, positive, batch_size=8)
    assert metrics["dice_positive"] == pytest.approx(0.6) and metrics["empty_correct"] == pytest.approx(2 / 3)
    assert metrics["dice"] == pytest.approx((2 * 0.6 + 3 * 2 / 3) / 5)


def test_empty_correct_is_absent_without_empty_images():
    assert "empty_correct" not in summarise_dice(torch.tensor([0.5, 0.7]), torch.tensor([True, True]), 8)


def test_metric_accumulates_the_mean_over_images():
    torch.manual_seed(0)
    logits, target = torch.randn(5, 1, 8, 8), (torch.rand(5, 1, 8, 8) < 0.3).float()
    target[4] = 0
    metric = MeanImageDice()
    metric.update(logits[:2], target[:2])
    metric.update(logits[2:], target[2:])
    assert metric.compute().item() == pytest.approx(dice_from_logits(logits, target).mean().item(), abs=1e-6)
