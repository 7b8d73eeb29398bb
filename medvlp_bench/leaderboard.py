"""Leaderboards: run records (and optionally published numbers) as tables, in Markdown, CSV or LaTeX.

Rules (the same for every format):

* One table per data source, real first; synthetic results are never tabulated beside real ones.
* Columns = task x pct, labelled ``"{task} {100 * pct:g}%"`` (e.g. ``rsna_cls 1%``), ordered by the task's
  primary metric name (so tasks scored alike sit together: accuracy, AUROC, Dice, mAP), then task name, then pct.
  The core names no task: the order follows from the records alone.
* Seeds: records whose configs are equal once the top-level ``seed`` entry is removed are the seeds of one
  cell (nested seeds, e.g. of the synthetic data, make different configs). Copies of one run (same data source,
  config key and seed) count once, the last finished one.
* Rows = methods. When one method has several configs (besides the seed) for one column, e.g. two encoders,
  all of that method's rows in that table are labelled with the config entries that differ between those
  configs, as dotted paths: ``mgca (encoder=vit_b16)``. Digests (``*_key``, ``*sha256``, ``*_hash``, e.g. the
  pretraining key) are left out when a readable entry differs too (``mgca (weights.pretrain.max_epochs=12)``), and
  otherwise shown by their first 12 characters. Entries present in some of the configs only are named once by their
  subtree (``mgca (weights.pretrain)`` beside a row whose weights came from ``--checkpoint``).
* Cells = mean ± std (n) of the PRIMARY metric over seeds, in percent with one decimal:
  ``mean = sum(v_i) / n`` and ``std = sqrt(sum((v_i - mean)^2) / (n - 1))`` (ddof = 1) of ``v_i = 100 * metric``;
  the std is omitted when n = 1. Null metrics (undefined on a test set) are left out of mean, std and n.
* Best per column in bold (Markdown ``**x**``, LaTeX ``\\textbf{x}``): the highest mean, or the lowest where the
  records say ``higher_is_better = false``, compared at the displayed precision, so ties are all marked.
  All records of a task in one table must agree on the primary metric and its direction.
* Published numbers (``reported``) are reference rows labelled ``"{label} (reported)"``, never marked best:
  under the real-data table, restricted to its columns; when there are no real records, in a table of their own
  ("Reported (published)").
* Missing cells show ``–`` (``--`` in LaTeX). Every table carries a caption with the metric of each task.
* CSV is the long summary of :func:`leaderboard_frame` (numbers, not formatted cells), one line per
  table x row x column, with the record files behind each cell (``files``).
* Statistics (optional, :class:`~medvlp_bench.statistics.table_statistics.StatisticsRequest`): with ``ci``, each
  cell adds the 95 % two-level bootstrap interval of its mean (``73.0 ± 1.0 [71.2, 74.8] (3)``); with a
  ``baseline``, each other cell shows its difference to the baseline's cell in the same column, with the paired
  bootstrap interval, the p-value and a mark (``*``) where the p-value, corrected across the table (Holm by
  default), is <= 0.05: ``+10.8 [+6.1, +15.3] p=0.002*``. Cells whose records carry no per-sample outputs show
  ``[n/a]`` for the interval. The caption says what the numbers and marks mean.
* Notes under a table: records of an older schema (marked ``†`` in their cells: written before records named
  their plugins' versions) and plugins present in several versions (records' ``plugins`` field).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Literal, Optional

import pandas as pd
from tabulate import tabulate

import medvlp_bench
from medvlp_bench.errors import MedvlpError
from medvlp_bench.records import SCHEMA_VERSION, RunRecord
from medvlp_bench.statistics.table_statistics import (
    StatisticsRequest,
    record_outputs_columns,
    table_statistics,
)

#: display names of metric names; others are shown as they are
METRIC_LABELS = {"auroc": "AUROC", "accuracy": "accuracy", "acc": "accuracy", "dice": "Dice", "map": "mAP"}

#: columns of :func:`leaderboard_frame`; ``mean`` and ``std`` in percent, ``n`` = number of seeds
SUMMARY_COLUMNS = (
    "table", "kind", "row", "method", "task", "pct", "metric", "higher_is_better", "mean", "std", "n", "best",
    "older", "files",
)
#: the columns of runs_frame
RUN_COLUMNS = ("data_source", "method", "row", "task", "pct", "seed", "metric", "higher_is_better", "value",
               "config_key", "file", "outputs", "outputs_sha256", "schema_version")

#: characters of a digest (pretraining key, checkpoint hash) shown in a row label
DIGEST_CHARS = 12
TABLE_TITLES = {"real": "Data: real", "synthetic": "Data: synthetic", "reported": "Reported (published)"}

Format = Literal["md", "csv", "latex"]

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
_SYMBOLS = {
    "md": {"pm": "±", "missing": "–", "bold": "**{}**", "mark": "\\*", "older": "†"},
    "latex": {"pm": r"$\pm$", "missing": "--", "bold": r"\textbf{{{}}}", "mark": r"$^{*}$", "older": r"$^{\dagger}$"},
}


def runs_frame(records: Iterable[RunRecord], files: Optional[Iterable[Optional[Path]]] = None) -> pd.DataFrame:
    """One line per run (:data:`RUN_COLUMNS`): data_source, method, row (label, see module rules), task, pct,
    seed, metric, higher_is_better, value (primary metric in percent, NaN when null), config_key, file (the
    record's path when ``files`` gives it, aligned with ``records``), outputs and outputs_sha256 (its per-sample
    outputs file and digest, or None), schema_version.

    Copies of one run (same data_source, config_key, seed) count once: the one with the latest ``finished_at``.
    """
    records = list(records)
    paths = list(files) if files is not None else [None] * len(records)
    unique: dict[tuple, tuple[RunRecord, Optional[Path]]] = {}
    for record, path in sorted(zip(records, paths),
                               key=lambda pair: datetime.fromisoformat(pair[0].provenance["finished_at"])):
        unique[(record.data_source, record.config_key, record.seed)] = (record, path)
    kept = [record for record, _ in unique.values()]
    kept_paths = [path for _, path in unique.values()]
    labels = _row_labels(kept)
    lines = [
        {
            "data_source": record.data_source,
            "method": record.method,
            "row": label,
            "task": record.task,
            "pct": _pct(record.pct),
            "seed": record.seed,
            "metric": record.primary_metric,
            "higher_is_better": record.higher_is_better,
            "value": _percent(record.metrics[record.primary_metric]),
            "config_key": record.config_key,
            "file": str(path) if path is not None else None,
            "outputs": record_outputs_columns(record, path)[0],
            "outputs_sha256": record_outputs_columns(record, path)[1],
            "schema_version": record.schema_version,
        }
        for record, label, path in zip(kept, labels, kept_paths)
    ]
    return pd.DataFrame(lines, columns=list(RUN_COLUMNS))


def _pct(pct: float) -> float:
    """pct rounded to 6 decimals, so that 0.1 from different sources is one column."""
    return round(float(pct), 6)


def _percent(value: Optional[float]) -> float:
    return float("nan") if value is None else 100.0 * value


def _row_labels(records: list[RunRecord]) -> list[str]:
    """The row label of each record (see the module rules on methods with several configs)."""
    flat = [dict(_flatten({key: value for key, value in record.config.items() if key != "seed"}))
            for record in records]
    variants = [json.dumps(config, sort_keys=True) for config in flat]
    column_variants: dict[tuple, dict[str, dict[str, str]]] = defaultdict(dict)
    for record, config, variant in zip(records, flat, variants):
        column_variants[(record.data_source, record.method, record.task, _pct(record.pct))][variant] = config
    differing: dict[tuple, set[str]] = defaultdict(set)
    partial: dict[tuple, set[str]] = defaultdict(set)
    for (source, method, _, _), configs in column_variants.items():
        if len(configs) > 1:
            paths = set().union(*configs.values())
            differing[(source, method)] |= {
                path for path in paths if len({config.get(path) for config in configs.values()}) > 1
            }
            partial[(source, method)] |= {
                path for path in paths if any(path not in config for config in configs.values())
            }
    labels = []
    for record, config in zip(records, flat):
        group = (record.data_source, record.method)
        paths = _label_paths(sorted(differing[group]))
        details = list(dict.fromkeys(
            _subtree(path) if path in partial[group] else f"{path}={_label_value(path, config[path])}"
            for path in paths if path in config
        ))
        labels.append(f"{record.method} ({', '.join(details)})" if details else record.method)
    return labels


def _subtree(path: str) -> str:
    """A path present in some configs of a method and absent from others is labelled by the presence of its
    subtree, ``weights.pretrain`` for ``weights.pretrain.options.learning_rate``, not by each of its leaves."""
    return ".".join(path.split(".")[:2])


def _is_digest(path: str) -> bool:
    """A config entry that only fingerprints others (``weights.pretrain_key``, ``weights.checkpoint_sha256``)."""
    name = path.rsplit(".", 1)[-1]
    return name.endswith(("_key", "sha256", "_hash"))


def _label_paths(paths: list[str]) -> list[str]:
    """The differing paths worth showing: digests only when nothing readable differs."""
    readable = [path for path in paths if not _is_digest(path)]
    return readable or paths


def _label_value(path: str, value: str) -> str:
    """Digests shortened to their first 12 characters."""
    return value[:DIGEST_CHARS] if _is_digest(path) else value


def _flatten(config: dict, prefix: str = "") -> Iterable[tuple[str, str]]:
    """``(dotted path, value as text)`` of every leaf of a nested dict; strings as they are, others as JSON."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{path}.")
        else:
            yield path, value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def summarize_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof = 1) and n over seeds per (data_source, row, task, pct), in percent, with ``best``.

    Returns the columns of :data:`SUMMARY_COLUMNS`, ``table`` = data source and ``kind`` = ``"run"``.
    """
    _check_metrics(runs)
    keys = ["data_source", "row", "method", "task", "pct", "metric", "higher_is_better"]
    grouped = runs.groupby(keys, sort=False)
    summary = (
        grouped["value"].agg(mean="mean", std="std", n="count")
        .join(grouped["schema_version"].min().lt(SCHEMA_VERSION).rename("older"))
        .join(grouped["file"].agg(lambda files: "; ".join(Path(f).name for f in files if f)).rename("files"))
        .reset_index()
        .rename(columns={"data_source": "table"})
    )
    summary["kind"] = "run"
    summary["best"] = _best(summary)
    return summary[list(SUMMARY_COLUMNS)]


def _check_metrics(runs: pd.DataFrame) -> None:
    """All runs of a task in one data source must share the primary metric and its direction."""
    for (source, task), group in runs.groupby(["data_source", "task"]):
        if group["metric"].nunique() > 1 or group["higher_is_better"].nunique() > 1:
            found = sorted(set(zip(group["metric"], group["higher_is_better"])))
            raise MedvlpError(
                f"{source} records of task {task!r} disagree on the primary metric or its direction: {found}; "
                "tabulate them separately"
            )


def _best(summary: pd.DataFrame) -> pd.Series:
    """True where a cell's displayed mean (one decimal) is the best of its (table, task, pct) column."""
    shown = summary["mean"].map(lambda mean: float(f"{mean:.1f}"))
    signed = shown.where(summary["higher_is_better"], -shown)
    column_best = signed.groupby([summary["table"], summary["task"], summary["pct"]]).transform("max")
    return (signed == column_best) & shown.notna()


def summarize_reported(reported: pd.DataFrame, table: str) -> pd.DataFrame:
    """Published numbers (columns of :mod:`medvlp_bench.reported`) as summary lines of kind ``"reported"``:
    row = ``"{label} (reported)"``, mean = the published value in percent, std and n empty, never best.
    Entries without a value ("-" in the paper) are left out."""
    present = reported.dropna(subset=["value"])
    return pd.DataFrame({
        "table": table,
        "kind": "reported",
        "row": present["label"] + " (reported)",
        "method": present["method"],
        "task": present["task"],
        "pct": present["pct"].map(_pct),
        "metric": present["metric"],
        "higher_is_better": None,
        "mean": present["value"].astype(float),
        "std": float("nan"),
        "n": pd.NA,
        "best": False,
        "older": False,
        "files": "",
    }, columns=list(SUMMARY_COLUMNS))


def leaderboard_frame(records: Iterable[RunRecord], reported: Optional[pd.DataFrame] = None, *,
                      files: Optional[Iterable[Path]] = None,
                      statistics: Optional[StatisticsRequest] = None) -> pd.DataFrame:
    """The long summary behind every format (columns :data:`SUMMARY_COLUMNS`, plus :data:`STATISTICS_COLUMNS`
    with ``statistics``), sorted by table (real, synthetic, reported), kind (runs first), row, metric, task and
    pct. ``files``: the records' paths (aligned with ``records``), needed to find their per-sample outputs."""
    records = list(records)
    if not records and reported is None:
        raise MedvlpError("no run records to tabulate")
    runs = runs_frame(records, files)
    parts = [summarize_runs(runs)] if records else []
    if reported is not None:
        parts.append(_placed_reported(parts[0] if parts else None, reported))
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame = _sorted(frame).reset_index(drop=True)
    return table_statistics(frame, runs, statistics) if statistics is not None else frame


def _placed_reported(runs: Optional[pd.DataFrame], reported: pd.DataFrame) -> pd.DataFrame:
    """Reported lines under the real table (its columns only), or as their own table without real records."""
    real = runs[runs["table"] == "real"] if runs is not None else None
    if real is None or real.empty:
        return summarize_reported(reported, "reported")
    lines = summarize_reported(reported, "real")
    columns = set(zip(real["task"], real["pct"]))
    return lines[[column in columns for column in zip(lines["task"], lines["pct"])]]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by table, kind, row (run rows only; reported rows keep their input order), task and pct."""
    keys = pd.DataFrame({
        "table": frame["table"].map(list(TABLE_TITLES).index),
        "kind": frame["kind"].map({"run": 0, "reported": 1}),
        "row": frame["row"].where(frame["kind"] == "run", ""),
        "metric": frame["metric"],
        "task": frame["task"],
        "pct": frame["pct"],
    })
    return frame.loc[keys.sort_values(list(keys.columns), kind="stable").index]


def column_order(lines: pd.DataFrame) -> list[tuple[str, float]]:
    """The (task, pct) columns of ``lines`` in the module's order: metric name, task name, pct."""
    metric = dict(zip(lines["task"], lines["metric"]))
    return sorted(set(zip(lines["task"], lines["pct"])), key=lambda column: (metric[column[0]], *column))


def build_leaderboard(
    records: Iterable[RunRecord], reported: Optional[pd.DataFrame] = None, fmt: Format = "md", *,
    files: Optional[Iterable[Path]] = None, statistics: Optional[StatisticsRequest] = None,
) -> str:
    """The leaderboard of ``records`` (and ``reported`` numbers, if given) as Markdown, CSV or LaTeX text.

    See the module docstring for the rules. Markdown: one ``## {title}`` section per table, GitHub pipe tables.
    LaTeX: one complete ``table`` environment per table, using booktabs rules (``\\usepackage{booktabs}``).
    ``files`` (the records' paths) and ``statistics`` add intervals and paired differences.
    """
    records = list(records)
    if fmt not in ("csv", *_SYMBOLS):
        raise MedvlpError(f"unknown leaderboard format {fmt!r}; use md, csv or latex")
    frame = leaderboard_frame(records, reported, files=files, statistics=statistics)
    if fmt == "csv":
        return frame.to_csv(index=False)
    origin = f"medvlp-bench {medvlp_bench.__version__} leaderboard from {len(records)} run records"
    header = f"<!-- {origin} -->" if fmt == "md" else f"% {origin}; needs \\usepackage{{booktabs}}"
    sections = [
        _render_table(frame[frame["table"] == table], table, fmt, statistics,
                      [record for record in records if record.data_source == table])
        for table in frame["table"].unique()
    ]
    return "\n\n".join([header, *sections]) + "\n"


def _render_table(lines: pd.DataFrame, table: str, fmt: Format, statistics: Optional[StatisticsRequest],
                  records: list[RunRecord]) -> str:
    """One table of the leaderboard (the lines of one ``table``) in Markdown or LaTeX."""
    cells = _cell_grid(lines, fmt, statistics)
    caption = _caption(lines, fmt, statistics, records)
    if fmt == "md":
        body = tabulate(cells.values.tolist(), headers=list(cells.columns), tablefmt="github",
                        colalign=("left",) + ("right",) * (cells.shape[1] - 1))
        return f"## {TABLE_TITLES[table]}\n\n{body}\n\n{caption}"
    n_runs = int((lines.drop_duplicates("row")["kind"] == "run").sum())
    tabular = tabulate(cells.values.tolist(), headers=[_latex_escape(name) for name in cells.columns],
                       tablefmt="latex_raw", colalign=("left",) + ("right",) * (cells.shape[1] - 1))
    return "\n".join([
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{_latex_escape(TABLE_TITLES[table])}. {caption}}}",
        _booktabs(tabular, n_runs),
        r"\end{table}",
    ])


def _cell_grid(lines: pd.DataFrame, fmt: Format, statistics: Optional[StatisticsRequest] = None) -> pd.DataFrame:
    """Formatted cells: index = row labels in order, first column ``method``, then task x pct columns."""
    symbols = _SYMBOLS[fmt]
    labels = [_column_label(task, pct) for task, pct in column_order(lines)]
    rows = list(dict.fromkeys(lines["row"]))
    if statistics is not None and statistics.baseline:
        baseline_rows = set(lines.loc[lines["kind"] == "run", "row"][
            lines.loc[lines["kind"] == "run", "delta"].isna()
            & (lines.loc[lines["kind"] == "run", "interval_note"] != "no baseline result in this column")])
        rows = [row for row in rows if row in baseline_rows] + [row for row in rows if row not in baseline_rows]
    grid = (
        lines.assign(
            column=[_column_label(task, pct) for task, pct in zip(lines["task"], lines["pct"])],
            cell=[_cell(line, symbols, statistics) for line in lines.itertuples()],
        )
        .pivot(index="row", columns="column", values="cell")
        .reindex(index=rows, columns=labels)
        .fillna(symbols["missing"])
    )
    names = grid.index if fmt == "md" else [_latex_escape(row) for row in grid.index]
    return grid.reset_index(drop=True).rename_axis(columns=None).assign(method=list(names))[["method", *labels]]


def _column_label(task: str, pct: float) -> str:
    """``"{task} {100 * pct:g}%"``, e.g. ``rsna_cls 1%``."""
    return f"{task} {100 * pct:g}%"


def _cell(line: Any, symbols: dict[str, str], statistics: Optional[StatisticsRequest] = None) -> str:
    """``mean ± std (n)`` (``mean (1)`` for one seed, ``mean`` for reported numbers), one decimal, bold if best;
    with statistics, the interval (``[low, high]``) or the difference to the baseline (module docstring)."""
    if pd.isna(line.mean):
        return symbols["missing"]
    if line.kind == "reported":
        return symbols["bold"].format(f"{line.mean:.1f}") if line.best else f"{line.mean:.1f}"
    if statistics is not None and not pd.isna(line.delta):
        text = f"{line.delta:+.1f} " + _interval_text(line.delta_low, line.delta_high, signed=True)
        if not pd.isna(line.p_value):
            text += " " + ("p<0.001" if line.p_value < 0.001 else f"p={line.p_value:.3f}")
            text += symbols["mark"] if line.significant else ""
    else:
        spread = f" {symbols['pm']} {line.std:.1f}" if line.n > 1 else ""
        shown = statistics is not None and (statistics.ci or not pd.isna(line.ci_low)
                                            or line.interval_note not in ("", "no baseline result in this column"))
        interval = " " + _interval_text(line.ci_low, line.ci_high, signed=False) if shown else ""
        text = f"{line.mean:.1f}{spread}{interval} ({line.n})"
    text += symbols["older"] if line.older else ""
    return symbols["bold"].format(text) if line.best else text


def _interval_text(low: float, high: float, *, signed: bool) -> str:
    if pd.isna(low):
        return "[n/a]"
    return f"[{low:+.1f}, {high:+.1f}]" if signed else f"[{low:.1f}, {high:.1f}]"


def _caption(lines: pd.DataFrame, fmt: Format, statistics: Optional[StatisticsRequest] = None,
             records: Iterable[RunRecord] = ()) -> str:
    """Metric per task, cell rule, statistics, notes and (when present) the meaning of reported rows."""
    metrics = lines.groupby("task", sort=False)["metric"].unique()
    order = list(dict.fromkeys(task for task, _ in column_order(lines)))
    per_task = "; ".join(
        f"{task}: {' / '.join(METRIC_LABELS.get(metric, metric) for metric in metrics[task])}" for task in order
    )
    parts = [f"Primary metric per task: {per_task}."]
    runs = lines[lines["kind"] == "run"]
    if len(runs):
        parts.append(
            "Cells: mean ± std (n) over seeds, in percent (std with ddof = 1, omitted when n = 1); "
            "best per column in bold; – = no result."
        )
    if statistics is not None and len(runs):
        parts.append(_statistics_caption(statistics, fmt))
    if len(runs) and runs["older"].any():
        parts.append(f"{_SYMBOLS[fmt]['older']} the cell includes records of an older schema (before version "
                     f"{SCHEMA_VERSION}), which do not name their plugins' versions.")
    mixed = plugin_version_note(records)
    if mixed:
        parts.append(mixed)
    if (lines["kind"] == "reported").any():
        parts.append(
            "Rows marked (reported): published numbers in percent, for reference only (never marked best); "
            "their splits and evaluation code differ from this harness; – = not reported or below 1%."
        )
    text = " ".join(parts)
    if fmt == "md":
        return text
    symbols = _SYMBOLS["latex"]
    escaped = _latex_escape(text.replace(_SYMBOLS["latex"]["older"], "\x00").replace(symbols["mark"], "\x01"))
    return (escaped.replace("±", symbols["pm"]).replace("–", symbols["missing"]).replace("\x00", symbols["older"])
            .replace("\x01", symbols["mark"]))


def _statistics_caption(statistics: StatisticsRequest, fmt: Format) -> str:
    """What the intervals, differences, p-values and marks mean."""
    level = f"{100 * statistics.level:g}%"
    resampling = (f"{statistics.n_resamples} resamples of the test patients (cluster bootstrap) and of the seeds, "
                  f"seed {statistics.seed}")
    text = (f"[low, high]: {level} bootstrap interval of the mean over seeds ({resampling}); "
            "[n/a]: no interval, the cell's records carry no per-sample outputs.")
    if statistics.baseline:
        correction = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}[statistics.correction]
        text += (f" Baseline {statistics.baseline}: its cells show its value; every other cell shows the difference "
                 f"to the baseline in percent points, its {level} paired bootstrap interval over the test samples "
                 "both share (seeds resampled too, paired by seed value where both have the same seeds) and the "
                 f"two-sided bootstrap p-value; {_SYMBOLS[fmt]['mark']} = significant at "
                 f"{statistics.alpha:g} after {correction} correction across this table's differences.")
    return text


def plugin_version_note(records: Iterable[Any]) -> str:
    """A sentence naming the plugins present in several versions among ``records`` (from their ``plugins``
    field, ``{role: {"name", "distribution", "version"}}``), or ``""``."""
    versions: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for record in records:
        for role, plugin in (getattr(record, "plugins", None) or {}).items():
            versions[(role, plugin.get("name", "?"), plugin.get("distribution", "?"))].add(str(plugin.get("version")))
    mixed = [f"{role} {name} ({distribution} {', '.join(sorted(found))})"
             for (role, name, distribution), found in sorted(versions.items()) if len(found) > 1]
    return f"Note: this table mixes plugin versions: {'; '.join(mixed)}." if mixed else ""


def _latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (``\\ & % $ # _ { } ~ ^``) in plain text."""
    return re.sub(r"[\\&%$#_{}~^]", lambda match: _LATEX_SPECIALS[match.group()], text)


def _booktabs(tabular: str, n_run_rows: int) -> str:
    """Turn the three ``\\hline`` of tabulate's ``latex_raw`` into booktabs rules, with a ``\\midrule``
    between run rows and reported rows."""
    lines = tabular.splitlines()
    top, header_end, bottom = [index for index, line in enumerate(lines) if line.strip() == r"\hline"]
    lines[top], lines[header_end], lines[bottom] = r"\toprule", r"\midrule", r"\bottomrule"
    if 0 < n_run_rows < bottom - header_end - 1:
        lines.insert(header_end + 1 + n_run_rows, r"\midrule")
    return "\n".join(lines)
