"""Figures from run records, with matplotlib's Agg backend (no display needed), each as PNG (200 dpi) and SVG.

* ``data_efficiency.{png,svg}``: per data source, one panel per task: the primary metric (percent, mean over seeds)
  against the fraction of the training split used (log axis), one line per leaderboard row with its band: the 95 %
  two-level bootstrap interval (patients and seeds, :mod:`medvlp_bench.statistics.paired`) where the records carry
  per-sample outputs, else mean +- one standard deviation over seeds (the figure's title says which). Rows are
  dodged sideways by a few percent of the fraction (``pct * 1.05 ** (i - (R - 1) / 2)`` for row i of R) so that
  their bars do not hide each other; the ticks mark the true fractions.
* ``delta_heatmap.{png,svg}`` (with a baseline): rows x (task, pct) columns of the difference to the baseline's
  mean in percent points, diverging colours centred on 0, each cell annotated with its value and a ``*`` where
  the paired bootstrap p-value, Holm-corrected across the table, is <= 0.05.

File names carry the data source when the records hold more than one (``data_efficiency_real.png``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from medvlp_bench.leaderboard import METRIC_LABELS, column_order, leaderboard_frame  # noqa: E402
from medvlp_bench.records import RunRecord  # noqa: E402
from medvlp_bench.statistics.bootstrap import BOOTSTRAP_SEED, N_RESAMPLES  # noqa: E402
from medvlp_bench.statistics.table_statistics import StatisticsRequest  # noqa: E402

FORMATS = ("png", "svg")
DPI = 200
_STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
          "axes.spines.top": False, "axes.spines.right": False}


def write_plots(records: Iterable[RunRecord], files: Iterable[Path], out_dir: Path, *,
                baseline: Optional[str] = None, n_resamples: int = N_RESAMPLES,
                seed: int = BOOTSTRAP_SEED) -> list[Path]:
    """Write the figures of the module docstring into ``out_dir``; returns the files written."""
    frame = leaderboard_frame(list(records), files=list(files),
                              statistics=StatisticsRequest(ci=True, baseline=baseline, n_resamples=n_resamples,
                                                           seed=seed))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = list(frame["table"].unique())
    written = []
    for table in tables:
        lines = frame[(frame["table"] == table) & (frame["kind"] == "run")]
        suffix = f"_{table}" if len(tables) > 1 else ""
        with plt.rc_context(_STYLE):
            written += _save(data_efficiency_figure(lines, table), out / f"data_efficiency{suffix}")
            if baseline is not None and lines["delta"].notna().any():
                written += _save(delta_heatmap_figure(lines, table, baseline), out / f"delta_heatmap{suffix}")
    return written


def _save(figure, stem: Path) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
        paths.append(path)
    plt.close(figure)
    return paths


def data_efficiency_figure(lines: pd.DataFrame, table: str):
    """The data-efficiency panels of one table's run lines (module docstring)."""
    tasks = list(dict.fromkeys(task for task, _ in column_order(lines)))
    columns = min(3, len(tasks))
    rows = math.ceil(len(tasks) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    labels = list(dict.fromkeys(lines["row"]))
    colours = {label: plt.get_cmap("tab10")(index % 10) for index, label in enumerate(labels)}
    used_std = False
    for axis, task in zip(axes.flat, tasks):
        task_lines = lines[lines["task"] == task]
        for index, label in enumerate(labels):
            points = task_lines[task_lines["row"] == label].sort_values("pct")
            if points.empty:
                continue
            colour = colours[label]
            x = points["pct"] * 1.05 ** (index - (len(labels) - 1) / 2)
            axis.plot(x, points["mean"], marker="o", markersize=3.5, linewidth=1.4, color=colour,
                      label=label)
            has_ci = points["ci_low"].notna()
            low = points["ci_low"].where(has_ci, points["mean"] - points["std"].fillna(0))
            high = points["ci_high"].where(has_ci, points["mean"] + points["std"].fillna(0))
            used_std |= bool((~has_ci).any())
            if len(points) > 1:
                axis.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
            else:
                axis.errorbar(x, points["mean"], yerr=[points["mean"] - low, high - points["mean"]],
                              color=colour, capsize=3, linewidth=1)
        metric = METRIC_LABELS.get(task_lines["metric"].iloc[0], task_lines["metric"].iloc[0])
        axis.set_title(task)
        axis.set_xscale("log")
        fractions = sorted(task_lines["pct"].unique())
        axis.set_xticks(fractions, [f"{100 * pct:g}%" for pct in fractions])
        axis.minorticks_off()
        axis.set_xlim(min(fractions) / 1.6, max(fractions) * 1.6)
        axis.set_xlabel("training data used")
        axis.set_ylabel(f"{metric} (%)")
        axis.grid(True, alpha=0.3, linewidth=0.5)
    for axis in list(axes.flat)[len(tasks):]:
        axis.set_visible(False)
    handles, names = [], []
    for axis in axes.flat:
        for handle, name in zip(*axis.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    figure.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(names)),
                  frameon=False)
    band = ("Bands: 95% bootstrap interval over test patients and seeds"
            + ("; ± 1 std over seeds where the records have no per-sample outputs" if used_std else ""))
    figure.suptitle(f"Data efficiency ({table} data). {band}.", fontsize=9, y=1.0)
    figure.tight_layout()
    return figure


def delta_heatmap_figure(lines: pd.DataFrame, table: str, baseline: str):
    """The heat map of differences to the baseline for one table's run lines (module docstring)."""
    columns = column_order(lines)
    rows = [row for row in dict.fromkeys(lines["row"]) if lines.loc[lines["row"] == row, "delta"].notna().any()]
    values = np.full((len(rows), len(columns)), np.nan)
    marks = np.zeros_like(values, dtype=bool)
    for line in lines.itertuples():
        if line.row in rows and (line.task, line.pct) in columns and not pd.isna(line.delta):
            position = rows.index(line.row), columns.index((line.task, line.pct))
            values[position] = line.delta
            marks[position] = bool(line.significant)
    limit = max(1.0, float(np.nanmax(np.abs(values))))
    figure, axis = plt.subplots(figsize=(1.15 * len(columns) + 3.2, 0.55 * len(rows) + 1.6))
    image = axis.imshow(np.ma.masked_invalid(values), cmap="RdBu",
                        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit), aspect="auto")
    axis.set_facecolor("#eeeeee")
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            colour = "white" if abs(value) > 0.6 * limit else "black"
            axis.text(column, row, f"{value:+.1f}{'*' if marks[row, column] else ''}", ha="center", va="center",
                      fontsize=8, color=colour)
    axis.set_xticks(range(len(columns)), [f"{task}\n{100 * pct:g}%" for task, pct in columns], fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    axis.tick_params(length=0)
    for spine in axis.spines.values():
        spine.set_visible(False)
    bar = figure.colorbar(image, ax=axis, fraction=0.04, pad=0.02)
    bar.set_label(f"difference to {baseline} (percent points)")
    tested = lines["p_value"].notna().any()
    marks_note = ("* = significant at 0.05 (paired bootstrap, Holm-corrected)" if tested
                  else "no significance marks: the records carry no per-sample outputs")
    axis.set_title(f"Mean over seeds minus {baseline}'s mean ({table} data), percent points\n"
                   f"{marks_note}; grey: no result", fontsize=9)
    figure.tight_layout()
    return figure
