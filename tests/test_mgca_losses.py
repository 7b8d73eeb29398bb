"""Tests of MGCA's batched losses against straightforward per-sample loops written here."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from medvlp_bench_plugins.methods.mgca_losses import (
    aggregate_word_pieces,
    clip_and_normalise_importance,
    prototype_loss,
    sinkhorn_knopp,
    token_alignment_loss,
)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


# Loop references


def loop_aggregate(embeddings, is_continuation, attention_mask, importance, separator_positions):
    """Walk each report token by token: skip [CLS], stop at [SEP], continuation pieces join the last word."""
    words, weights = [], []
    for b in range(embeddings.shape[0]):
        sample_words, sample_weights = [], []
        for t in range(1, embeddings.shape[1]):
            if not attention_mask[b, t] or t == separator_positions[b]:
                break
            if is_continuation[b, t]:
                if sample_words:
                    sample_words[-1] = sample_words[-1] + embeddings[b, t]
                    sample_weights[-1] = sample_weights[-1] + importance[b, t]
            else:
                sample_words.append(embeddings[b, t])
                sample_weights.append(importance[b, t])
        words.append(sample_words)
        weights.append(sample_weights)
    max_words = max(len(sample) for sample in words)
    out = torch.zeros(embeddings.shape[0], max_words, embeddings.shape[2])
    out_importance = torch.zeros(embeddings.shape[0], max_words)
    mask = torch.zeros(embeddings.shape[0], max_words, dtype=torch.bool)
    for b, (sample_words, sample_weights) in enumerate(zip(words, weights)):
        for k, (word, weight) in enumerate(zip(sample_words, sample_weights)):
            out[b, k], out_importance[b, k], mask[b, k] = word, weight, True
    return out, out_importance, mask


def loop_clip(importance, mask):
    """Per sample: torch.quantile over the non-zero real entries, clip them, divide by the sum."""
    rows = []
    for b in range(importance.shape[0]):
        row = torch.where(mask[b], importance[b], torch.zeros_like(importance[b]))
        nonzero = row != 0
        low = torch.quantile(row[nonzero], 0.1)
        high = torch.quantile(row[nonzero], 0.9)
        row[nonzero] = row[nonzero].clip(low, high)
        rows.append(row / row.sum())
    return torch.stack(rows)


def loop_matching_loss(similarity, weights):
    targets = torch.arange(similarity.shape[0])
    row_loss = F.cross_entropy(similarity, targets, reduction="none")
    column_loss = F.cross_entropy(similarity.T, targets, reduction="none")
    return (weights * (row_loss + column_loss) / 2).sum()


def loop_token_alignment(words, word_mask, word_importance, patches, patch_importance, normalise_patch_context,
                         unmasked_word_candidates=False):
    """One sample at a time, using only the sample's real words (all padded words when Ref-unmasked)."""
    tau = 0.1
    word_weights = loop_clip(word_importance, word_mask)
    if patch_importance is None:
        patch_weights = torch.full(patches.shape[:2], 1.0 / patches.shape[1])
    else:
        patch_weights = loop_clip(patch_importance, torch.ones_like(patch_importance, dtype=torch.bool))
    word_loss, patch_loss = 0.0, 0.0
    for b in range(words.shape[0]):
        n = words.shape[1] if unmasked_word_candidates else int(word_mask[b].sum())
        w, p = words[b, :n], patches[b]
        attention = torch.softmax(w @ p.T / tau, dim=1)
        context = F.normalize(attention @ p, dim=1)
        word_loss = word_loss + loop_matching_loss(w @ context.T / tau, word_weights[b, :n])
        n_real = int(word_mask[b].sum())
        real_words = words[b, :n_real]
        patch_attention = torch.softmax(p @ real_words.T / tau, dim=1)
        patch_context = patch_attention @ real_words
        if normalise_patch_context:
            patch_context = F.normalize(patch_context, dim=1)
        patch_loss = patch_loss + loop_matching_loss(p @ patch_context.T / tau, patch_weights[b])
    return (word_loss + patch_loss) / words.shape[0]


def loop_sinkhorn(scores, eps, iterations):
    """Sinkhorn-Knopp written with explicit loops over prototypes (rows) and samples (columns)."""
    q = torch.exp(scores / eps).T.clone()
    num_prototypes, batch = q.shape
    q = q / q.sum()
    for _ in range(iterations):
        for k in range(num_prototypes):
            q[k] = q[k] / q[k].sum() / num_prototypes
        for b in range(batch):
            q[:, b] = q[:, b] / q[:, b].sum() / batch
    return (q * batch).T


def loop_prototype_loss(images, texts, prototypes, eps, temperature, iterations):
    image_scores, text_scores = images @ prototypes.T, texts @ prototypes.T
    image_codes = loop_sinkhorn(image_scores.detach(), eps, iterations)
    text_codes = loop_sinkhorn(text_scores.detach(), eps, iterations)
    total = 0.0
    for b in range(images.shape[0]):
        image_probs = torch.softmax(image_scores[b] / temperature, 0)
        text_probs = torch.softmax(text_scores[b] / temperature, 0)
        total = total - (image_codes[b] * torch.log(text_probs)).sum() - (text_codes[b] * torch.log(image_probs)).sum()
    return total / images.shape[0] / 2


# Random inputs


def random_tokenisation(batch=6, tokens=20, dim=8, seed=0):
    """Token states, continuation flags (one report starts with a '##' piece), attention masks of varied
    lengths ([SEP] = last attended token), importance with a few exact zeros."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([tokens, 3, 11, 7, 16, 2][:batch])
    attention_mask = (torch.arange(tokens)[None, :] < lengths[:, None]).long()
    is_continuation = torch.rand(batch, tokens, generator=generator) < 0.35
    is_continuation[:, 0] = False
    is_continuation[2, 1] = True
    importance = torch.rand(batch, tokens, generator=generator)
    importance[importance < 0.1] = 0.0
    embeddings = torch.randn(batch, tokens, dim, generator=generator, requires_grad=True)
    return embeddings, is_continuation, attention_mask, importance * attention_mask


def random_words_and_patches(batch=5, words=9, patches=12, dim=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.tensor([9, 1, 4, 6, 2][:batch])
    word_mask = torch.arange(words)[None, :] < counts[:, None]
    word_importance = torch.rand(batch, words, generator=generator) * word_mask
    word_importance[0, 3] = 0.0
    word_embeddings = F.normalize(torch.randn(batch, words, dim, generator=generator), dim=-1)
    patch_embeddings = F.normalize(torch.randn(batch, patches, dim, generator=generator), dim=-1)
    patch_importance = torch.rand(batch, patches, generator=generator)
    return (word_embeddings.requires_grad_(), word_mask, word_importance, patch_embeddings.requires_grad_(),
            patch_importance)


# Word-piece aggregation


@pytest.mark.parametrize("shifted", [False, True])
def test_aggregation_equals_token_loop(shifted):
    embeddings, is_continuation, attention_mask, importance = random_tokenisation()
    result = aggregate_word_pieces(
        embeddings, is_continuation, attention_mask, importance, reference_shifted_importance=shifted
    )
    loop_importance = F.pad(importance[:, 1:], (0, 1)) if shifted else importance
    separators = attention_mask.sum(dim=1) - 1
    words, word_importance, mask = loop_aggregate(embeddings, is_continuation, attention_mask, loop_importance,
                                                  separators)
    assert torch.equal(result.mask, mask)
    torch.testing.assert_close(result.embeddings, words, **TOLERANCE)
    torch.testing.assert_close(result.importance, word_importance, **TOLERANCE)
    result.embeddings.sum().backward()
    assert embeddings.grad.isfinite().all()
    # Gradient 1 exactly on tokens inside words, 0 on [CLS], [SEP], padding and a piece joining [CLS].
    inside = torch.zeros_like(attention_mask, dtype=torch.bool)
    for b in range(embeddings.shape[0]):
        start = 2 if is_continuation[b, 1] else 1
        inside[b, start : int(separators[b])] = True
    assert torch.equal(embeddings.grad[..., 0] == 1, inside)


def test_aggregation_stops_at_an_explicit_separator():
    embeddings, is_continuation, attention_mask, importance = random_tokenisation(seed=1)
    is_separator = torch.zeros_like(attention_mask, dtype=torch.bool)
    separators = attention_mask.sum(dim=1) - 1
    separators[0] = 6
    is_separator[torch.arange(len(separators)), separators] = True
    is_separator[0, separators[0] + 4] = True
    result = aggregate_word_pieces(embeddings, is_continuation, attention_mask, importance, is_separator=is_separator)
    words, word_importance, mask = loop_aggregate(embeddings, is_continuation, attention_mask, importance, separators)
    assert torch.equal(result.mask, mask)
    torch.testing.assert_close(result.embeddings, words, **TOLERANCE)
    torch.testing.assert_close(result.importance, word_importance, **TOLERANCE)


def test_aggregation_of_a_hand_example():
    # [CLS] small left pleural eff ##usion [SEP] [PAD]
    embeddings = torch.arange(8, dtype=torch.float32).reshape(1, 8, 1)
    is_continuation = torch.tensor([[False, False, False, False, False, True, False, False]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]])
    importance = torch.tensor([[0.5, 0.1, 0.2, 0.05, 0.03, 0.02, 0.1, 0.0]])
    result = aggregate_word_pieces(embeddings, is_continuation, attention_mask, importance)
    assert result.embeddings.flatten().tolist() == [1.0, 2.0, 3.0, 9.0]
    torch.testing.assert_close(result.importance, torch.tensor([[0.1, 0.2, 0.05, 0.05]]))
    shifted = aggregate_word_pieces(embeddings, is_continuation, attention_mask, importance,
                                    reference_shifted_importance=True)
    torch.testing.assert_close(shifted.importance, torch.tensor([[0.2, 0.05, 0.03, 0.12]]))
    assert result.mask.tolist() == [[True] * 4]
    assert aggregate_word_pieces(embeddings, is_continuation, attention_mask).importance is None


# Quantile clipping


def test_quantile_clipping_of_a_hand_example():
    # Non-zero real entries 1..5: 10th percentile 1.4, 90th 4.6 (linear interpolation); the zero stays 0;
    # the padded entry (mask False) gets 0 whatever its value.
    importance = torch.tensor([[1.0, 2.0, 0.0, 3.0, 4.0, 5.0, 7.0]])
    mask = torch.tensor([[True, True, True, True, True, True, False]])
    clipped = torch.tensor([[1.4, 2.0, 0.0, 3.0, 4.0, 4.6, 0.0]])
    torch.testing.assert_close(clip_and_normalise_importance(importance, mask), clipped / 15.0)


def test_quantile_clipping_equals_per_sample_loop_and_handles_empty_rows():
    _, word_mask, word_importance, _, _ = random_words_and_patches()
    weights = clip_and_normalise_importance(word_importance, word_mask)
    torch.testing.assert_close(weights, loop_clip(word_importance, word_mask), **TOLERANCE)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(word_mask.shape[0]))
    zero_row = clip_and_normalise_importance(torch.zeros(2, 4), torch.tensor([[True, True, False, False]] * 2))
    torch.testing.assert_close(zero_row, torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 2))


# Token-wise alignment


@pytest.mark.parametrize(
    "use_patch_importance, normalise_patch_context, unmasked_candidates",
    [(False, True, False), (True, False, False), (False, True, True)],
)
def test_token_alignment_equals_per_sample_loop(use_patch_importance, normalise_patch_context, unmasked_candidates):
    words, word_mask, word_importance, patches, patch_importance = random_words_and_patches()
    patch_importance = patch_importance if use_patch_importance else None
    result = token_alignment_loss(
        words, word_mask, word_importance, patches, patch_importance,
        normalise_patch_context=normalise_patch_context, reference_unmasked_word_candidates=unmasked_candidates,
    )
    batched_gradients = torch.autograd.grad(result.loss, (words, patches))
    reference = loop_token_alignment(words, word_mask, word_importance, patches, patch_importance,
                                     normalise_patch_context, unmasked_candidates)
    loop_gradients = torch.autograd.grad(reference, (words, patches))
    torch.testing.assert_close(result.loss, reference, **TOLERANCE)
    torch.testing.assert_close(result.loss, result.word_loss + result.patch_loss)
    for batched, looped in zip(batched_gradients, loop_gradients):
        assert batched.isfinite().all()
        torch.testing.assert_close(batched, looped, **TOLERANCE)


def test_token_alignment_attention_maps_are_distributions_over_real_tokens():
    words, word_mask, word_importance, patches, _ = random_words_and_patches()
    result = token_alignment_loss(words, word_mask, word_importance, patches)
    assert result.word_attention.shape == (5, 9, 12) and result.patch_attention.shape == (5, 12, 9)
    torch.testing.assert_close(result.word_attention.sum(-1), torch.ones(5, 9))
    torch.testing.assert_close(result.patch_attention.sum(-1), torch.ones(5, 12))
    assert (result.patch_attention * ~word_mask[:, None, :]).abs().max() == 0


def test_token_alignment_under_cpu_autocast_is_finite_and_close_to_fp32():
    words, word_mask, word_importance, patches, _ = random_words_and_patches()
    reference = token_alignment_loss(words, word_mask, word_importance, patches).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = token_alignment_loss(words, word_mask, word_importance, patches).loss
    assert loss.dtype == torch.float32
    loss.backward()
    assert words.grad.isfinite().all() and patches.grad.isfinite().all()
    torch.testing.assert_close(loss, reference, rtol=5e-2, atol=5e-2)


# Sinkhorn-Knopp and prototypes


def test_sinkhorn_equals_loop_and_balances_prototypes():
    generator = torch.Generator().manual_seed(0)
    batch, prototypes = 24, 6
    scores = F.normalize(torch.randn(batch, 8, generator=generator), dim=1) @ F.normalize(
        torch.randn(prototypes, 8, generator=generator), dim=1).T
    assignments = sinkhorn_knopp(scores, eps=0.05, iterations=3)
    torch.testing.assert_close(assignments, loop_sinkhorn(scores, 0.05, 3), **TOLERANCE)
    assert assignments.shape == (batch, prototypes)
    # Each sample's distribution over prototypes (a column of Q) sums to 1 ...
    torch.testing.assert_close(assignments.sum(dim=1), torch.ones(batch))
    # ... and each prototype receives about B/K, exactly in the limit of many iterations.
    raw_mass = torch.softmax(scores / 0.05, dim=1).sum(dim=0)
    mass = assignments.sum(dim=0)
    target = torch.full((prototypes,), batch / prototypes)
    assert (mass - target).abs().max() < 0.5 * (raw_mass - target).abs().max()
    converged = sinkhorn_knopp(scores, iterations=200).sum(dim=0)
    torch.testing.assert_close(converged, target, rtol=1e-3, atol=1e-3)


def test_sinkhorn_survives_large_scores_and_has_no_gradient():
    # exp(score / eps) overflows float32 here without the shift by each prototype's maximum.
    scores = torch.tensor([[5.0, -5.0, 1.0], [4.5, 2.0, -4.0], [4.0, 1.5, 0.5]], requires_grad=True)
    assert not torch.exp(scores / 0.05).isfinite().all()
    assignments = sinkhorn_knopp(scores, eps=0.05)
    assert assignments.isfinite().all() and not assignments.requires_grad
    torch.testing.assert_close(assignments.sum(dim=1), torch.ones(3))
    with pytest.raises(ValueError):
        sinkhorn_knopp(scores, iterations=0)


def test_prototype_loss_equals_per_sample_loop_and_trains_prototypes():
    generator = torch.Generator().manual_seed(1)
    images = F.normalize(torch.randn(10, 16, generator=generator), dim=1).requires_grad_()
    texts = F.normalize(torch.randn(10, 16, generator=generator), dim=1).requires_grad_()
    prototypes = F.normalize(torch.randn(20, 16, generator=generator), dim=1).requires_grad_()
    loss = prototype_loss(images, texts, prototypes)
    reference = loop_prototype_loss(images, texts, prototypes, 0.05, 0.2, 3)
    torch.testing.assert_close(loss, reference, **TOLERANCE)
    gradients = torch.autograd.grad(loss, (images, texts, prototypes))
    loop_gradients = torch.autograd.grad(reference, (images, texts, prototypes))
    for batched, looped in zip(gradients, loop_gradients):
        assert batched.isfinite().all() and batched.abs().sum() > 0
        torch.testing.assert_close(batched, looped, **TOLERANCE)


def _sinkhorn_worker(rank: int, world_size: int, init_file: str, scores: torch.Tensor, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        local = scores.chunk(world_size)[rank]
        results[rank] = sinkhorn_knopp(local, distributed=True)
    finally:
        dist.destroy_process_group()


def test_distributed_sinkhorn_equals_sinkhorn_of_the_global_batch():
    scores = torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    with tempfile.TemporaryDirectory() as folder:
        manager = mp.Manager()
        results = manager.dict()
        mp.spawn(_sinkhorn_worker, args=(2, os.path.join(folder, "init"), scores, results), nprocs=2)
        gathered = torch.cat([results[0], results[1]])
        manager.shutdown()
    torch.testing.assert_close(gathered, sinkhorn_knopp(scores), **TOLERANCE)
    assert not torch.allclose(sinkhorn_knopp(scores[:4]), sinkhorn_knopp(scores)[:4], atol=1e-3)
