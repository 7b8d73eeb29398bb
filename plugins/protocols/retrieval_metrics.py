"""Retrieval metrics of a (Q, C) score matrix of queries against candidates and its (Q, C) relevance matrix.

Candidates are ranked by descending score; equal scores keep the candidates' order (a stable sort), so ties are
resolved the same way on every run.

* :func:`first_relevant_ranks`: per query, the 0-based rank of its best-ranked relevant candidate (every query
  needs one);
* Recall@K (CLIP's "R@K", torchmetrics' hit rate) = the share of queries with a relevant candidate among the top
  K: mean over queries of [rank < K];
* :func:`precision_at_k`: per query, the share of relevant candidates among its top K (GLoRIA's Precision@K):
  ``#{relevant in top K} / K`` (K above the number of candidates counts the missing places as misses).
"""

from __future__ import annotations

import torch


def ranking(scores: torch.Tensor) -> torch.Tensor:
    """(Q, C) candidate indices of each query, best first (descending score, stable)."""
    return torch.sort(scores, dim=1, descending=True, stable=True).indices


def first_relevant_ranks(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """(Q,) int64: rank of each query's first relevant candidate in :func:`ranking` order."""
    if not bool(relevant.any(dim=1).all()):
        raise ValueError("every query needs at least one relevant candidate")
    ranked_relevance = torch.gather(relevant.bool(), 1, ranking(scores))
    return ranked_relevance.int().argmax(dim=1).long()


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    return float((ranks < k).double().mean())


def precision_at_k(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> torch.Tensor:
    """(Q,) float64: share of relevant candidates among each query's top ``k``."""
    top = ranking(scores)[:, :k]
    return torch.gather(relevant.bool(), 1, top).double().sum(dim=1) / k
