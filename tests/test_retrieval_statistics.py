"""Retrieval statistics: Recall@K and Precision@K under bootstrap weights against a plain loop over the resampled
queries, the resampling units of each direction, and restriction to shared queries."""

from __future__ import annotations

import numpy as np
import pytest

from medvlp_bench.statistics.bootstrap import evaluate_resamples, full_value, patient_counts, patient_index
from medvlp_bench.statistics.record_statistics import resampling_units, restrict, statistic_for
from medvlp_bench.statistics.retrieval import numbered, parse_metric

N_IMAGES, CLASSES, PROMPTS = 120, ("a", "b", "c"), 4


def loop_ranking(scores: np.ndarray) -> list[int]:
    """Candidates best first (descending score, ties: lower index first)."""
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j))


def loop_recall(scores: np.ndarray, relevant: np.ndarray, queries: list[int], k: int) -> float:
    hits = []
    for query in queries:
        order = loop_ranking(scores[query])
        hits.append(next(rank for rank, candidate in enumerate(order) if relevant[query, candidate]) < k)
    return sum(hits) / len(hits)


def loop_precision(scores: np.ndarray, relevant: np.ndarray, queries: list[int], k: int) -> float:
    return sum(sum(relevant[query, j] for j in loop_ranking(scores[query])[:k]) / k for query in queries) / len(queries)


def class_level(seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Class-level retrieval outputs of random scores (images x prompts), the score matrix and its relevance;
    three images per patient."""
    rng = np.random.default_rng(seed)
    image_label = np.arange(N_IMAGES) % len(CLASSES)
    text_label = np.repeat(np.arange(len(CLASSES)), PROMPTS)
    relevant = image_label[:, None] == text_label[None, :]
    scores = rng.normal(size=relevant.shape) + 0.8 * relevant
    ks = np.array([5, 10, 100])

    def ranks(matrix, relevance):
        return np.array([next(r for r, j in enumerate(loop_ranking(row)) if rel[j]) for row, rel in zip(matrix,
                                                                                                       relevance)])

    def precisions(matrix, relevance):
        return np.array([[loop_precision(matrix, relevance, [q], k) if k <= matrix.shape[1] else np.nan
                          for k in ks] for q in range(len(matrix))])

    outputs = {
        "kind": np.array("retrieval"), "sample_id": np.array([f"img{i}" for i in range(N_IMAGES)]),
        "patient_id": np.array([f"pat{i // 3}" for i in range(N_IMAGES)]),
        "rank_image_to_text": ranks(scores, relevant), "rank_text_to_image": ranks(scores.T, relevant.T),
        "text_query": np.array([f"{CLASSES[label]} prompt {i % PROMPTS}" for i, label in enumerate(text_label)]),
        "image_label": image_label, "text_label": text_label, "label_names": np.array(CLASSES),
        "precision_k": ks, "precision_image_to_text": precisions(scores, relevant),
        "precision_text_to_image": precisions(scores.T, relevant.T),
    }
    return outputs, scores, relevant


def report_level(seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Report retrieval outputs: image i's report is text i; two images per study share one report text."""
    rng = np.random.default_rng(seed)
    study = np.arange(N_IMAGES) // 2
    relevant = study[:, None] == study[None, :]
    scores = rng.normal(size=relevant.shape) + 1.5 * np.eye(N_IMAGES)

    def ranks(matrix, relevance):
        return np.array([next(r for r, j in enumerate(loop_ranking(row)) if rel[j]) for row, rel in zip(matrix,
                                                                                                       relevance)])

    outputs = {
        "kind": np.array("retrieval"), "sample_id": np.array([f"img{i}" for i in range(N_IMAGES)]),
        "patient_id": np.array([f"pat{i // 4}" for i in range(N_IMAGES)]),
        "rank_image_to_text": ranks(scores, relevant), "rank_text_to_image": ranks(scores.T, relevant.T),
        "text_query": np.array([f"report of study {s}" for s in study]),
    }
    return outputs, scores, relevant


def resampled_queries(clusters: np.ndarray, n_resamples: int, seed: int) -> list[list[int]]:
    """The resamples of :func:`evaluate_resamples` written out: each query repeated as often as its cluster was
    drawn (the same draws: ``patient_counts`` with the same seed)."""
    index, n_clusters = patient_index(clusters)
    counts = patient_counts(n_clusters, n_resamples, seed)
    return [[query for query in range(len(clusters)) for _ in range(row[index[query]])] for row in counts]


@pytest.mark.parametrize("metric", ["i2t_recall_at_1", "i2t_recall_at_5", "t2i_recall_at_10", "i2t_precision_at_5",
                                    "i2t_precision_at_10", "t2i_precision_at_5", "t2i_precision_at_100"])
def test_class_level_metrics_under_resampling_match_a_loop_over_the_resampled_queries(metric):
    outputs, scores, relevant = class_level()
    direction, measure, k = parse_metric(metric)
    matrix, relevance = (scores, relevant) if direction == "i2t" else (scores.T, relevant.T)
    measure_of = loop_recall if measure == "recall" else loop_precision
    statistic = statistic_for(metric, outputs)
    assert full_value(statistic, len(matrix)) == pytest.approx(measure_of(matrix, relevance, list(range(len(matrix))),
                                                                          k), abs=1e-12)
    _, clusters = resampling_units(metric, outputs)
    values = evaluate_resamples([statistic], clusters, n_resamples=20, seed=3)[0]
    expected = [measure_of(matrix, relevance, queries, k) for queries in resampled_queries(clusters, 20, 3)]
    assert values == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("metric", ["i2t_recall_at_1", "t2i_recall_at_5"])
def test_report_retrieval_resamples_images_and_reports_by_patient(metric):
    outputs, scores, relevant = report_level()
    ids, clusters = resampling_units(metric, outputs)
    assert list(ids) == list(outputs["sample_id"]) and list(clusters) == list(outputs["patient_id"])
    direction, _, k = parse_metric(metric)
    matrix, relevance = (scores, relevant) if direction == "i2t" else (scores.T, relevant.T)
    values = evaluate_resamples([statistic_for(metric, outputs)], clusters, n_resamples=20, seed=5)[0]
    expected = [loop_recall(matrix, relevance, queries, k) for queries in resampled_queries(clusters, 20, 5)]
    assert values == pytest.approx(expected, abs=1e-12)


def test_class_level_text_queries_are_the_prompts_each_its_own_unit():
    outputs, _, _ = class_level()
    ids, clusters = resampling_units("t2i_precision_at_5", outputs)
    assert list(ids) == list(outputs["text_query"]) and list(clusters) == list(ids)
    assert list(resampling_units("i2t_precision_at_5", outputs)[1]) == list(outputs["patient_id"])
    assert list(numbered(np.array(["x", "y", "x", "x"]))) == ["x", "y", "x #2", "x #3"]


def test_restriction_keeps_the_queries_of_the_metric_in_the_given_order():
    outputs, scores, relevant = class_level()
    prompts = outputs["text_query"][[7, 2, 9]]
    restricted = restrict(outputs, prompts, "t2i_recall_at_5")
    assert list(restricted["text_query"]) == list(prompts)
    assert full_value(statistic_for("t2i_recall_at_5", restricted), 3) == pytest.approx(
        loop_recall(scores.T, relevant.T, [7, 2, 9], 5))
    images = outputs["sample_id"][::-2]
    restricted = restrict(outputs, images, "i2t_precision_at_10")
    queries = list(range(N_IMAGES))[::-2]
    assert list(restricted["sample_id"]) == list(images)
    assert len(restricted["rank_text_to_image"]) == len(CLASSES) * PROMPTS  # the prompts are left alone
    assert full_value(statistic_for("i2t_precision_at_10", restricted), len(queries)) == pytest.approx(
        loop_precision(scores, relevant, queries, 10))
    report, scores, relevant = report_level()
    restricted = restrict(report, report["sample_id"][10:30], "t2i_recall_at_1")
    assert full_value(statistic_for("t2i_recall_at_1", restricted), 20) == pytest.approx(
        loop_recall(scores.T, relevant.T, list(range(10, 30)), 1))


def test_metrics_without_a_defined_statistic_get_none():
    outputs, _, _ = class_level()
    assert statistic_for("i2t_precision_at_100", outputs) is None  # 12 prompts: K = 100 exceeds the candidates
    assert statistic_for("i2t_precision_at_7", outputs) is None  # K not computed
    assert statistic_for("i2t_map", outputs) is None
    report, _, _ = report_level()
    assert statistic_for("i2t_precision_at_5", report) is None  # report retrieval has no precision
    without_texts = {name: value for name, value in outputs.items() if name != "text_query"}
    assert statistic_for("t2i_recall_at_5", without_texts) is None
    assert statistic_for("i2t_recall_at_5", without_texts) is not None
