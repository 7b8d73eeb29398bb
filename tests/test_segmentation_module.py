"""SegmentationModule: the optimiser covers only trainable parameters and the learning-rate schedules."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from medvlp_bench_plugins.protocols.segmentation_module import SegmentationModule


class TwoLayerSegmenter(nn.Module):
    """A frozen 1x1 conv followed by a trainable one (stands in for encoder and decoder)."""

    def __init__(self):
        super().__init__()
        self.frozen, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 1, 1)
        self.frozen.requires_grad_(False)

    def forward(self, x):
        return self.head(self.frozen(x))


def _module(schedule: str, steps: int = 10) -> SegmentationModule:
    module = SegmentationModule(TwoLayerSegmenter(), (0.5,) * 3, (0.25,) * 3, lr=1e-3, weight_decay=0.05,
                                lr_schedule=schedule)
    module._trainer = SimpleNamespace(estimated_stepping_batches=steps)
    return module


def test_constant_schedule_returns_a_bare_adamw_over_the_trainable_parameters():
    module = _module("constant")
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    (group,) = optimizer.param_groups
    assert {id(p) for p in group["params"]} == {id(p) for p in module.segmenter.head.parameters()}
    assert group["lr"] == 1e-3 and group["weight_decay"] == 0.05


@pytest.mark.parametrize("step", [0, 3, 5, 10])
def test_cosine_schedule_anneals_per_step_to_zero_over_the_fit(step):
    config = _module("cosine", steps=10).configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    for _ in range(step):
        optimizer.step()
        scheduler.step()
    expected = 1e-3 * (1 + math.cos(math.pi * step / 10)) / 2
    assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, abs=1e-12)
