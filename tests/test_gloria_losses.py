"""Tests of GLoRIA's batched global and local losses against per-caption loops written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medvlp_bench_plugins.methods.contrastive_losses import info_nce_loss
from medvlp_bench_plugins.methods.gloria_losses import gloria_global_loss, gloria_local_loss

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def loop_local_loss(regions, words, word_counts, aggregation="sum"):
    """The authors' algorithm, one caption and one image at a time: a softmax over the caption's words for each
    region, 4 x that softmaxed over regions, cosine of each word with its attended context, exp(5 x cos) summed
    (or averaged) over the words, log; then 10 x that score in a cross-entropy both ways."""
    batch = regions.shape[0]
    scores = torch.zeros(batch, batch)
    own_attention = []
    for c in range(batch):
        caption = words[c, : word_counts[c]]
        column = []
        for b in range(batch):
            dots = caption @ regions[b].T
            attention = torch.softmax(4.0 * torch.softmax(dots, dim=0), dim=1)
            context = attention @ regions[b]
            cosine = (caption * context).sum(1) / (caption.norm(dim=1) * context.norm(dim=1)).clamp(min=1e-8)
            matches = torch.exp(5.0 * cosine)
            column.append(torch.log(matches.sum() if aggregation == "sum" else matches.mean()))
            if b == c:
                own_attention.append(attention)
        scores = scores.index_put((torch.arange(batch), torch.tensor(c)), torch.stack(column))
    targets = torch.arange(batch)
    loss = F.cross_entropy(10.0 * scores, targets) + F.cross_entropy(10.0 * scores.T, targets)
    return loss, own_attention


def random_batch(batch=5, regions=9, max_words=7, dim=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    word_counts = torch.tensor([7, 1, 3, 5, 2][:batch])
    word_mask = torch.arange(max_words)[None, :] < word_counts[:, None]
    region_features = torch.randn(batch, regions, dim, generator=generator).requires_grad_()
    word_embeddings = torch.randn(batch, max_words, dim, generator=generator)
    # Padded words hold arbitrary values: the mask alone must keep them out.
    word_embeddings = word_embeddings.requires_grad_()
    return region_features, word_embeddings, word_mask, word_counts


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_local_loss_equals_per_caption_loop(aggregation):
    regions, words, word_mask, word_counts = random_batch()
    result = gloria_local_loss(regions, words, word_mask, aggregation=aggregation)
    reference, reference_attention = loop_local_loss(regions, words, word_counts, aggregation)
    torch.testing.assert_close(result.loss, reference, **TOLERANCE)
    torch.testing.assert_close(result.loss, result.image_to_text + result.text_to_image)
    for c, attention in enumerate(reference_attention):
        torch.testing.assert_close(result.attention[c, : word_counts[c]], attention, **TOLERANCE)
        assert torch.all(result.attention[c, word_counts[c] :] == 0)
    gradients = torch.autograd.grad(result.loss, (regions, words))
    loop_gradients = torch.autograd.grad(reference, (regions, words))
    for batched, looped in zip(gradients, loop_gradients):
        assert batched.isfinite().all()
        torch.testing.assert_close(batched, looped, **TOLERANCE)
    padded_word_gradient = gradients[1][~word_mask]
    assert padded_word_gradient.abs().max() == 0


def test_local_loss_mean_of_directions_and_bad_aggregation():
    regions, words, word_mask, _ = random_batch(seed=1)
    summed = gloria_local_loss(regions, words, word_mask).loss
    averaged = gloria_local_loss(regions, words, word_mask, reduction_of_directions="mean").loss
    torch.testing.assert_close(averaged, summed / 2)
    with pytest.raises(ValueError):
        gloria_local_loss(regions, words, word_mask, aggregation="max")


def test_local_loss_under_cpu_autocast_is_finite_and_close_to_fp32():
    regions, words, word_mask, _ = random_batch(seed=2)
    reference = gloria_local_loss(regions, words, word_mask).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = gloria_local_loss(regions, words, word_mask).loss
    assert loss.dtype == torch.float32
    loss.backward()
    assert regions.grad.isfinite().all() and words.grad.isfinite().all()
    torch.testing.assert_close(loss, reference, rtol=5e-2, atol=5e-2)


def loop_global_loss(images, texts):
    batch = images.shape[0]
    logits = torch.stack([
        torch.stack([10.0 * (images[i] @ texts[j]) / (images[i].norm() * texts[j].norm()) for j in range(batch)])
        for i in range(batch)
    ])
    targets = torch.arange(batch)
    return F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)


def test_global_loss_equals_loop_and_is_info_nce_of_normalised_embeddings_at_temperature_one_tenth():
    generator = torch.Generator().manual_seed(3)
    images = (3 * torch.randn(6, 10, generator=generator)).requires_grad_()
    texts = torch.randn(6, 10, generator=generator).requires_grad_()
    loss = gloria_global_loss(images, texts)
    reference = loop_global_loss(images, texts)
    torch.testing.assert_close(loss, reference, **TOLERANCE)
    torch.testing.assert_close(loss, info_nce_loss(F.normalize(images, dim=1), F.normalize(texts, dim=1), 0.1),
                               **TOLERANCE)
    gradients = torch.autograd.grad(loss, (images, texts))
    loop_gradients = torch.autograd.grad(reference, (images, texts))
    for batched, looped in zip(gradients, loop_gradients):
        assert batched.isfinite().all()
        torch.testing.assert_close(batched, looped, **TOLERANCE)
