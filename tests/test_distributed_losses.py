"""2-process DDP on CPU (gloo): the losses and gradients equal a single-process run on the same global batch.

A small linear "encoder" pair maps a global batch of 8 (image, text) feature pairs to normalised embeddings.
Single process: the loss on all 8 pairs. DDP: each of 2 ranks holds 4 pairs, gathers the other rank's embeddings
with gradients (ITA negatives) and normalises Sinkhorn across ranks (prototypes); DDP averages the parameter
gradients. The mean of the ranks' losses and the averaged gradients must equal the single-process ones.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from medvlp_bench_plugins.methods.contrastive_losses import gather_with_grad, info_nce_loss, local_rank_offset
from medvlp_bench_plugins.methods.mgca_losses import prototype_loss

WORLD, GLOBAL_BATCH, FEATURES, DIM, PROTOTYPES = 2, 8, 6, 5, 7


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Linear(FEATURES, DIM)
        self.text = nn.Linear(FEATURES, DIM)
        self.prototypes = nn.Linear(DIM, PROTOTYPES, bias=False)

    def forward(self, images, texts):
        return F.normalize(self.image(images), dim=1), F.normalize(self.text(texts), dim=1)


def _batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(GLOBAL_BATCH, FEATURES, generator=generator), torch.randn(GLOBAL_BATCH, FEATURES, generator=generator)


def _loss(model, v, t, distributed: bool):
    if distributed:
        ita = info_nce_loss(v, t, all_image_embeddings=gather_with_grad(v), all_text_embeddings=gather_with_grad(t),
                            rank_offset=local_rank_offset(v.shape[0]))
    else:
        ita = info_nce_loss(v, t)
    proto = prototype_loss(v, t, model.prototypes.weight, distributed=distributed)
    return ita + proto


def _single():
    model = Pair()
    images, texts = _batch()
    v, t = model(images, texts)
    loss = _loss(model, v, t, distributed=False)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


def _worker(rank: int, init_file: str, out_dir: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    model = Pair()
    ddp = DistributedDataParallel(model)
    images, texts = _batch()
    local = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
    v, t = ddp(images[local], texts[local])
    loss = _loss(model, v, t, distributed=True)
    loss.backward()
    torch.save({"loss": loss.detach(), "grads": {n: p.grad.clone() for n, p in model.named_parameters()}},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_two_process_ddp_matches_single_process(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    single_loss, single_grads = _single()
    assert torch.allclose(torch.stack([r["loss"] for r in ranks]).mean(), single_loss, atol=1e-6)
    for name, grad in single_grads.items():
        for rank in ranks:
            assert torch.allclose(rank["grads"][name], grad, atol=1e-6), name
