"""Two-level bootstrap over test patients and seeds: the interval of a cell's mean over seeds, and the paired
difference of two methods on the same test samples with its p-value.

A cell holds S runs (seeds) of one method on one test set. Resample b (b = 1..B):

1. draws the test patients with replacement (cluster bootstrap, :mod:`medvlp_bench.statistics.bootstrap`); the
   SAME patient draw serves every run of both methods (paired over test samples);
2. draws S seeds with replacement from the cell's seeds, ``sigma_b(1..S)``; two methods run with the same seed
   values share the draw (paired over seeds, as a seed fixes the head's initialisation and data order for both),
   otherwise each draws its own;
3. ``mean_b = (1/S) sum_k M[sigma_b(k), b]``, with ``M[s, b]`` the metric of run s on patient draw b, and for a
   comparison ``delta_b = mean_b(A) - mean_b(baseline)``.

The estimate is the mean over seeds on the test set itself (``mean_s M_s``, resp. the difference of the two);
the interval is the percentile interval of the ``mean_b`` (resp. ``delta_b``); the two-sided p-value of
"no difference" inverts it: ``p = min(1, 2 min((#{delta_b <= 0} + 1) / (B + 1), (#{delta_b >= 0} + 1) / (B + 1)))``,
so p < 1 - level exactly when the interval excludes 0 (up to the +1 of the small-sample correction). A method
compared with itself gets ``delta_b = 0`` for every b, hence delta 0, interval [0, 0] and p = 1. Resampling seeds
carries the seed-to-seed variation into the interval; with one seed per method it reduces to the paired
patient bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from medvlp_bench.statistics.bootstrap import (
    BOOTSTRAP_SEED,
    LEVEL,
    N_RESAMPLES,
    Statistic,
    evaluate_resamples,
    full_value,
    percentile_interval,
)


@dataclass(frozen=True)
class CellRuns:
    """The runs of one cell: their seeds and their statistics, all on the same test samples in the same order."""

    seeds: Sequence[int]
    statistics: Sequence[Statistic]


@dataclass(frozen=True)
class BootstrapResult:
    """``estimate`` with its percentile interval [low, high] at ``level``; ``p_value`` of no difference (None
    for a single cell); ``n_resamples`` the resamples where the metric was defined; ``seed`` the resampling seed."""

    estimate: float
    low: float
    high: float
    level: float
    n_resamples: int
    seed: int
    p_value: Optional[float] = None


def seed_draws(n_seeds: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, S) seed indices drawn with replacement."""
    return rng.integers(0, n_seeds, size=(n_resamples, n_seeds))


def _seed_means(values: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """``mean_k values[draws[b, k], b]`` per resample b."""
    return values[draws, np.arange(values.shape[1])[:, None]].mean(axis=1)


def cell_interval(cell: CellRuns, patients: np.ndarray, n_resamples: int = N_RESAMPLES,
                  seed: int = BOOTSTRAP_SEED, level: float = LEVEL) -> BootstrapResult:
    """The mean over the cell's seeds and its two-level bootstrap interval (module docstring)."""
    values = evaluate_resamples(list(cell.statistics), patients, n_resamples, seed)
    rng = np.random.default_rng((seed, 1))
    means = _seed_means(values, seed_draws(len(cell.seeds), n_resamples, rng))
    low, high, defined = percentile_interval(means, level)
    estimate = float(np.mean([full_value(statistic, len(patients)) for statistic in cell.statistics]))
    return BootstrapResult(estimate, low, high, level, defined, seed)


def paired_difference(method: CellRuns, baseline: CellRuns, patients: np.ndarray,
                      n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                      level: float = LEVEL) -> BootstrapResult:
    """``mean(method) - mean(baseline)`` with its paired two-level bootstrap interval and p-value (module
    docstring); both cells' statistics must be on the same test samples in the same order (``patients``)."""
    values = evaluate_resamples([*method.statistics, *baseline.statistics], patients, n_resamples, seed)
    own, base = values[:len(method.statistics)], values[len(method.statistics):]
    rng = np.random.default_rng((seed, 1))
    draws = seed_draws(len(method.seeds), n_resamples, rng)
    same_seeds = sorted(method.seeds) == sorted(baseline.seeds)
    if same_seeds:
        position = {value: index for index, value in enumerate(baseline.seeds)}
        base_draws = np.vectorize(lambda index: position[method.seeds[index]], otypes=[np.int64])(draws)
    else:
        base_draws = seed_draws(len(baseline.seeds), n_resamples, rng)
    deltas = _seed_means(own, draws) - _seed_means(base, base_draws)
    low, high, defined = percentile_interval(deltas, level)
    estimate = float(np.mean([full_value(s, len(patients)) for s in method.statistics])
                     - np.mean([full_value(s, len(patients)) for s in baseline.statistics]))
    return BootstrapResult(estimate, low, high, level, defined, seed, bootstrap_p_value(deltas))


def bootstrap_p_value(deltas: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from resampled differences (module docstring); NaN if none is
    defined."""
    defined = deltas[~np.isnan(deltas)]
    if not len(defined):
        return float("nan")
    below = (np.count_nonzero(defined <= 0) + 1) / (len(defined) + 1)
    above = (np.count_nonzero(defined >= 0) + 1) / (len(defined) + 1)
    return float(min(1.0, 2 * min(below, above)))
