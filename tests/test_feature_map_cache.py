"""Frozen multi-scale map cache: level resampling (ViT-like encoders), float16 views, no forward on a hit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medvlp_bench.api import ImageEncoder, model_input
from medvlp_bench_plugins.protocols.feature_map_cache import (
    cached_feature_maps,
    level_sources,
    resample_to_levels,
)


class PatchEncoder(ImageEncoder):
    """A ViT-like encoder: one map at stride 16 (a 16x16 patch embedding); counts its forward passes."""

    input_size = 32
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    map_channels, map_strides = (4,), (16,)

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Conv2d(3, 4, 16, stride=16)
        self.calls = 0

    def feature_maps(self, x):
        self.calls += 1
        return [self.embed(x)]


def test_level_sources_pick_the_nearest_map_and_integer_factors():
    assert level_sources((4, 8, 16, 32), (8, 16, 32)) == [(1, 1.0), (2, 1.0), (3, 1.0)]
    assert level_sources((16,), (8, 16, 32)) == [(0, 0.5), (0, 1.0), (0, 2.0)]
    assert level_sources((8, 32), (16,)) == [(1, 0.5)]  # tie in log scale: the deeper map
    with pytest.raises(ValueError):
        level_sources((12,), (8,))


def test_one_scale_map_is_upsampled_kept_and_pooled():
    fmap = torch.randn(2, 4, 6, 6)
    fine, same, coarse = resample_to_levels([fmap], (16,), (8, 16, 32))
    assert torch.equal(fine, fmap.repeat_interleave(2, 2).repeat_interleave(2, 3))
    assert same is fmap
    assert torch.allclose(coarse, F.avg_pool2d(fmap, 2))


def test_cache_hit_costs_no_forward_and_views_are_float16_maps(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 32, 32), dtype=np.uint8)
    encoder = PatchEncoder().eval()
    first = cached_feature_maps(encoder, "w", images, "imgs", tmp_path, levels=(8, 16, 32), label="t")
    calls = encoder.calls
    assert calls == 1 + 2  # the shape probe, then 40 images in batches of 32
    second = cached_feature_maps(encoder, "w", images, "imgs", tmp_path, levels=(8, 16, 32), label="t")
    assert encoder.calls == calls
    assert [level.shape for level in second] == [(40, 4, 4, 4), (40, 4, 2, 2), (40, 4, 1, 1)]
    assert all(level.dtype == np.float16 and isinstance(level, np.memmap) for level in second)
    with torch.no_grad():
        direct = resample_to_levels(encoder.feature_maps(model_input(torch.from_numpy(images), encoder)), (16,),
                                    (8, 16, 32))
    for cached, expected, again in zip(first, direct, second):
        assert np.array_equal(cached, again)
        assert np.allclose(cached.astype(np.float32), expected.numpy(), atol=2e-3, rtol=2e-3)
    other = cached_feature_maps(encoder, "w", images, "imgs", tmp_path, levels=(16, 32), label="t")
    assert len(other) == 2 and encoder.calls > calls
