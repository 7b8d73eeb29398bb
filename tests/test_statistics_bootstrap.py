"""Tests of the vectorised cluster bootstrap: metrics against sklearn and straightforward loops, coverage."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from medvlp_bench.statistics.bootstrap import (
    AccuracyStatistic,
    AurocStatistic,
    MacroF1Statistic,
    MeanStatistic,
    bootstrap_interval,
    evaluate_resamples,
    full_value,
    patient_counts,
    patient_index,
)


def test_full_set_auroc_equals_sklearn_with_ties_and_macro():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, size=(300, 3))
    target[:, 2] = 0  # a label with one class is left out of the macro mean
    score = np.round(rng.normal(size=(300, 3)) + target, 1)  # rounding makes ties
    expected = np.mean([roc_auc_score(target[:, label], score[:, label]) for label in range(2)])
    assert full_value(AurocStatistic(target, score), 300) == pytest.approx(expected, abs=1e-12)


def test_resampled_metrics_equal_a_loop_over_explicit_resamples():
    rng = np.random.default_rng(1)
    n = 120
    patients = np.array([f"p{i // 3}" for i in range(n)])  # three images per patient
    target = rng.integers(0, 2, size=(n, 2))
    score = np.round(rng.normal(size=(n, 2)) + target, 1)
    classes, class_scores = rng.integers(0, 3, size=n), rng.normal(size=(n, 3))
    dice = rng.uniform(size=n)
    rare = np.where(np.arange(n) % 40 == 0, 3, classes)  # class 3: three images, often absent from a resample
    rare_scores = np.c_[class_scores, rng.normal(size=n) - 1.5]
    binary, logit = rng.integers(0, 2, size=(n, 1)), rng.normal(size=(n, 1))
    statistics = [AurocStatistic(target, score), AccuracyStatistic(classes, class_scores), MeanStatistic(dice),
                  MacroF1Statistic(rare, rare_scores, 4), AccuracyStatistic(binary, logit),
                  MacroF1Statistic(binary, logit, 2)]
    values = evaluate_resamples(statistics, patients, n_resamples=50, seed=7)
    index, n_patients = patient_index(patients)
    counts = patient_counts(n_patients, 50, 7)
    for b in range(50):
        images = np.repeat(np.arange(n), counts[b][index])  # the resample, written out image by image
        per_label = [roc_auc_score(target[images, label], score[images, label]) for label in range(2)
                     if len(set(target[images, label])) == 2]
        assert values[0, b] == pytest.approx(np.mean(per_label), abs=1e-12)
        assert values[1, b] == pytest.approx(accuracy_score(classes[images], class_scores[images].argmax(1)))
        assert values[2, b] == pytest.approx(dice[images].mean())
        # sklearn's macro F1 averages the classes present in the truth or the predictions, as torchmetrics does
        assert values[3, b] == pytest.approx(f1_score(rare[images], rare_scores[images].argmax(1), average="macro"))
        decision = (logit[images, 0] > 0).astype(int)
        assert values[4, b] == pytest.approx(accuracy_score(binary[images, 0], decision))
        assert values[5, b] == pytest.approx(f1_score(binary[images, 0], decision, average="macro"))


def test_patient_counts_draw_patients_with_replacement():
    counts = patient_counts(7, 500, seed=3)
    assert counts.shape == (500, 7) and (counts.sum(axis=1) == 7).all()
    assert np.array_equal(counts, patient_counts(7, 500, seed=3))
    assert counts.mean() == pytest.approx(1.0, abs=0.05)


def test_cluster_bootstrap_resamples_patients_not_images():
    rng = np.random.default_rng(2)
    target = rng.integers(0, 2, size=(400, 1))
    score = rng.normal(size=(400, 1)) + target
    single = bootstrap_interval(AurocStatistic(target, score), np.arange(400).astype(str), 1000, seed=0)
    # every image twice, both copies of one patient: the same information, so the same interval width
    doubled_target, doubled_score = np.repeat(target, 2, axis=0), np.repeat(score, 2, axis=0)
    patients = np.repeat(np.arange(400), 2).astype(str)
    clustered = bootstrap_interval(AurocStatistic(doubled_target, doubled_score), patients, 1000, seed=0)
    as_images = bootstrap_interval(AurocStatistic(doubled_target, doubled_score), np.arange(800).astype(str),
                                   1000, seed=0)
    width = single.high - single.low
    assert clustered.high - clustered.low == pytest.approx(width, rel=0.15)
    assert as_images.high - as_images.low < 0.85 * width
    assert clustered.estimate == pytest.approx(single.estimate)


def test_interval_covers_a_known_auroc_in_93_to_97_percent_of_400_test_sets():
    separation = 1.0
    truth = NormalDist().cdf(separation / np.sqrt(2))  # binormal AUROC, unit variances
    rng = np.random.default_rng(2024)
    covered = 0
    for _ in range(400):
        target = np.r_[np.ones(100), np.zeros(150)].astype(int)[:, None]
        score = rng.normal(size=(250, 1)) + separation * target
        interval = bootstrap_interval(AurocStatistic(target, score), np.arange(250).astype(str), 1000,
                                      seed=int(rng.integers(1 << 31)))
        covered += interval.low <= truth <= interval.high
    assert 0.93 <= covered / 400 <= 0.97, covered / 400
