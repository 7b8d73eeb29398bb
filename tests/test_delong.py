"""Tests of DeLong's AUROC interval against DeLong et al. (1988) written out with explicit pair loops."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medvlp_bench.statistics.delong import delong_interval, delong_variance


def delong_1988(positives, negatives):
    """AUROC and its variance straight from the paper: psi over all pairs, V10, V01, S10 / m + S01 / n."""
    m, n = len(positives), len(negatives)
    psi = [[1.0 if x > y else 0.5 if x == y else 0.0 for y in negatives] for x in positives]
    v10 = [sum(row) / n for row in psi]
    v01 = [sum(psi[i][j] for i in range(m)) / m for j in range(n)]
    auc = sum(v10) / m
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    return auc, s10 / m + s01 / n


def test_binary_variance_equals_the_1988_formulas_with_ties():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, size=80)
    score = np.round(rng.normal(size=80) + target, 1)
    auc, variance = delong_variance(target[:, None], score[:, None])
    expected_auc, expected_variance = delong_1988(score[target == 1].tolist(), score[target == 0].tolist())
    assert auc == pytest.approx(expected_auc, abs=1e-12) == pytest.approx(roc_auc_score(target, score))
    assert variance == pytest.approx(expected_variance, rel=1e-10)


def test_known_small_case():
    # positives 0.9, 0.8, 0.4; negatives 0.7, 0.3: psi pairs 1,1,1,1,0,1 -> AUROC 5/6
    auc, variance = delong_variance(np.array([1, 1, 1, 0, 0])[:, None], np.array([0.9, 0.8, 0.4, 0.7, 0.3])[:, None])
    # V10 = 1, 1, 1/2 (S10 = 1/12); V01 = 2/3, 1 (S01 = 1/18); Var = 1/36 + 1/36
    assert auc == pytest.approx(5 / 6)
    assert variance == pytest.approx(1 / 36 + 1 / 36)
    interval = delong_interval(np.array([1, 1, 1, 0, 0]), np.array([0.9, 0.8, 0.4, 0.7, 0.3]))
    assert interval.low == pytest.approx(5 / 6 - NormalDist().inv_cdf(0.975) * np.sqrt(2 / 36))
    assert interval.high == 1.0  # clipped


def test_patients_with_one_image_each_change_nothing_and_macro_averages_labels():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 2, size=(60, 2))
    score = rng.normal(size=(60, 2)) + target
    single = delong_variance(target[:, :1], score[:, :1])
    assert delong_variance(target[:, :1], score[:, :1], np.arange(60).astype(str)) == pytest.approx(single)
    macro, _ = delong_variance(target, score)
    assert macro == pytest.approx(np.mean([roc_auc_score(target[:, k], score[:, k]) for k in range(2)]))


def test_delong_and_bootstrap_intervals_agree_in_width():
    from medvlp_bench.statistics.bootstrap import AurocStatistic, bootstrap_interval

    rng = np.random.default_rng(2)
    target = rng.integers(0, 2, size=(500, 1))
    score = rng.normal(size=(500, 1)) + target
    delong = delong_interval(target, score)
    boot = bootstrap_interval(AurocStatistic(target, score), np.arange(500).astype(str), 2000, seed=0)
    assert (boot.high - boot.low) == pytest.approx(delong.high - delong.low, rel=0.15)
