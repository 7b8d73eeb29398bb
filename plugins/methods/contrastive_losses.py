"""Instance-wise contrastive (InfoNCE) loss between global image and report embeddings.

Used by ConVIRT (its whole objective) and by MGCA (instance-wise image-text alignment, ITA). Both take the
symmetric form with temperature 0.07 and sum the two directions (Ref); the mean of the directions is offered
as an option. Negatives may come from every rank: gather them with :func:`gather_with_grad` and pass the
gathered tensors together with the local batch's offset into them.

All functions are pure functions of tensors. Similarities are cast to (at least) float32 before the softmax, so
they work under ``torch.autocast`` (bf16 / fp16) as well as in fp32, on CPU and CUDA.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F

DirectionReduction = Literal["sum", "mean"]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (B, ...) from every rank along dim 0, keeping the autograd graph.

    Returns (world_size * B, ...), rank r's rows at r*B .. r*B+B-1 (every rank must pass the same shape).
    The backward pass sums the gradients that all ranks' losses send to a rank's rows and returns them to
    that rank (``torch.distributed.nn.functional.all_gather``). Without an initialised process group, or with
    one rank, ``tensor`` itself is returned.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def local_rank_offset(local_batch_size: int) -> int:
    """Row of the local batch's first sample in :func:`gather_with_grad`'s output: rank * B (0 if not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0
    return dist.get_rank() * local_batch_size


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32, or kept in float64: the precision in which logits enter softmaxes and logsumexps."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def reduce_directions(first: torch.Tensor, second: torch.Tensor, reduction: DirectionReduction) -> torch.Tensor:
    """Combine the losses of the two directions: ``"sum"`` gives L1 + L2 (Ref), ``"mean"`` gives (L1 + L2) / 2."""
    if reduction == "sum":
        return first + second
    if reduction == "mean":
        return (first + second) / 2
    raise ValueError(f"reduction_of_directions must be 'sum' or 'mean', not {reduction!r}")


def info_nce_loss(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    temperature: float = 0.07,
    *,
    all_image_embeddings: torch.Tensor | None = None,
    all_text_embeddings: torch.Tensor | None = None,
    rank_offset: int = 0,
    reduction_of_directions: DirectionReduction = "sum",
) -> torch.Tensor:
    """Symmetric InfoNCE between paired image and text embeddings.

    Shapes: ``image_embeddings`` v and ``text_embeddings`` t are the local batch, (B, D), expected
    L2-normalised (then v t^T is a cosine similarity, dimensionless). ``all_image_embeddings`` /
    ``all_text_embeddings`` (N, D), N >= B, are the candidates (negatives) gathered from all ranks, in which
    the local pairs sit at rows ``rank_offset .. rank_offset + B - 1``; each defaults to the local batch
    (then ``rank_offset`` must be 0).

    Formula, with y_i = rank_offset + i and CE the mean cross-entropy over the B local rows::

        s_{i->t} = v_i t_all^T / tau          (B, N)
        s_{t->i} = t_i v_all^T / tau          (B, N)
        L = CE(s_{i->t}, y) + CE(s_{t->i}, y)          ("sum", Ref; "mean" halves it)

    Without gathered tensors, s_{t->i} = s_{i->t}^T and this is L = CE(s, diag) + CE(s^T, diag) with
    s = v t^T / tau. Returns a scalar (nats).
    """
    candidate_texts = text_embeddings if all_text_embeddings is None else all_text_embeddings
    candidate_images = image_embeddings if all_image_embeddings is None else all_image_embeddings
    batch_size = image_embeddings.shape[0]
    targets = torch.arange(batch_size, device=image_embeddings.device) + rank_offset
    image_to_text_logits = at_least_float32(image_embeddings @ candidate_texts.T) / temperature
    text_to_image_logits = at_least_float32(text_embeddings @ candidate_images.T) / temperature
    return reduce_directions(
        F.cross_entropy(image_to_text_logits, targets),
        F.cross_entropy(text_to_image_logits, targets),
        reduction_of_directions,
    )
