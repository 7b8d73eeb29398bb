"""Image encoders: the interface's shapes for ResNets and ViTs, torchvision / timm key names, missing weights."""

from __future__ import annotations

import pytest
import torch

from medvlp_bench.errors import WeightsNotFoundError
from medvlp_bench.registry import load_registry


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.mark.parametrize("name", ["resnet18", "resnet18_64", "vit_tiny"])
def test_interface_shapes(registry, name):
    torch.manual_seed(0)
    encoder = registry.get("encoder", name).build().eval()
    size = encoder.input_size
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert encoder.global_features(x).shape == (2, encoder.global_dim)
        maps = encoder.feature_maps(x)
        assert [m.shape[1] for m in maps] == list(encoder.map_channels)
        assert [size // m.shape[-1] for m in maps] == list(encoder.map_strides)
        tokens = encoder.local_tokens(x)
        assert tokens.shape[0] == 2 and tokens.ndim == 3


def test_vit_maps_are_the_patch_tokens(registry):
    encoder = registry.get("encoder", "vit_tiny").build().eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        tokens = encoder.local_tokens(x)
        fmap = encoder.feature_maps(x)[0]
    assert tokens.shape == (1, 64, 192)
    assert torch.equal(fmap[0, :, 2, 3], tokens[0, 2 * 8 + 3])


@pytest.mark.parametrize("name", ["resnet18_64", "vit_tiny"])
def test_global_and_local_come_from_one_forward_pass(registry, name):
    encoder = registry.get("encoder", name).build().eval()
    images = torch.randn(2, 3, encoder.input_size, encoder.input_size)
    first_layer = encoder.model.conv1 if name.startswith("resnet") else encoder.model.patch_embed
    calls = []
    first_layer.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        global_features, local_tokens = encoder.global_and_local(images)
        assert len(calls) == 1
        torch.testing.assert_close(global_features, encoder.global_features(images))
        torch.testing.assert_close(local_tokens, encoder.local_tokens(images))


def test_state_dict_names_follow_torchvision_and_timm(registry):
    resnet = registry.get("encoder", "resnet50").build()
    assert "model.layer4.2.conv3.weight" in resnet.state_dict()
    assert not any(key.startswith("model.fc.") and key.endswith("weight") for key in resnet.state_dict())
    vit = registry.get("encoder", "vit_tiny").build()
    assert "model.blocks.11.attn.qkv.weight" in vit.state_dict() and "model.cls_token" in vit.state_dict()


@pytest.mark.parametrize("name", ["resnet50", "vit_b16"])
def test_missing_imagenet_weights_raise_a_helpful_error(registry, name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    spec = registry.get("encoder", name)
    with pytest.raises(WeightsNotFoundError, match="never downloads"):
        spec.load_imagenet(spec.build())
