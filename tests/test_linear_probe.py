"""Linear-probe metrics against scikit-learn, the head learning a separable problem, and a run's per-sample outputs
reproducing its metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from torch import nn

from medvlp_bench.encoder import ImageEncoder
from medvlp_bench.protocols.linear_probe import LinearHead, run_linear_probe, score, targets_of
from medvlp_bench.specs import ProtocolInputs, SplitTables, TaskSpec


def _task(target, labels, metric="auroc"):
    return TaskSpec(name="t", dataset="d", protocol="linear_probe", description="", load_splits=lambda f: None,
                    label_names=labels, target=target, primary_metric=metric)


def test_multilabel_auroc_is_sklearn_macro():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, size=(200, 5)).astype(np.float32)
    logits = targets * 0.8 + rng.normal(size=(200, 5)).astype(np.float32)
    metrics = score(_task("multilabel", tuple("abcde")), torch.from_numpy(logits), torch.from_numpy(targets)).metrics
    assert np.isclose(metrics["auroc"], roc_auc_score(targets, logits, average="macro"), atol=1e-6)
    assert np.isclose(metrics["auroc_c"], roc_auc_score(targets[:, 2], logits[:, 2]), atol=1e-6)


def test_binary_auroc_and_multiclass_accuracy_match_sklearn():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, size=(150, 1)).astype(np.float32)
    logits = targets + rng.normal(size=(150, 1)).astype(np.float32)
    binary = score(_task("binary", ("p",)), torch.from_numpy(logits), torch.from_numpy(targets)).metrics
    assert np.isclose(binary["auroc"], roc_auc_score(targets[:, 0], logits[:, 0]), atol=1e-6)

    classes = rng.integers(0, 3, size=300)
    class_logits = rng.normal(size=(300, 3)).astype(np.float32)
    class_logits[np.arange(300), classes] += 1.0
    multi = score(_task("multiclass", ("a", "b", "c"), "accuracy"), torch.from_numpy(class_logits),
                  torch.from_numpy(classes)).metrics
    predicted = class_logits.argmax(1)
    assert np.isclose(multi["accuracy"], accuracy_score(classes, predicted), atol=1e-6)
    assert np.isclose(multi["accuracy_macro"], balanced_accuracy_score(classes, predicted), atol=1e-6)


def test_targets_follow_the_task_kind():
    table = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0], "label": [2, 0]})
    assert targets_of(_task("multilabel", ("a", "b")), table).shape == (2, 2)
    assert targets_of(_task("multiclass", ("x", "y", "z")), table).dtype == torch.long


def test_head_learns_a_separable_problem():
    torch.manual_seed(0)
    features = torch.randn(256, 8)
    targets = (features[:, :1] > 0).float()
    head = LinearHead(8, 1, multiclass=False, lr=5e-2, weight_decay=0.0)
    optimiser = head.configure_optimizers()
    for _ in range(200):
        optimiser.zero_grad()
        head._loss((features, targets)).backward()
        optimiser.step()
    assert score(_task("binary", ("p",)), head(features).detach(), targets).metrics["auroc"] > 0.98


class QuadrantEncoder(ImageEncoder):
    """Mean intensity of each image quadrant through a 1x1 convolution: four features that see the drawn squares."""

    input_size = 64
    global_dim = 4

    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(3, 1, 1)

    def global_features(self, x):
        pooled = nn.functional.adaptive_avg_pool2d(self.mix(x), 2)
        return pooled.flatten(1)


def _probe_table(folder, count, seed, *, with_c=True):
    """Multilabel rows: ``a`` a bright top-left square, ``b`` bottom-right, ``c`` top-right (never when not
    ``with_c``); two images per patient."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(count):
        labels = rng.integers(0, 2, 3)
        labels[2] *= with_c
        image = rng.integers(0, 60, size=(80, 80), dtype=np.uint8)
        for flag, (top, left) in zip(labels, ((8, 8), (48, 48), (8, 48))):
            if flag:
                image[top : top + 24, left : left + 24] = 220
        path = folder / f"s{seed}_{n}.png"
        Image.fromarray(image).save(path)
        rows.append({"sample_id": f"s{seed}_{n}", "patient_id": f"p{seed}_{n // 2}", "image_path": str(path),
                     "source_file": "t.csv", "source_row": n, **dict(zip("abc", labels.astype(float)))})
    return pd.DataFrame(rows)


def test_outputs_reproduce_the_metrics_with_sklearn_and_name_the_excluded_label(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    splits = SplitTables(_probe_table(images, 40, 0), _probe_table(images, 16, 1),
                         _probe_table(images, 24, 2, with_c=False))
    torch.manual_seed(0)
    inputs = ProtocolInputs(task=_task("multilabel", tuple("abc")), encoder=QuadrantEncoder(), encoder_key="quadrant",
                            splits=splits, seed=0, hparams={"max_epochs": 3, "lr": 1e-2},
                            cache_dir=tmp_path / "cache", work_dir=tmp_path / "work")
    with pytest.warns(UserWarning, match=r"label\(s\) c "):
        result = run_linear_probe(inputs)
    out = result.outputs
    assert str(out["kind"]) == "classification" and str(out["task_type"]) == "multilabel"
    assert out["sample_id"].tolist() == splits.test["sample_id"].tolist()
    assert out["patient_id"].tolist() == splits.test["patient_id"].tolist()
    assert out["label_names"].tolist() == ["a", "b", "c"]
    assert out["target"].dtype == np.int8 and out["score"].dtype == np.float64 and out["score"].shape == (24, 3)
    assert (out["target"] == splits.test[["a", "b", "c"]].to_numpy()).all()
    for column, name in ((0, "a"), (1, "b")):
        assert result.metrics[f"auroc_{name}"] == pytest.approx(
            roc_auc_score(out["target"][:, column], out["score"][:, column]), abs=1e-12)
    assert result.metrics["auroc"] == pytest.approx(
        roc_auc_score(out["target"][:, :2], out["score"][:, :2], average="macro"), abs=1e-12)
    assert "auroc_c" not in result.metrics
    assert result.details["metrics_excluded_labels"] == {"auroc": ["c"]}
