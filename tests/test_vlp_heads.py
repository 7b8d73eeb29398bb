"""Projection heads: shapes, MGCA's parameter names, masked local projection, GLoRIA's embedders and norms."""

from __future__ import annotations

import torch

from medvlp_bench_plugins.methods.vlp_heads import (
    GlobalProjectionHead,
    GloriaEmbeddingNorms,
    GloriaImageEmbedders,
    LocalProjectionHead,
)


def test_global_head_shapes_and_release_names():
    head = GlobalProjectionHead(32, hidden_dim=16, out_dim=8)
    assert head(torch.randn(5, 32)).shape == (5, 8)
    names = {name.rsplit(".", 1)[0] for name, _ in head.state_dict().items()}
    assert names == {"head.0", "head.1", "head.3", "head.4"}
    assert head.head[4].weight is None  # final BatchNorm without affine parameters


def test_local_head_projects_every_token():
    head = LocalProjectionHead(32, hidden_dim=16, out_dim=8)
    tokens = torch.randn(3, 7, 32)
    assert head(tokens).shape == (3, 7, 8)
    assert isinstance(head.head[0], torch.nn.Conv1d) and head.head[0].kernel_size == (1,)


def test_masked_local_head_ignores_padding():
    torch.manual_seed(0)
    head = LocalProjectionHead(6, hidden_dim=10, out_dim=4)
    real = torch.randn(5, 6)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    padded = torch.zeros(2, 4, 6)
    padded[mask] = real
    padded[~mask] = 1000.0
    out = head(padded, mask)
    assert torch.equal(out[~mask], torch.zeros(3, 4))
    assert torch.allclose(out[mask], head(real[None])[0], atol=1e-6)


def test_gloria_embedders():
    embedders = GloriaImageEmbedders(global_dim=12, local_dim=6, embedding_dim=5)
    image_global, regions = embedders(torch.randn(2, 12), torch.randn(2, 9, 6))
    assert image_global.shape == (2, 5) and regions.shape == (2, 9, 5)
    assert embedders.global_embedder.bias is not None and embedders.local_embedder.bias is None


def test_gloria_embedding_norms_standardise_each_embedding_over_the_batch_and_real_words_only():
    torch.manual_seed(0)
    norms = GloriaEmbeddingNorms(4).train()
    image_global, regions = torch.randn(6, 4) * 3 + 5, torch.randn(6, 9, 4) * 2 - 1
    report, words = torch.randn(6, 4) + 10, torch.randn(6, 5, 4)
    mask = torch.rand(6, 5) > 0.3
    mask[:, 0] = True
    words[~mask] = 1000.0
    g, r = norms.image_side(image_global, regions)
    s, e = norms.text_side(report, words, mask)

    def standardised(x):  # BatchNorm1d in training: biased variance, eps 1e-5
        return (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-5).sqrt()

    assert torch.allclose(g, standardised(image_global), atol=1e-5)
    assert torch.allclose(r.flatten(0, 1), standardised(regions.flatten(0, 1)), atol=1e-5)
    assert torch.allclose(s, standardised(report), atol=1e-5)
    assert torch.allclose(e[mask], standardised(words[mask]), atol=1e-5)
    assert torch.equal(e[~mask], torch.zeros_like(e[~mask]))
    assert all(parameter is None for parameter in (norms.image.weight, norms.word.bias))
