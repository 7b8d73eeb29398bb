"""The sweep's leaderboard (``DIR/leaderboard.md``) and report (``DIR/report/``): the suite's records only, and with
the suite's ``baseline`` the differences, intervals and p-values of ``medvlp-bench leaderboard --baseline``, the suite
label translated to its leaderboard row. Records are stand-ins with per-sample outputs, written under the planned cells' configs."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from medvlp_bench.leaderboard import build_leaderboard
from medvlp_bench.records import load_record_files, write_record
from medvlp_bench.registry import load_registry
from medvlp_bench.statistics.table_statistics import StatisticsRequest
from medvlp_bench.sweeps.planning import plan_suite, records_folder
from medvlp_bench.sweeps.suite import load_suite
from medvlp_bench.sweeps.sweep import write_results
from stats_fixtures import auroc, classification_outputs
from test_leaderboard import make_record

SUITE = """\
name: board
data:
  synthetic: {seed: 0, scale: 0.05}
encoder: resnet18_64
methods:
  base: {method: random}
  mgca: {pretrain: {epochs: 1}}
tasks: [rsna_cls]
fractions: [1.0]
seeds: [0, 1, 2]
baseline: base
"""


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _plan(tmp_path, registry):
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE)
    return plan_suite(registry, load_suite(path), tmp_path / "sweep")


def _write_records(plan, methods) -> None:
    """A record with outputs for each planned cell of ``methods`` (mgca's scores separate the classes better)."""
    for item in plan.cells:
        if item.plan.method.name not in methods:
            continue
        outputs = classification_outputs(1.5 if item.plan.method.name == "mgca" else 0.2, item.cell.seed)
        record = make_record(item.plan.method.name, "rsna_cls", 1.0, item.cell.seed, auroc(outputs),
                             data_source="synthetic")
        record = replace(record, config=item.plan.config, config_key=item.plan.key)
        write_record(record, records_folder(plan.out_dir), outputs=outputs)


def test_the_baseline_row_gets_the_differences_of_leaderboard_baseline(tmp_path, registry):
    plan = _plan(tmp_path, registry)
    _write_records(plan, {"random", "mgca"})
    write_record(make_record("convirt", "rsna_cls", 1.0, 0, 0.9, data_source="synthetic"),
                 records_folder(plan.out_dir))  # not a cell of this suite: left out
    stream = io.StringIO()
    path, report = write_results(plan, plan.out_dir, stream)
    pairs = [(file, record) for file, record in load_record_files(records_folder(plan.out_dir))
             if record.method != "convirt"]
    expected = build_leaderboard([record for _, record in pairs], None, "md", files=[file for file, _ in pairs],
                                 statistics=StatisticsRequest(baseline="random"))
    text = path.read_text()
    assert text == expected and stream.getvalue() == ""
    assert "Baseline random" in text and "p=" in text and "convirt" not in text
    page = report.read_text()
    assert report == plan.out_dir / "report" / "report.md" and "## Differences to random" in page
    assert "convirt" not in page and (report.parent / "figures" / "delta_heatmap.png").is_file()


def test_without_baseline_records_the_table_is_written_without_differences(tmp_path, registry):
    plan = _plan(tmp_path, registry)
    _write_records(plan, {"mgca"})
    stream = io.StringIO()
    leaderboard, report = write_results(plan, plan.out_dir, stream)
    text = leaderboard.read_text()
    assert "p=" not in text and "mgca" in text and "## Differences to" not in report.read_text()
    assert "without differences to the baseline: the baseline 'base' has no record yet" in stream.getvalue()
