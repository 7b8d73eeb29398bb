"""The phantom's findings are learnable from a few hundred images.

Each check renders 480 balanced 128 px images (the other findings at their default prevalences, opacity-like
findings off), averages them down to 64 px, standardises each image and trains a tiny network for 12 epochs on
360 of them (one CPU thread, seconds):

* lung opacity, from image labels: a three-layer CNN reaches a held-out AUROC above 0.8;
* pneumothorax, from its masks (since synthetic v2 its rim is too faint for 360 image labels): a dilated
  fully-convolutional net outlines it on the held-out positive images with a mean Dice at least 0.15 above the
  best location prior (the mean training mask, thresholded), so the image content, not the position, tells where
  the rim is.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from medvlp_bench_plugins.synthetic import DEFAULT_PREVALENCE, render_study, sample_study

IMAGES, TRAIN, RENDER_SIZE, INPUT_SIZE, EPOCHS, BATCH = 480, 360, 128, 64, 12, 32


def _downsampled(array: np.ndarray) -> np.ndarray:
    """Mean of each ``RENDER_SIZE // INPUT_SIZE`` square block: (RENDER_SIZE,)*2 -> (INPUT_SIZE,)*2 float32."""
    factor = RENDER_SIZE // INPUT_SIZE
    return array.astype(np.float32).reshape(INPUT_SIZE, factor, INPUT_SIZE, factor).mean(axis=(1, 3))


def _dataset(finding: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alternating negative / positive images for ``finding``, their 0/1 labels and pneumothorax masks
    ((N, 1, 64, 64); a pixel is positive when more than half of its block is)."""
    rng = np.random.default_rng(seed)
    images, labels, masks = [], [], []
    for index in range(IMAGES):
        prevalence = dict(DEFAULT_PREVALENCE, lung_opacity=0.0, consolidation=0.0, covid19=0.0)
        prevalence[finding] = float(index % 2)
        case = render_study(sample_study(rng, prevalence), size=RENDER_SIZE)
        image = _downsampled(case.image)
        images.append((image - image.mean()) / (image.std() + 1e-6))
        labels.append(index % 2)
        mask = case.records.get("pneumothorax")
        masks.append(np.zeros((INPUT_SIZE, INPUT_SIZE), bool) if mask is None else _downsampled(mask) > 0.5)
    return (torch.from_numpy(np.stack(images))[:, None], torch.tensor(labels, dtype=torch.float32),
            torch.from_numpy(np.stack(masks))[:, None].float())


def _network(width: int = 8) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 1
    for multiple in (1, 2, 4):
        layers += [nn.Conv2d(channels, width * multiple, 3, padding=1), nn.BatchNorm2d(width * multiple), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if multiple < 4 else [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        channels = width * multiple
    return nn.Sequential(*layers, nn.Linear(channels, 1))


def _pixel_network(width: int = 8) -> nn.Module:
    """Three dilated 3x3 convolutions (dilation 1, 2, 4: a 15 px receptive field) and a 1x1 logit layer."""
    layers: list[nn.Module] = []
    channels = 1
    for dilation, out in ((1, width), (2, 2 * width), (4, 2 * width)):
        layers += [nn.Conv2d(channels, out, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    return nn.Sequential(*layers, nn.Conv2d(channels, 1, 1))


def _train(build: Callable[[], nn.Module], inputs: torch.Tensor, targets: torch.Tensor, seed: int,
           pos_weight: float = 1.0) -> torch.Tensor:
    """Seed torch, build the network and train it on the first ``TRAIN`` items with Adam (lr 3e-3) and weighted
    BCE on one CPU thread; the held-out logits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        network = build()
        optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
        weight = torch.tensor(pos_weight)
        for _ in range(EPOCHS):
            network.train()
            order = torch.randperm(TRAIN)
            for start in range(0, TRAIN, BATCH):
                batch = order[start:start + BATCH]
                logits = network(inputs[batch]).reshape(targets[batch].shape)
                loss = nn.functional.binary_cross_entropy_with_logits(logits, targets[batch], pos_weight=weight)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        network.eval()
        with torch.no_grad():
            return network(inputs[TRAIN:]).reshape(targets[TRAIN:].shape)
    finally:
        torch.set_num_threads(threads)


def _mean_dice(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over images of 2 |P n T| / (|P| + |T|) (the truths here are never empty)."""
    overlap = (predicted * truth).flatten(1).sum(1)
    return float((2 * overlap / (predicted.flatten(1).sum(1) + truth.flatten(1).sum(1))).mean())


def test_tiny_cnn_learns_lung_opacity_from_image_labels():
    images, labels, _ = _dataset("lung_opacity", seed=0)
    scores = _train(_network, images, labels, seed=0)
    assert roc_auc_score(labels[TRAIN:].numpy(), scores.numpy()) > 0.8


def test_tiny_fcn_outlines_pneumothorax_better_than_its_location_prior():
    images, labels, masks = _dataset("pneumothorax", seed=0)
    logits = _train(_pixel_network, images, masks, seed=0, pos_weight=10.0)
    positive = labels[TRAIN:] > 0
    truth = masks[TRAIN:][positive]
    learnt = _mean_dice((logits[positive] > 0).float(), truth)
    prior = masks[:TRAIN].mean(dim=0, keepdim=True)
    best_prior = max(_mean_dice((prior > level).float().expand_as(truth), truth) for level in (0.05, 0.1, 0.2, 0.3))
    assert learnt > best_prior + 0.15
