"""The reference segmentation loss: focal term against torchvision, soft Dice by hand, finite gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from medvlp_bench_plugins.protocols.segmentation_losses import focal_loss, segmentation_loss, soft_dice


def test_focal_matches_torchvision_without_alpha_weighting():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 8, 8) * 3, (torch.rand(2, 1, 8, 8) < 0.4).float()
    # torchvision's alpha=-1 means "no class weighting" (it rejects None); its default alpha=0.25 weights classes
    unweighted = sigmoid_focal_loss(logits, target, alpha=-1, gamma=2, reduction="mean")
    assert focal_loss(logits, target).item() == pytest.approx(unweighted.item(), rel=1e-5)
    weighted = sigmoid_focal_loss(logits, target, gamma=2, reduction="mean")
    assert not math.isclose(focal_loss(logits, target).item(), weighted.item(), rel_tol=1e-3)


def test_soft_dice_by_hand():
    logits = torch.zeros(1, 1, 2, 2)  # p = 0.5 everywhere
    target = torch.tensor([1.0, 0.0, 1.0, 1.0]).reshape(1, 1, 2, 2)
    # (2 * 1.5 + 1) / (2 + 3 + 1)
    assert soft_dice(logits, target).item() == pytest.approx(4 / 6)


def test_soft_dice_pools_the_whole_batch():
    logits = torch.tensor([[[[20.0]]], [[[-20.0]]]])
    target = torch.tensor([[[[1.0]]], [[[0.0]]]])
    assert soft_dice(logits, target).item() == pytest.approx(1.0, abs=1e-6)


def test_loss_combines_the_terms_and_has_finite_gradients():
    torch.manual_seed(1)
    logits = (torch.randn(3, 1, 6, 6) * 50).requires_grad_()
    target = (torch.rand(3, 1, 6, 6) < 0.5).float()
    loss = segmentation_loss(logits, target)
    expected = 10 * focal_loss(logits, target) - torch.log(soft_dice(logits, target))
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    empty = torch.zeros(1, 1, 4, 4)
    assert torch.isfinite(segmentation_loss(torch.full((1, 1, 4, 4), -30.0, requires_grad=True), empty))
