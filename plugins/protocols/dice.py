"""Dice scores of binary segmentations, with the reference protocol's rule for images without a finding.

One image, predicted mask ``P = {sigmoid(logit) > 0.5}`` and ground truth ``T`` (sets of pixels)::

    dice = 2 |P ∩ T| / (|P| + |T|)      if |T| > 0
    dice = 1 if |P| = 0 else 0          if |T| = 0   (empty-mask rule)

Summaries over a test set of ``n`` images, in loader order, loader batch size ``b`` (all values in [0, 1]):

* ``dice``: mean of the per-image scores over all ``n`` images;
* ``dice_positive``: mean over the images with ``|T| > 0`` only (absent when there are none);
* ``empty_correct``: share of the images with ``|T| = 0`` predicted empty (absent when there are none). With
  ``n+`` positive images, ``dice = (n+ * dice_positive + (n - n+) * empty_correct) / n``: on a test set that is
  mostly negative, a few stray pixels on negative images move ``dice`` more than the outlines do;
* ``dice_reference_batched``: the reference code's figure, the mean over loader batches of the mean over each
  batch's images. It equals ``dice`` when ``b`` divides ``n`` and otherwise over-weights the last, shorter batch.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

#: probability above which a pixel is predicted positive
THRESHOLD = 0.5

DEFINITIONS = {
    "dice": "mean over all test images of per-image Dice at p > 0.5; 2|P∩T|/(|P|+|T|) if the ground truth is "
    "non-empty, else 1 if the prediction is empty and 0 otherwise",
    "dice_positive": "the same per-image Dice, averaged over test images with a non-empty ground truth only",
    "empty_correct": "share of the test images with an empty ground truth whose prediction is empty",
    "dice_reference_batched": "the reference's variant: per-image Dice averaged within each test batch "
    "(batch size = the run's batch_size, loader order), then averaged over batches",
}


def image_dice(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image Dice with the empty-mask rule: (B, ...) bool masks -> (B,) float64 scores in [0, 1]."""
    predicted, target = predicted.flatten(1), target.flatten(1)
    overlap = (predicted & target).sum(1).double()
    predicted_size, target_size = predicted.sum(1).double(), target.sum(1).double()
    empty_rule = (predicted_size == 0).double()
    overlap_rule = 2 * overlap / (predicted_size + target_size).clamp_min(1)
    return torch.where(target_size > 0, overlap_rule, empty_rule)


def dice_from_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image Dice of (B, 1, H, W) logits thresholded at probability 0.5 against (B, 1, H, W) 0/1 targets."""
    return image_dice(logits > 0, target > 0.5)


def reference_batched_mean(scores: torch.Tensor, batch_size: int) -> float:
    """Mean over consecutive batches of ``batch_size`` scores of each batch's mean (the last may be shorter)."""
    return float(torch.stack([chunk.mean() for chunk in scores.split(batch_size)]).mean())


def summarise_dice(scores: torch.Tensor, positive: torch.Tensor, batch_size: int) -> dict[str, float]:
    """``dice``, ``dice_positive``, ``empty_correct`` and ``dice_reference_batched`` (module docstring) from
    per-image scores (n,) and ground-truth non-emptiness flags (n,) bool, both in loader order."""
    metrics = {
        "dice": float(scores.mean()),
        "dice_reference_batched": reference_batched_mean(scores, batch_size),
    }
    if bool(positive.any()):
        metrics["dice_positive"] = float(scores[positive].mean())
    if not bool(positive.all()):
        metrics["empty_correct"] = float(scores[~positive].mean())
    return metrics


class MeanImageDice(Metric):
    """torchmetrics accumulator of the mean per-image Dice (``dice`` above) from logits and 0/1 targets."""

    higher_is_better = True
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        scores = dice_from_logits(logits, target)
        self.total += scores.sum()
        self.count += scores.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.count.clamp_min(1)
