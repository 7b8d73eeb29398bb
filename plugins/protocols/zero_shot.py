"""Protocol ``zero_shot``: classify test images by their similarity to class prompts, with no training.

For each class k the prompts of the prompt file (option ``prompts``; the task's own file by default, see
``image_text_scores`` for the format and how scores are formed) give a class score s_ik for every test image i:
the cosine between the image embedding and the class embedding (the mean of the class's prompt embeddings,
renormalised), or the model's own score averaged over the class's prompts (GLoRIA, ``similarity=auto``).

* multiclass tasks: the prompt file's classes are the task's labels; prediction = argmax_k s_ik (the softmax
  over classes picks the same class);
* binary tasks: the file holds the label and one other class (the negative); score = s_i,label - s_i,negative,
  positive when the two-way softmax exceeds one half;
* multilabel tasks: the file holds every label; score_il = s_il (per label), AUROC only.

Metrics (``zero_shot_metrics``): ``accuracy``, ``f1_macro``, ``auroc`` (rank based). The record keeps the prompt
file and its sha256, the sha256 of the evaluated selection (test sample ids in order) and per-class counts; the
per-sample outputs are the classification layout (``score`` = the raw class scores above). Only the test split
is read; there is no training, so ``--pct`` and the run seed change nothing for a pretrained model (the seed
draws the towers of ``random``).
"""

from __future__ import annotations

from pathlib import Path

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
    OptionSpec("prompts", "", "prompt file: JSON object class -> list of prompts (default: the task's own)", str),
    OptionSpec("batch_size", 64, "images (and texts) embedded per batch", int),
    OptionSpec("similarity", "auto", "auto: the model's own score when it has one; embedding: cosine of the "
               "prompt-averaged class embeddings", str, ("auto", "embedding")),
)
METRICS = ("accuracy", "f1_macro", "auroc")
VERSION = "1"


def option_values(inputs: ProtocolInputs) -> dict:
    """Declared defaults, then the task's values, then the run's ``--option`` values."""
    return {**{option.name: option.default for option in OPTIONS}, **inputs.task.hparams, **inputs.hparams}


def ordered_prompts(prompts: dict[str, list[str]], task, path: Path) -> tuple[list[str], list[list[str]]]:
    """The class names and their prompts in the order the task's targets need (module docstring)."""
    labels = list(task.label_names)
    if task.target == "binary":
        others = [name for name in prompts if name not in labels]
        if set(labels) - set(prompts) or len(others) != 1:
            raise DataError(f"a binary task's prompt file holds its label {labels[0]!r} and one negative class; "
                            f"it has {sorted(prompts)}", file=str(path))
        names = [others[0], labels[0]]
    else:
        if set(prompts) != set(labels):
            raise DataError(f"the prompt file's classes {sorted(prompts)} are not the task's labels {labels}",
                            file=str(path))
        names = labels
    return names, [prompts[name] for name in names]


def run(inputs: ProtocolInputs) -> ProtocolResult:
    """Zero-shot classification of ``inputs.splits.test`` (module docstring)."""
    import torch

    from medvlp_bench_plugins.protocols import image_text_scores as scores_of
    from medvlp_bench_plugins.protocols import zero_shot_metrics

    task, options, test = inputs.task, option_values(inputs), inputs.splits.test
    path = scores_of.resolve_prompts(options["prompts"])
    names, class_prompts = ordered_prompts(scores_of.load_prompts(path), task, path)
    own = scores_of.uses_own_similarity(inputs.encoder, options["similarity"])
    images = scores_of.image_features(inputs.encoder, test, inputs.cache_dir, options["batch_size"],
                                      own_similarity=own, label=f"{task.dataset} test")
    class_scores = scores_of.class_scores(inputs.encoder, images, class_prompts, options["batch_size"],
                                          own_similarity=own)
    outputs = {"kind": np.array("classification"), "task_type": np.array(task.target),
               "sample_id": scores_of.sample_ids(test), "patient_id": scores_of.patient_ids(test),
               "label_names": np.array(task.label_names)}
    if task.target == "multiclass":
        targets = torch.tensor(test["label"].to_numpy(dtype=np.int64))
        scores = class_scores
        metrics = zero_shot_metrics.multiclass_metrics(scores, targets)
        counts = np.bincount(targets.numpy(), minlength=len(names)).tolist()
        outputs["target"] = targets.numpy()
    else:
        targets = torch.tensor(test[list(task.label_names)].to_numpy(dtype=np.int64))
        if task.target == "binary":
            scores = class_scores[:, 1:] - class_scores[:, :1]
            metrics = zero_shot_metrics.binary_metrics(scores, targets)
        else:
            scores = class_scores
            metrics = zero_shot_metrics.multilabel_metrics(scores, targets)
        counts = targets.sum(dim=0).tolist()
        outputs["target"] = targets.numpy().astype(np.int8)
    outputs["score"] = scores.numpy().astype(np.float64)
    return ProtocolResult(
        metrics=metrics, n_train=0, n_val=0, n_test=len(test), outputs=outputs,
        details={
            "options": options,
            "prompts_file": str(path),
            "prompts_sha256": scores_of.file_sha256(path),
            "prompt_classes": names,
            "prompts_per_class": [len(prompts) for prompts in class_prompts],
            "similarity": "model" if own else "embedding",
            "selection_sha256": scores_of.selection_sha256(test["sample_id"].astype(str).tolist()),
            "positives_per_label" if task.target != "multiclass" else "images_per_class": dict(
                zip(task.label_names, counts)),
        },
    )


@hookimpl
def medvlp_bench_protocols():
    return [
        ImageTextProtocolSpec(
            name="zero_shot",
            description="Image-text model, no training: test images scored against class prompts; accuracy, "
                        "macro F1, AUROC",
            run=run,
            options=OPTIONS,
            version=VERSION,
            targets=("binary", "multiclass", "multilabel"),
            metrics=METRICS,
        )
    ]
