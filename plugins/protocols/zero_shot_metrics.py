"""Zero-shot classification metrics from class scores (torchmetrics; fractions in [0, 1]).

``scores`` are raw image-class similarities; no temperature is applied, since every metric here depends only on
the order of scores:

* multiclass (K classes, ``targets`` (N,) class indices): prediction = argmax_k score (the softmax's argmax);
  ``accuracy`` = correct / N; ``f1_macro`` = mean over classes of F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k);
  ``auroc`` = mean over classes of the one-vs-rest AUROC of the class's own score column (rank based:
  P(score_k of a class-k image > score_k of another image), ties counting one half).
* binary (``scores`` (N, 1) = positive-class score minus negative-class score, ``targets`` (N, 1) 0/1):
  prediction = score > 0 (the two-way softmax above one half); ``accuracy``; ``f1_macro`` over the two classes;
  ``auroc`` of the score.
* multilabel (``scores`` (N, L), ``targets`` (N, L) 0/1): ``auroc`` = mean of the per-label AUROCs only (a
  zero-shot score has no threshold for per-label decisions).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    multiclass_accuracy,
    multiclass_f1_score,
    multilabel_auroc,
)


def unit_interval(scores: torch.Tensor) -> torch.Tensor:
    """Each column mapped affinely onto [0, 1] (float64; a constant column becomes 0): the order is kept, and
    torchmetrics then takes the values as probabilities instead of squashing them with a sigmoid, which could tie
    large scores in float32."""
    low, high = scores.min(dim=0).values, scores.max(dim=0).values
    return (scores - low) / (high - low).clamp(min=torch.finfo(scores.dtype).tiny)


def multiclass_metrics(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    classes = scores.shape[1]
    predictions = scores.argmax(dim=1)
    one_hot = torch.nn.functional.one_hot(targets, classes)
    return {
        "accuracy": float(multiclass_accuracy(predictions, targets, num_classes=classes, average="micro")),
        "f1_macro": float(multiclass_f1_score(predictions, targets, num_classes=classes, average="macro")),
        "auroc": float(multilabel_auroc(unit_interval(scores.double()), one_hot, num_labels=classes, average="macro")),
    }


def binary_metrics(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    predictions = (scores[:, 0] > 0).long()
    truth = targets[:, 0].long()
    return {
        "accuracy": float((predictions == truth).double().mean()),
        "f1_macro": float(multiclass_f1_score(predictions, truth, num_classes=2, average="macro")),
        "auroc": float(binary_auroc(unit_interval(scores.double())[:, 0], truth)),
    }


def multilabel_metrics(scores: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    return {"auroc": float(multilabel_auroc(unit_interval(scores.double()), targets.long(), num_labels=scores.shape[1],
                                            average="macro"))}
