"""Frozen-feature cache: fingerprints, model input transform, no encoder forward passes on a hit."""

from __future__ import annotations

import numpy as np
import torch

from medvlp_bench.encoder import ImageEncoder
from medvlp_bench.protocols.feature_cache import cached_global_features, encoder_fingerprint, model_input


class CountingEncoder(ImageEncoder):
    input_size = 8
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)
    global_dim = 3

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.calls = 0

    def global_features(self, x):
        self.calls += 1
        return x.mean(dim=(2, 3)) * self.scale


def test_model_input_crops_centre_repeats_grey_and_normalises():
    images = torch.zeros(1, 10, 10, dtype=torch.uint8)
    images[0, 1:9, 1:9] = 255
    x = model_input(images, CountingEncoder())
    assert x.shape == (1, 3, 8, 8)
    assert torch.allclose(x, torch.full_like(x, (1.0 - 0.5) / 0.25))


def test_fingerprint_tracks_weights():
    assert encoder_fingerprint(CountingEncoder(1.0)) == encoder_fingerprint(CountingEncoder(1.0))
    assert encoder_fingerprint(CountingEncoder(1.0)) != encoder_fingerprint(CountingEncoder(2.0))


def test_second_call_costs_no_encoder_forward(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(130, 10, 10), dtype=np.uint8)
    encoder = CountingEncoder()
    key = encoder_fingerprint(encoder)
    first = cached_global_features(encoder, key, images, "imgs", tmp_path, label="t")
    calls = encoder.calls
    assert calls == 3  # 130 images in batches of 64
    second = cached_global_features(encoder, key, images, "imgs", tmp_path, label="t")
    assert encoder.calls == calls and np.array_equal(first, second)
    expected = ((images[:, 1:9, 1:9] / 255.0 - 0.5) / 0.25).mean(axis=(1, 2))
    assert np.allclose(first[:, 0], expected, atol=1e-5)
