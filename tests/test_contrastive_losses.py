"""Tests of the instance-wise InfoNCE loss and the gradient-keeping all-gather."""

from __future__ import annotations

import math
import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from medvlp_bench_plugins.methods.contrastive_losses import (
    gather_with_grad,
    info_nce_loss,
    local_rank_offset,
    reduce_directions,
)


def loop_info_nce(images: torch.Tensor, texts: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample reference: -log of the positive's softmax probability, both directions, summed."""
    total_image_to_text = 0.0
    total_text_to_image = 0.0
    for i in range(images.shape[0]):
        image_logits = torch.stack([images[i] @ texts[j] for j in range(texts.shape[0])]) / temperature
        text_logits = torch.stack([texts[i] @ images[j] for j in range(images.shape[0])]) / temperature
        total_image_to_text = total_image_to_text - torch.log_softmax(image_logits, 0)[i]
        total_text_to_image = total_text_to_image - torch.log_softmax(text_logits, 0)[i]
    return (total_image_to_text + total_text_to_image) / images.shape[0]


def random_pairs(batch: int, dim: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(batch, dim, generator=generator), dim=1)
    texts = F.normalize(torch.randn(batch, dim, generator=generator), dim=1)
    return images.requires_grad_(), texts.requires_grad_()


def test_info_nce_equals_per_sample_loop_and_has_finite_gradients():
    images, texts = random_pairs(9, 16)
    loss = info_nce_loss(images, texts)
    reference = loop_info_nce(images, texts, 0.07)
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-5)
    loss.backward()
    assert images.grad.isfinite().all() and texts.grad.isfinite().all()
    assert images.grad.abs().sum() > 0


def test_info_nce_on_orthonormal_aligned_pairs_matches_closed_form():
    batch, temperature = 6, 0.07
    basis = torch.eye(8, dtype=torch.float64)[:batch]
    # Each row: the positive scores 1/tau, the B-1 negatives 0 -> log(1 + (B-1) e^{-1/tau}) per direction.
    expected = 2 * math.log1p((batch - 1) * math.exp(-1 / temperature))
    torch.testing.assert_close(info_nce_loss(basis, basis, temperature).item(), expected, rtol=1e-9, atol=0)
    expected_at_unit_temperature = 2 * math.log1p((batch - 1) * math.exp(-1.0))
    loss_in_float32 = info_nce_loss(basis.float(), basis.float(), 1.0).item()
    torch.testing.assert_close(loss_in_float32, expected_at_unit_temperature, rtol=1e-6, atol=0)


def test_mean_of_directions_is_half_the_sum():
    images, texts = random_pairs(5, 8, seed=1)
    summed = info_nce_loss(images, texts, reduction_of_directions="sum")
    averaged = info_nce_loss(images, texts, reduction_of_directions="mean")
    torch.testing.assert_close(averaged, summed / 2)
    with pytest.raises(ValueError):
        reduce_directions(summed, summed, "max")


def test_gathered_negatives_with_rank_offsets_reproduce_the_global_batch_loss():
    images, texts = random_pairs(8, 16, seed=2)
    global_loss = info_nce_loss(images, texts)
    local = 4
    per_rank = [
        info_nce_loss(
            images[rank * local : (rank + 1) * local],
            texts[rank * local : (rank + 1) * local],
            all_image_embeddings=images,
            all_text_embeddings=texts,
            rank_offset=rank * local,
        )
        for rank in range(2)
    ]
    torch.testing.assert_close(sum(per_rank) / 2, global_loss)


def test_gather_with_grad_returns_its_input_when_not_distributed():
    tensor = torch.randn(3, 4, requires_grad=True)
    assert not dist.is_initialized()
    assert gather_with_grad(tensor) is tensor
    assert local_rank_offset(3) == 0


def test_info_nce_under_cpu_autocast_is_finite_and_close_to_fp32():
    images, texts = random_pairs(16, 32, seed=3)
    reference = info_nce_loss(images, texts)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = info_nce_loss(images, texts)
    assert loss.dtype == torch.float32
    loss.backward()
    assert images.grad.isfinite().all()
    torch.testing.assert_close(loss, reference, rtol=5e-2, atol=5e-2)


def _gather_worker(rank: int, world_size: int, init_file: str, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        local = torch.full((2, 3), float(rank + 1), requires_grad=True)
        gathered = gather_with_grad(local)
        # Loss on every rank: sum of (row index + 1) * entries, so each row's gradient names its row.
        weights = torch.arange(1, gathered.shape[0] + 1, dtype=torch.float32)[:, None]
        (weights * gathered).sum().backward()
        results[rank] = (gathered.detach().clone(), local.grad.clone(), local_rank_offset(2))
    finally:
        dist.destroy_process_group()


def test_gather_with_grad_concatenates_ranks_and_returns_summed_gradients():
    world_size = 2
    with tempfile.TemporaryDirectory() as folder:
        manager = mp.Manager()
        results = manager.dict()
        mp.spawn(_gather_worker, args=(world_size, os.path.join(folder, "init"), results), nprocs=world_size)
        for rank in range(world_size):
            gathered, gradient, offset = results[rank]
            assert torch.equal(gathered, torch.cat([torch.full((2, 3), 1.0), torch.full((2, 3), 2.0)]))
            assert offset == 2 * rank
            # Both ranks' losses reach rank r's rows 2r, 2r+1 with weights 2r+1, 2r+2: summed over 2 ranks.
            expected = torch.tensor([[2.0 * (2 * rank + 1)], [2.0 * (2 * rank + 2)]]).expand(2, 3)
            assert torch.equal(gradient, expected)
        manager.shutdown()
