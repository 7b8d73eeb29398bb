"""Protocol ``retrieval``: image-to-text and text-to-image retrieval with an image-text model, no training.

Two kinds of test table:

* **report retrieval** (a ``text`` column, e.g. MIMIC-CXR's findings + impression): image i's candidate texts are
  the N texts of the table, one per image; text j's candidate images are the N images. A text is relevant to an
  image when it is the image's own report text, character for character (a study's several images share a report,
  and two studies with the same wording cannot be told apart by any model, so either counts as a hit).
* **class-level retrieval** (a ``label`` column and a prompt file, e.g. CheXpert 5x200, as GLoRIA scores it without
  its unreleased reports): the candidate texts are all prompts of all classes; a prompt is relevant to an image of
  its class. Text queries are the prompts.

Scores are the model's (``image_text_scores``; ``similarity=embedding`` by default, since a model's own local
score costs a word-region attention per image-text pair). Metrics (``retrieval_metrics``, fractions):
``i2t_recall_at_K`` and ``t2i_recall_at_K`` for K in 1, 5, 10 (share of queries with a relevant candidate in the top
K) and, for class-level retrieval, ``i2t_precision_at_K`` and ``t2i_precision_at_K`` (mean share of relevant
candidates in the top K) for K in 5, 10, 100 (GLoRIA's) where K does not exceed the number of candidates.

Per-sample outputs (retrieval layout): ``rank_image_to_text`` (N,) and ``rank_text_to_image`` (Q,) 0-based ranks of
the first relevant candidate; ``text_query`` (Q,) the query texts (report retrieval: Q = N, text j is sample j's
report; class-level: the prompts); class-level adds ``image_label`` (N,), ``text_label`` (Q,) int64 class indices,
``label_names``, ``precision_k`` (k,) and ``precision_image_to_text`` (N, k), ``precision_text_to_image`` (Q, k)
per-query precisions (NaN where K exceeds the candidates).
"""

from __future__ import annotations

import numpy as np

from medvlp_bench.api import (
    DataError,
    ImageTextProtocolSpec,
    OptionSpec,
    ProtocolInputs,
    ProtocolResult,
    hookimpl,
)

OPTIONS = (
    OptionSpec("prompts", "", "class-level retrieval: prompt file, JSON object class -> list of prompts "
               "(default: the task's own)", str),
    OptionSpec("batch_size", 64, "images (and texts) embedded per batch", int),
    OptionSpec("similarity", "embedding", "embedding: cosine of the embeddings; auto: the model's own score "
               "when it has one", str, ("auto", "embedding")),
)
RECALL_K = (1, 5, 10)
#: K of the class-level Precision@K (GLoRIA reports 5, 10 and 100)
PRECISION_K = (5, 10, 100)
METRICS = tuple(f"{direction}_recall_at_{k}" for direction in ("i2t", "t2i") for k in RECALL_K) + tuple(
    f"{direction}_precision_at_{k}" for direction in ("i2t", "t2i") for k in PRECISION_K)
VERSION = "1"


def option_values(inputs: ProtocolInputs) -> dict:
    """Declared defaults, then the task's values, then the run's ``--option`` values."""
    return {**{option.name: option.default for option in OPTIONS}, **inputs.task.hparams, **inputs.hparams}


def _queries_and_relevance(inputs: ProtocolInputs, options: dict):
    """Query texts, the (N, Q) image-text relevance matrix, and the class-level extras (or None)."""
    import torch

    from medvlp_bench_plugins.protocols import image_text_scores as scores_of

    test = inputs.splits.test
    if "text" in test.columns:
        texts = test["text"].astype(str).tolist()
        codes = torch.as_tensor(test["text"].astype(str).factorize()[0])
        return texts, codes[:, None] == codes[None, :], None
    if "label" not in test.columns:
        raise DataError(f"task {inputs.task.name!r}: retrieval needs a 'text' or a 'label' column in its test table")
    path = scores_of.resolve_prompts(options["prompts"])
    prompts = scores_of.load_prompts(path)
    names = list(inputs.task.label_names)
    if set(prompts) != set(names):
        raise DataError(f"the prompt file's classes {sorted(prompts)} are not the task's labels {names}",
                        file=str(path))
    texts = [text for name in names for text in prompts[name]]
    text_label = torch.as_tensor([k for k, name in enumerate(names) for _ in prompts[name]])
    image_label = torch.tensor(test["label"].to_numpy(dtype=np.int64))
    extras = {"path": path, "image_label": image_label, "text_label": text_label,
              "prompts_per_class": {name: len(prompts[name]) for name in names}}
    return texts, image_label[:, None] == text_label[None, :], extras


def run(inputs: ProtocolInputs) -> ProtocolResult:
    """Retrieval on ``inputs.splits.test`` (module docstring)."""
    from medvlp_bench_plugins.protocols import image_text_scores as scores_of
    from medvlp_bench_plugins.protocols import retrieval_metrics as measures

    options, test = option_values(inputs), inputs.splits.test
    texts, relevant, extras = _queries_and_relevance(inputs, options)
    own = scores_of.uses_own_similarity(inputs.encoder, options["similarity"])
    images = scores_of.image_features(inputs.encoder, test, inputs.cache_dir, options["batch_size"],
                                      own_similarity=own, label=f"{inputs.task.dataset} test")
    scores = scores_of.score_matrix(inputs.encoder, images, texts, options["batch_size"], own_similarity=own)
    image_ranks = measures.first_relevant_ranks(scores, relevant)
    text_ranks = measures.first_relevant_ranks(scores.T, relevant.T)
    metrics = {f"i2t_recall_at_{k}": measures.recall_at_k(image_ranks, k) for k in RECALL_K}
    metrics |= {f"t2i_recall_at_{k}": measures.recall_at_k(text_ranks, k) for k in RECALL_K}
    outputs = {"kind": np.array("retrieval"), "sample_id": scores_of.sample_ids(test),
               "patient_id": scores_of.patient_ids(test), "rank_image_to_text": image_ranks.numpy(),
               "rank_text_to_image": text_ranks.numpy(), "text_query": np.array(texts, dtype=str)}
    details = {"options": options, "similarity": "model" if own else "embedding", "text_queries": len(texts),
               "selection_sha256": scores_of.selection_sha256(test["sample_id"].astype(str).tolist())}
    if extras is not None:
        ks = list(PRECISION_K)
        per_query = {}
        for direction, matrix, relevance in (("i2t", scores, relevant), ("t2i", scores.T, relevant.T)):
            columns = []
            for k in ks:
                column = np.full(len(matrix), np.nan)
                if k <= matrix.shape[1]:
                    column = measures.precision_at_k(matrix, relevance, k).numpy()
                    metrics[f"{direction}_precision_at_{k}"] = float(column.mean())
                columns.append(column)
            per_query[direction] = np.stack(columns, axis=1)
        outputs |= {"image_label": extras["image_label"].numpy(), "text_label": extras["text_label"].numpy(),
                    "label_names": np.array(inputs.task.label_names), "precision_k": np.array(ks, dtype=np.int64),
                    "precision_image_to_text": per_query["i2t"], "precision_text_to_image": per_query["t2i"]}
        details |= {"prompts_file": str(extras["path"]), "prompts_sha256": scores_of.file_sha256(extras["path"]),
                    "prompts_per_class": extras["prompts_per_class"],
                    "images_per_class": dict(zip(inputs.task.label_names, np.bincount(
                        extras["image_label"].numpy(), minlength=len(inputs.task.label_names)).tolist()))}
    else:
        details["distinct_texts"] = int(test["text"].astype(str).nunique())
    return ProtocolResult(metrics=metrics, n_train=0, n_val=0, n_test=len(test), outputs=outputs, details=details)


@hookimpl
def medvlp_bench_protocols():
    return [
        ImageTextProtocolSpec(
            name="retrieval",
            description="Image-text model, no training: image->text and text->image Recall@1/5/10 (reports) or "
                        "Precision@K (class prompts)",
            run=run,
            options=OPTIONS,
            version=VERSION,
            targets=("multiclass", "report"),
            metrics=METRICS,
        )
    ]
