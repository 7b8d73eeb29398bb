"""Published reference numbers, shipped as data in the package ``medvlp_bench_reported`` (``leaderboards/reported``).

Every ``*.csv`` there is read (today one file, the ResNet-50 rows of the MGCA paper, Wang et al., NeurIPS 2022, as
reproduced in later papers); a new publication's numbers are a new file in the same long format, one row per
method x task x pct:

* ``method``: the method plugin's name where one exists (``random``, ``imagenet``, ``convirt``, ``gloria``,
  ``mgca``), else a name of the same style (``gloria_mimic``); ``label``: its display name (``GLoRIA-MIMIC``);
* ``task``: ``chexpert_cls``, ``rsna_cls``, ``covidx_cls``, ``siim_seg``, ``rsna_seg``, ``rsna_det``,
  ``object_cxr_det``; ``pct``: fraction of the training split, 0.01 / 0.1 / 1.0;
* ``value``: the published number in PERCENT (e.g. 87.6 = an AUROC of 0.876); empty where the paper prints
  "-" (below 1 %); ``metric``: ``auroc``, ``accuracy``, ``dice`` or ``map``;
* ``source``: where the number comes from; ``notes``: caveats (re-implementations, optimistic mAP, "-").
"""

from __future__ import annotations

from importlib import resources
from typing import IO, Union

import pandas as pd

from medvlp_bench.errors import MedvlpError

REPORTED_COLUMNS = ("method", "label", "task", "pct", "value", "metric", "source", "notes")
REPORTED_PACKAGE = "medvlp_bench_reported"


def load_reported() -> pd.DataFrame:
    """The published numbers of every ``*.csv`` in the reported-numbers package (see the module docstring),
    each validated, then together: one row per (method, task, pct) across the files."""
    files = sorted((entry for entry in resources.files(REPORTED_PACKAGE).iterdir() if entry.name.endswith(".csv")),
                   key=lambda entry: entry.name)
    frames = []
    for resource in files:
        with resource.open("r", encoding="utf-8") as handle:
            frames.append(read_reported_csv(handle, name=resource.name))
    if not frames:
        raise MedvlpError(f"no reported-numbers CSV in the package {REPORTED_PACKAGE}")
    frame = pd.concat(frames, ignore_index=True)
    problems = _problems(frame)
    if problems:
        raise MedvlpError(f"{', '.join(entry.name for entry in files)} together: " + "; ".join(problems))
    return frame


def read_reported_csv(source: Union[str, IO[str]], *, name: str = "reported CSV") -> pd.DataFrame:
    """Read a CSV of published numbers and validate it; errors name ``name``.

    Checks: exactly the columns :data:`REPORTED_COLUMNS`; ``method``, ``label``, ``task``, ``metric`` non-empty;
    ``pct`` in (0, 1]; ``value`` in [0, 100] or empty; one row per (method, task, pct); one metric per task.
    """
    text_columns = {column: str for column in REPORTED_COLUMNS if column not in ("pct", "value")}
    frame = pd.read_csv(source, dtype=text_columns, keep_default_na=False, na_values={"value": [""]})
    if tuple(frame.columns) != REPORTED_COLUMNS:
        raise MedvlpError(f"{name}: columns must be {list(REPORTED_COLUMNS)}, got {list(frame.columns)}")
    problems = _problems(frame)
    if problems:
        raise MedvlpError(f"{name}: " + "; ".join(problems))
    return frame


def _problems(frame: pd.DataFrame) -> list[str]:
    problems = [
        f"column {column!r} has empty entries"
        for column in ("method", "label", "task", "metric")
        if (frame[column] == "").any()
    ]
    pct = pd.to_numeric(frame["pct"], errors="coerce")
    if not pct.between(0.0, 1.0, inclusive="right").all():
        problems.append("pct must be a fraction in (0, 1]")
    value = pd.to_numeric(frame["value"], errors="coerce")
    if (value.isna() != frame["value"].isna()).any() or not value.dropna().between(0.0, 100.0).all():
        problems.append("value must be a percentage in [0, 100] or empty")
    if frame.duplicated(["method", "task", "pct"]).any():
        problems.append("a (method, task, pct) appears more than once")
    if (frame.groupby("task")["metric"].nunique() > 1).any():
        problems.append("a task has more than one metric")
    return problems
