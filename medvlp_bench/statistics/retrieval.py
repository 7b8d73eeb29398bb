"""Statistics of retrieval outputs: Recall@K and Precision@K as means over queries, and what one bootstrap draw
resamples for each direction.

Metric names, as the retrieval protocols report them (fractions): ``{direction}_recall_at_{K}`` and
``{direction}_precision_at_{K}``, direction ``i2t`` (image queries ranking the texts) or ``t2i`` (text queries
ranking the images).

* Recall@K ``= (1/Q) sum_q [r_q < K]``, ``r_q`` the 0-based rank of query q's first relevant candidate
  (``rank_image_to_text`` (N,), ``rank_text_to_image`` (Q,));
* Precision@K ``= (1/Q) sum_q p_q(K)``, ``p_q(K)`` the share of relevant candidates in query q's top K, read from
  ``precision_image_to_text`` (N, k) / ``precision_text_to_image`` (Q, k) at the column of K in ``precision_k``
  (class-level retrieval only; a column of NaN, K above the number of candidates, has no statistic).

Under bootstrap weights both are weighted means over the queries, ``sum_q w_q v_q / sum_q w_q``
(:class:`~medvlp_bench.statistics.bootstrap.MeanStatistic`). The candidates stay fixed: each query's rank and
precision were computed against all candidates of the run, and a resample reweights the queries only (the usual
query bootstrap of retrieval evaluation; resampling the candidates would need the full score matrix).

Resampling units (:func:`retrieval_units`: an id per query, matched across runs, and its cluster):

* image queries: the image's ``sample_id``, clustered by its ``patient_id`` (all images of a drawn patient come
  along, as in every other cell);
* text queries of report retrieval (no ``text_label``; one text per image, text j = sample j's report): the
  report belongs to sample j's study, so it takes sample j's id and patient; a patient's images and reports are
  drawn together;
* text queries of class-level retrieval (``text_label`` present; the queries are the class prompts): a prompt has
  no patient, so each prompt is its own unit, identified by its text (``text_query``; a repeated text is numbered
  ``"<text> #2"``, ...). The interval then says how much the score depends on which prompts were written, for this
  image set; the classes are not resampled (five classes are too few clusters for a bootstrap).
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

from medvlp_bench.statistics.bootstrap import MeanStatistic

_METRIC = re.compile(r"^(i2t|t2i)_(recall|precision)_at_(\d+)$")

#: arrays aligned with the image queries (the test samples)
IMAGE_ARRAYS = frozenset({"sample_id", "patient_id", "rank_image_to_text", "precision_image_to_text", "image_label"})
#: arrays aligned with the text queries
TEXT_ARRAYS = frozenset({"rank_text_to_image", "precision_text_to_image", "text_label", "text_query"})


def parse_metric(metric: str) -> Optional[tuple[str, str, int]]:
    """``(direction, measure, K)`` of a retrieval metric name, e.g. ``("i2t", "precision", 5)``, or None."""
    match = _METRIC.match(metric)
    return (match[1], match[2], int(match[3])) if match else None


def is_class_level(outputs: dict) -> bool:
    """Class-level retrieval (text queries are class prompts) rather than report retrieval."""
    return "text_label" in outputs


def _queries_are_texts(metric: str, outputs: dict) -> bool:
    parsed = parse_metric(metric)
    return parsed is not None and parsed[0] == "t2i" and is_class_level(outputs)


def numbered(texts: np.ndarray) -> np.ndarray:
    """The texts as ids: a text's second, third, ... occurrence gets ``" #2"``, ``" #3"``, ... appended."""
    seen: dict[str, int] = {}
    ids = []
    for text in np.asarray(texts).tolist():
        seen[text] = seen.get(text, 0) + 1
        ids.append(text if seen[text] == 1 else f"{text} #{seen[text]}")
    return np.array(ids, dtype=str)


def retrieval_units(metric: str, outputs: dict) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(ids, clusters)`` of the queries behind ``metric`` (module docstring), or None where the outputs cannot
    identify them (text queries of report retrieval that are not one per image; prompts without their texts)."""
    parsed = parse_metric(metric)
    if parsed is None:
        return None
    if parsed[0] == "i2t":
        return outputs["sample_id"], outputs["patient_id"]
    if is_class_level(outputs):
        if "text_query" not in outputs:
            return None
        ids = numbered(outputs["text_query"])
        return ids, ids
    if len(outputs["rank_text_to_image"]) != len(outputs["sample_id"]):
        return None
    return outputs["sample_id"], outputs["patient_id"]


def retrieval_statistic(metric: str, outputs: dict) -> Optional[MeanStatistic]:
    """The statistic of a Recall@K or Precision@K metric (module docstring), or None."""
    parsed = parse_metric(metric)
    if parsed is None or retrieval_units(metric, outputs) is None:
        return None
    direction, measure, k = parsed
    queries = "image_to_text" if direction == "i2t" else "text_to_image"
    if measure == "recall":
        return MeanStatistic((outputs[f"rank_{queries}"] < k).astype(np.float64))
    if "precision_k" not in outputs or k not in outputs["precision_k"].tolist():
        return None
    column = outputs[f"precision_{queries}"][:, outputs["precision_k"].tolist().index(k)]
    return None if np.isnan(column).any() else MeanStatistic(column)


def restricted_arrays(metric: str, outputs: dict) -> frozenset:
    """Names of the arrays aligned with the queries of ``metric``: the text queries' for class-level ``t2i``
    metrics, else the images' (and, for report retrieval, the reports', one per image)."""
    if _queries_are_texts(metric, outputs):
        return TEXT_ARRAYS
    return IMAGE_ARRAYS if is_class_level(outputs) else IMAGE_ARRAYS | TEXT_ARRAYS
