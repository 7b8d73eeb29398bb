"""The reference segmentation loss: ``10 * focal(gamma=2) - log(soft Dice)`` on single-channel logits.

With ``p = sigmoid(z)`` per pixel, target ``t`` in {0, 1} and ``p_t = p t + (1 - p)(1 - t)``:

* focal  = mean over all pixels of the batch of ``-(1 - p_t)^gamma * log(p_t)`` (no class weighting, i.e.
  torchvision's ``sigmoid_focal_loss`` with ``alpha=-1``; ``log(p_t)`` computed stably as minus the BCE with logits);
* soft Dice = ``(2 * sum(p t) + s) / (sum(p) + sum(t) + s)``, sums over every pixel of every image in the batch,
  smoothing ``s = 1``; in (0, 1], so ``-log(soft Dice) >= 0``;
* loss = ``10 * focal - log(soft Dice)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FOCAL_WEIGHT = 10.0
FOCAL_GAMMA = 2.0
DICE_SMOOTHING = 1.0

DESCRIPTION = "10 * focal(gamma=2, no alpha, mean over pixels) - log(soft Dice over the batch, smoothing 1)"


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Mean over all elements of ``(1 - p_t)^gamma * BCE(z, t)`` (module docstring); a scalar."""
    cross_entropy = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-cross_entropy)
    return ((1 - p_t) ** gamma * cross_entropy).mean()


def soft_dice(logits: torch.Tensor, target: torch.Tensor, smoothing: float = DICE_SMOOTHING) -> torch.Tensor:
    """``(2 sum(p t) + s) / (sum(p) + sum(t) + s)`` over the whole batch (module docstring); a scalar in (0, 1]."""
    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum()
    return (2 * overlap + smoothing) / (probability.sum() + target.sum() + smoothing)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``10 * focal(gamma=2) - log(soft Dice)`` for (B, 1, H, W) logits and 0/1 float targets of the same shape."""
    return FOCAL_WEIGHT * focal_loss(logits, target) - torch.log(soft_dice(logits, target))
