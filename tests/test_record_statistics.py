"""Tests of the statistic of a record's metric from its outputs, restriction to shared samples, record intervals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from medvlp_bench.statistics.bootstrap import full_value
from medvlp_bench.statistics.record_statistics import record_intervals, restrict, statistic_for
from test_detection_map_statistic import pycocotools_map, simulated_detections


def test_metrics_of_each_kind_match_their_references():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, size=(50, 2))
    score = rng.normal(size=(50, 2)) + target
    multilabel = {"kind": np.array("classification"), "task_type": np.array("multilabel"),
                  "label_names": np.array(["a", "b"]), "target": target, "score": score,
                  "sample_id": np.arange(50).astype(str), "patient_id": np.arange(50).astype(str)}
    assert full_value(statistic_for("auroc_b", multilabel), 50) == pytest.approx(roc_auc_score(target[:, 1],
                                                                                              score[:, 1]))
    classes = rng.integers(0, 3, size=50)
    multiclass = {**multilabel, "task_type": np.array("multiclass"), "target": classes,
                  "score": rng.normal(size=(50, 3)), "label_names": np.array(["x", "y", "z"])}
    assert full_value(statistic_for("accuracy", multiclass), 50) == pytest.approx(
        accuracy_score(classes, multiclass["score"].argmax(1)))
    assert statistic_for("auroc_x", multiclass) is None
    dice = rng.uniform(size=50)
    truth_empty = rng.uniform(size=50) < 0.5
    pred_empty = rng.uniform(size=50) < 0.5
    segmentation = {"kind": np.array("segmentation"), "dice": dice, "truth_empty": truth_empty,
                    "pred_empty": pred_empty}
    assert full_value(statistic_for("dice", segmentation), 50) == pytest.approx(dice.mean())
    assert full_value(statistic_for("dice_positive", segmentation), 50) == pytest.approx(dice[~truth_empty].mean())
    assert full_value(statistic_for("empty_correct", segmentation), 50) == pytest.approx(
        pred_empty[truth_empty].mean())
    assert statistic_for("map_reference", simulated_detections()) is None


def test_restricting_detections_keeps_their_boxes_and_remaps_indices():
    outputs = simulated_detections(seed=1)
    keep = np.array([str(i) for i in range(59, 19, -1)])  # 40 images, reversed order
    restricted = restrict(outputs, keep)
    assert list(restricted["sample_id"]) == list(keep)
    expected = pycocotools_map(outputs, [int(sample) for sample in keep])
    assert full_value(statistic_for("map", restricted), 40) == pytest.approx(expected, abs=1e-6)


def test_record_intervals_give_bootstrap_and_delong_for_auroc():
    rng = np.random.default_rng(2)
    target = rng.integers(0, 2, size=(300, 1))
    outputs = {"kind": np.array("classification"), "task_type": np.array("binary"), "label_names": np.array(["a"]),
               "target": target, "score": rng.normal(size=(300, 1)) + target,
               "sample_id": np.arange(300).astype(str), "patient_id": np.arange(300).astype(str)}
    bootstrap, delong = record_intervals("auroc", outputs, n_resamples=300, seed=4)
    assert bootstrap.seed == 4 and bootstrap.n_resamples == 300 and delong.method == "DeLong"
    assert bootstrap.estimate == pytest.approx(delong.estimate)
    assert bootstrap.low < bootstrap.estimate < bootstrap.high
    assert record_intervals("unknown", outputs) == []


def test_zero_shot_classification_metrics_match_sklearn():
    rng = np.random.default_rng(4)
    target = rng.integers(0, 5, size=80)
    target[target == 4] = 3  # class 4 never true: F1 counts it only where it is predicted, like torchmetrics
    score = rng.normal(size=(80, 5)) + 1.2 * np.eye(5)[target]
    multiclass = {"kind": np.array("classification"), "task_type": np.array("multiclass"),
                  "label_names": np.array(list("vwxyz")), "target": target, "score": score,
                  "sample_id": np.arange(80).astype(str), "patient_id": np.arange(80).astype(str)}
    predicted = score.argmax(axis=1)
    present = sorted(set(target) | set(predicted))
    assert full_value(statistic_for("f1_macro", multiclass), 80) == pytest.approx(
        f1_score(target, predicted, labels=present, average="macro"))
    assert full_value(statistic_for("auroc", multiclass), 80) == pytest.approx(np.mean(
        [roc_auc_score(target == k, score[:, k]) for k in range(5) if (target == k).any()]))
    binary_target = rng.integers(0, 2, size=(80, 1)).astype(np.int8)
    binary = {**multiclass, "task_type": np.array("binary"), "label_names": np.array(["p"]),
              "target": binary_target, "score": rng.normal(size=(80, 1)) + binary_target}
    decision = (binary["score"][:, 0] > 0).astype(int)
    assert full_value(statistic_for("accuracy", binary), 80) == pytest.approx(
        accuracy_score(binary_target[:, 0], decision))
    assert full_value(statistic_for("f1_macro", binary), 80) == pytest.approx(
        f1_score(binary_target[:, 0], decision, average="macro"))
