"""The phantom's findings are learnable: a tiny CNN trained on a few hundred images separates them.

Each check renders 480 balanced 128 px images (the other findings at their default prevalences, opacity-like
findings off), averages them down to 64 px, standardises each image, trains a three-layer CNN for 12 epochs on
360 of them (one CPU thread, a few seconds) and asserts a held-out AUROC above 0.8.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from medvlp_bench.synthetic import DEFAULT_PREVALENCE, render_study, sample_study

IMAGES, TRAIN, RENDER_SIZE, INPUT_SIZE, EPOCHS, BATCH = 480, 360, 128, 64, 12, 32


def _dataset(finding: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Alternating negative / positive images for ``finding`` and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    factor = RENDER_SIZE // INPUT_SIZE
    images, labels = [], []
    for index in range(IMAGES):
        prevalence = dict(DEFAULT_PREVALENCE, lung_opacity=0.0, consolidation=0.0, covid19=0.0)
        prevalence[finding] = float(index % 2)
        image = render_study(sample_study(rng, prevalence), size=RENDER_SIZE).image.astype(np.float32)
        image = image.reshape(INPUT_SIZE, factor, INPUT_SIZE, factor).mean(axis=(1, 3))
        images.append((image - image.mean()) / (image.std() + 1e-6))
        labels.append(index % 2)
    return torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels, dtype=torch.float32)


def _network(width: int = 8) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 1
    for multiple in (1, 2, 4):
        layers += [nn.Conv2d(channels, width * multiple, 3, padding=1), nn.BatchNorm2d(width * multiple), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if multiple < 4 else [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        channels = width * multiple
    return nn.Sequential(*layers, nn.Linear(channels, 1))


def _held_out_auroc(finding: str, seed: int = 0) -> float:
    images, labels = _dataset(finding, seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        network = _network()
        optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
        for _ in range(EPOCHS):
            network.train()
            order = torch.randperm(TRAIN)
            for start in range(0, TRAIN, BATCH):
                batch = order[start:start + BATCH]
                logits = network(images[batch]).squeeze(1)
                loss = nn.functional.binary_cross_entropy_with_logits(logits, labels[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        network.eval()
        with torch.no_grad():
            scores = network(images[TRAIN:]).squeeze(1).numpy()
    finally:
        torch.set_num_threads(threads)
    return float(roc_auc_score(labels[TRAIN:].numpy(), scores))


@pytest.mark.parametrize("finding", ["lung_opacity", "pneumothorax"])
def test_tiny_cnn_learns_the_finding(finding):
    assert _held_out_auroc(finding) > 0.8
