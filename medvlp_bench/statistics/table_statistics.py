"""Intervals, paired differences against a baseline, p-values and their correction for the cells of a leaderboard.

Input: the leaderboard's runs (one line per record, :func:`medvlp_bench.leaderboard.runs_frame`) with each
record's per-sample outputs file. Per cell (data source x row x task x pct, its runs being seeds):

* ``ci_low``, ``ci_high``: the two-level bootstrap interval of the mean over seeds
  (:func:`medvlp_bench.statistics.paired.cell_interval`), in percent;
* with a baseline: ``delta`` = cell mean - baseline mean in the same column (in percent points, from the records'
  metrics), ``delta_low``, ``delta_high`` and ``p_value`` from the paired bootstrap over the test samples both cells
  share (:func:`medvlp_bench.statistics.paired.paired_difference`; the prompts both share for the text queries of
  class-level retrieval); ``p_adjusted`` corrects the p-values of all
  cells of one table together (Holm, Benjamini-Hochberg or none); ``significant`` = ``p_adjusted <= alpha``;
* ``n_resamples``, ``bootstrap_seed``, ``correction``: how they were computed;
* ``interval_note``: why a cell has no interval (its records carry no per-sample outputs; no statistic for the
  metric; no baseline cell in its column; no shared test samples), empty otherwise.

All cells share one resampling seed (``seed``); a cell's resamples are drawn over its own test patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from medvlp_bench.errors import MedvlpError
from medvlp_bench.sample_outputs import read_outputs
from medvlp_bench.statistics.bootstrap import BOOTSTRAP_SEED, LEVEL, N_RESAMPLES
from medvlp_bench.statistics.multiple_comparisons import CORRECTIONS, adjust_p_values
from medvlp_bench.statistics.paired import CellRuns, cell_interval, paired_difference
from medvlp_bench.statistics.record_statistics import resampling_units, restrict, statistic_for

#: columns added to the leaderboard's summary (NaN / empty where not computed)
STATISTICS_COLUMNS = ("ci_low", "ci_high", "delta", "delta_low", "delta_high", "p_value", "p_adjusted",
                      "significant", "interval_note", "n_resamples", "bootstrap_seed", "correction")

NO_OUTPUTS = "no per-sample outputs"


@dataclass(frozen=True)
class StatisticsRequest:
    """What to compute: intervals of plain cells (``ci``), differences against ``baseline`` (a method name or a
    row label), the ``correction`` of their p-values, the resampling (``n_resamples``, ``seed``), the interval
    ``level`` and the significance level ``alpha``."""

    ci: bool = False
    baseline: Optional[str] = None
    correction: str = "holm"
    n_resamples: int = N_RESAMPLES
    seed: int = BOOTSTRAP_SEED
    level: float = LEVEL
    alpha: float = 0.05

    def __post_init__(self):
        if self.correction not in CORRECTIONS:
            raise MedvlpError(f"unknown correction {self.correction!r}; use one of {', '.join(CORRECTIONS)}")


@lru_cache(maxsize=256)
def _outputs(path: str, sha256: str) -> dict:
    return read_outputs(path, sha256)


def _cell_runs(lines: pd.DataFrame, metric: str) -> tuple[Optional[list], str]:
    """``([(seed, outputs), ...], "")`` for a cell's runs, or ``(None, reason)``."""
    if lines["outputs"].isna().any():
        return None, NO_OUTPUTS
    runs = [(int(line.seed), _outputs(line.outputs, line.outputs_sha256)) for line in lines.itertuples()]
    if any(statistic_for(metric, outputs) is None for _, outputs in runs[:1]):
        return None, f"no interval for metric {metric!r}"
    return runs, ""


def _shared(metric: str, *cells: list) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the items ``metric`` averages over (test samples; the prompts of class-level text-to-image
    retrieval) present in every run of the cells, in the first run's order, and their resampling clusters
    (:func:`~medvlp_bench.statistics.record_statistics.resampling_units`)."""
    ids, clusters = resampling_units(metric, cells[0][0][1])
    shared = set(ids.tolist())
    for cell in cells:
        for _, outputs in cell:
            shared &= set(resampling_units(metric, outputs)[0].tolist())
    keep = np.array([item in shared for item in ids.tolist()], dtype=bool)
    return ids[keep], clusters[keep]


def _statistics(cell: list, metric: str, items: np.ndarray) -> CellRuns:
    return CellRuns([seed for seed, _ in cell],
                    [statistic_for(metric, restrict(outputs, items, metric)) for _, outputs in cell])


def baseline_rows(summary: pd.DataFrame, baseline: str) -> dict[tuple, str]:
    """The baseline's row per (table, task, pct): the row labelled ``baseline``, else the one row of that
    method; a method with several rows in a column must be named by its row label."""
    found = {}
    runs = summary[summary["kind"] == "run"]
    if baseline not in set(runs["row"]) | set(runs["method"]):
        raise MedvlpError(f"--baseline {baseline!r} is neither a method nor a row of these records; rows: "
                          f"{', '.join(sorted(set(runs['row'])))}")
    for column, lines in runs.groupby(["table", "task", "pct"]):
        exact = lines[lines["row"] == baseline]
        candidates = exact if len(exact) else lines[lines["method"] == baseline]
        if len(candidates) > 1:
            raise MedvlpError(f"--baseline {baseline!r} has several rows in {column[1]} {100 * column[2]:g}%: "
                              f"{', '.join(candidates['row'])}; name one of them")
        if len(candidates):
            found[column] = candidates["row"].iloc[0]
    return found


def table_statistics(summary: pd.DataFrame, runs: pd.DataFrame, request: StatisticsRequest) -> pd.DataFrame:
    """``summary`` (the leaderboard's cells) with :data:`STATISTICS_COLUMNS` filled (module docstring); ``runs``
    has one line per record with ``outputs`` (path of its outputs file, or None) and ``outputs_sha256``."""
    result = summary.copy()
    for name in STATISTICS_COLUMNS:
        result[name] = "" if name == "interval_note" else np.nan
    result["significant"] = False
    result["n_resamples"], result["bootstrap_seed"] = request.n_resamples, request.seed
    result["correction"] = request.correction if request.baseline else ""
    baselines = baseline_rows(summary, request.baseline) if request.baseline else {}
    grouped = {key: lines for key, lines in runs.groupby(["data_source", "row", "task", "pct"], sort=False)}
    for position, cell in result[result["kind"] == "run"].iterrows():
        column = (cell["table"], cell["task"], cell["pct"])
        own, note = _cell_runs(grouped[(cell["table"], cell["row"], cell["task"], cell["pct"])], cell["metric"])
        if request.ci or cell["row"] == baselines.get(column):
            if own is not None:
                samples, patients = _shared(cell["metric"], own)
                interval = cell_interval(_statistics(own, cell["metric"], samples), patients, request.n_resamples,
                                         request.seed, request.level)
                result.loc[position, ["ci_low", "ci_high"]] = 100 * interval.low, 100 * interval.high
        if request.baseline and cell["row"] != baselines.get(column):
            note = _difference(result, position, cell, own, note, baselines.get(column), grouped, summary, request)
        result.loc[position, "interval_note"] = note
    if request.baseline:
        for _, lines in result[result["kind"] == "run"].groupby("table"):
            adjusted = adjust_p_values(lines["p_value"].to_numpy(dtype=float), request.correction)
            result.loc[lines.index, "p_adjusted"] = adjusted
            result.loc[lines.index, "significant"] = adjusted <= request.alpha
    return result


def _difference(result, position, cell, own, note, baseline_row, grouped, summary, request) -> str:
    """Fill the delta columns of one cell; returns its interval note."""
    if baseline_row is None:
        return "no baseline result in this column"
    base_key = (cell["table"], baseline_row, cell["task"], cell["pct"])
    base_mean = summary[(summary["table"] == cell["table"]) & (summary["row"] == baseline_row)
                        & (summary["task"] == cell["task"]) & (summary["pct"] == cell["pct"])]["mean"].iloc[0]
    result.loc[position, "delta"] = cell["mean"] - base_mean
    base, base_note = _cell_runs(grouped[base_key], cell["metric"])
    if own is None or base is None:
        return note or f"baseline: {base_note}"
    samples, patients = _shared(cell["metric"], own, base)
    if not len(samples):
        return "no test samples (or prompts, for class-level text queries) shared with the baseline"
    difference = paired_difference(_statistics(own, cell["metric"], samples),
                                   _statistics(base, cell["metric"], samples), patients, request.n_resamples,
                                   request.seed, request.level)
    result.loc[position, ["delta_low", "delta_high", "p_value"]] = (100 * difference.low, 100 * difference.high,
                                                                    difference.p_value)
    return ""


def record_outputs_columns(record, path: Optional[Path]) -> tuple[Optional[str], Optional[str]]:
    """``(outputs file path, sha256)`` of a record read from ``path``, or ``(None, None)``."""
    reference = getattr(record, "outputs", None)
    if path is None or not reference:
        return None, None
    return str(Path(path).parent / reference["file"]), reference["sha256"]
