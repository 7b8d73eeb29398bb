"""Retrieval ranks, Recall@K and Precision@K against straightforward loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medvlp_bench_plugins.protocols.retrieval_metrics import first_relevant_ranks, precision_at_k, recall_at_k


def loop_rank(scores: np.ndarray, relevant: np.ndarray) -> int:
    """Walk the candidates best first (ties: lower index first) until a relevant one."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))
    for rank, candidate in enumerate(order):
        if relevant[candidate]:
            return rank
    raise AssertionError("no relevant candidate")


def example(seed: int, queries: int = 30, candidates: int = 12):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(queries, candidates)).astype(np.float64)  # many ties
    relevant = rng.random((queries, candidates)) < 0.2
    relevant[np.arange(queries), rng.integers(0, candidates, size=queries)] = True
    return scores, relevant


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_first_relevant_ranks_match_a_loop(seed):
    scores, relevant = example(seed)
    ranks = first_relevant_ranks(torch.tensor(scores), torch.tensor(relevant))
    assert ranks.tolist() == [loop_rank(s, r) for s, r in zip(scores, relevant)]
    for k in (1, 5, 10):
        expected = np.mean([loop_rank(s, r) < k for s, r in zip(scores, relevant)])
        assert recall_at_k(ranks, k) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_at_k_matches_a_loop(k):
    scores, relevant = example(3)
    expected = []
    for s, r in zip(scores, relevant):
        order = sorted(range(len(s)), key=lambda j: (-s[j], j))
        expected.append(sum(r[j] for j in order[:k]) / k)
    assert precision_at_k(torch.tensor(scores), torch.tensor(relevant), k).numpy() == pytest.approx(expected)


def test_a_query_without_relevant_candidates_is_refused():
    with pytest.raises(ValueError, match="relevant"):
        first_relevant_ranks(torch.zeros(2, 3), torch.tensor([[True, False, False], [False, False, False]]))
