"""Tests of the two-level (patients x seeds) bootstrap: cells and paired differences."""

from __future__ import annotations

import numpy as np
import pytest

from medvlp_bench.statistics.bootstrap import AurocStatistic, MeanStatistic, evaluate_resamples
from medvlp_bench.statistics.paired import CellRuns, bootstrap_p_value, cell_interval, paired_difference


def runs(seeds, shift, n=300, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    target = np.arange(n) % 2
    statistics = [AurocStatistic(target[:, None], (rng.normal(size=n) + shift * target)[:, None]) for _ in seeds]
    return CellRuns(list(seeds), statistics)


PATIENTS = np.array([f"p{i // 2}" for i in range(300)])


def test_a_method_against_itself_gives_delta_zero_and_p_one():
    cell = runs([0, 1, 2], 1.0)
    result = paired_difference(cell, cell, PATIENTS, n_resamples=500, seed=3)
    assert (result.estimate, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)
    reordered = CellRuns([2, 0, 1], [cell.statistics[2], cell.statistics[0], cell.statistics[1]])
    assert paired_difference(cell, reordered, PATIENTS, n_resamples=200).p_value == 1.0


def test_a_clearly_better_method_is_significant_and_the_estimate_is_the_difference_of_means():
    better, worse = runs([0, 1, 2], 1.5, rng_seed=1), runs([0, 1, 2], 0.3, rng_seed=2)
    result = paired_difference(better, worse, PATIENTS, n_resamples=500, seed=0)
    own = cell_interval(better, PATIENTS, n_resamples=500).estimate
    base = cell_interval(worse, PATIENTS, n_resamples=500).estimate
    assert result.estimate == pytest.approx(own - base)
    assert 0 < result.low < result.estimate < result.high
    assert result.p_value == pytest.approx(2 / 501)


def test_pairing_over_samples_narrows_the_interval_of_correlated_methods():
    rng = np.random.default_rng(4)
    values = rng.uniform(size=300)
    a = CellRuns([0], [MeanStatistic(values + 0.01)])
    b = CellRuns([0], [MeanStatistic(values)])
    result = paired_difference(a, b, PATIENTS, n_resamples=300)
    assert result.low == pytest.approx(0.01) and result.high == pytest.approx(0.01)
    assert result.p_value == pytest.approx(2 / 301)
    assert cell_interval(a, PATIENTS, n_resamples=300).high - cell_interval(a, PATIENTS, 300).low > 0.03


def test_seed_level_resampling_widens_the_cell_interval_by_the_seed_spread():
    base = np.random.default_rng(5).uniform(size=300)
    spread = CellRuns([0, 1, 2], [MeanStatistic(base + offset) for offset in (-0.1, 0.0, 0.1)])
    same = CellRuns([0, 1, 2], [MeanStatistic(base) for _ in range(3)])
    wide, narrow = cell_interval(spread, PATIENTS, 500), cell_interval(same, PATIENTS, 500)
    assert wide.high - wide.low > (narrow.high - narrow.low) + 0.05
    assert wide.estimate == pytest.approx(narrow.estimate)


def test_cell_interval_values_come_from_the_shared_resamples():
    cell = runs([0], 1.0)
    values = evaluate_resamples(list(cell.statistics), PATIENTS, 200, seed=9)[0]
    result = cell_interval(cell, PATIENTS, 200, seed=9)
    assert (result.low, result.high) == pytest.approx(tuple(np.quantile(values, [0.025, 0.975])))


def test_p_value_inverts_the_interval():
    assert bootstrap_p_value(np.r_[np.full(10, -1.0), np.full(90, 1.0)]) == pytest.approx(2 * 11 / 101)
    assert np.isnan(bootstrap_p_value(np.full(5, np.nan)))
