"""Tests of leaderboard statistics: intervals, paired differences against a baseline, corrections, notes."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from medvlp_bench import cli, leaderboard
from medvlp_bench.errors import MedvlpError
from medvlp_bench.leaderboard import build_leaderboard, leaderboard_frame, plugin_version_note
from medvlp_bench.records import load_record_files
from medvlp_bench.statistics.table_statistics import StatisticsRequest
from stats_fixtures import write_runs
from test_leaderboard import cell, make_record, markdown_cells


def board(folder, fmt="md", **request):
    pairs = load_record_files(folder)
    statistics = StatisticsRequest(n_resamples=300, **request)
    records, files = [record for _, record in pairs], [path for path, _ in pairs]
    return (build_leaderboard(records, None, fmt, files=files, statistics=statistics),
            leaderboard_frame(records, files=files, statistics=statistics))


@pytest.fixture
def runs(tmp_path):
    write_runs(tmp_path, "mgca", 1.5, seed_offset=0)
    write_runs(tmp_path, "random", 0.2, seed_offset=10)
    write_runs(tmp_path, "twin", 0.2, seed_offset=10)  # the baseline's outputs under another name
    return tmp_path


def test_baseline_cells_show_delta_interval_p_and_mark(runs):
    text, frame = board(runs, baseline="random")
    mgca, twin = cell(frame, "mgca", "rsna_cls", 0.1), cell(frame, "twin", "rsna_cls", 0.1)
    base = cell(frame, "random", "rsna_cls", 0.1)
    assert mgca["delta"] == pytest.approx(mgca["mean"] - base["mean"])
    assert 0 < mgca["delta_low"] < mgca["delta"] < mgca["delta_high"]
    assert mgca["significant"] and mgca["p_adjusted"] <= 0.05
    assert (twin["delta"], twin["delta_low"], twin["delta_high"], twin["p_value"]) == (0, 0, 0, 1)
    assert not twin["significant"]
    cells = markdown_cells(text, "Data: real")
    assert list(cells.index) == ["random", "mgca", "twin"]  # the baseline first
    shown = cells.loc["mgca", "rsna_cls 10%"]
    assert shown.startswith(f"**{mgca['delta']:+.1f} [{mgca['delta_low']:+.1f}, {mgca['delta_high']:+.1f}] p=")
    assert shown.endswith("\\***")
    assert cells.loc["twin", "rsna_cls 10%"] == "+0.0 [+0.0, +0.0] p=1.000"
    assert "after Holm correction" in text


def test_ci_shows_intervals_in_plain_cells_and_csv_carries_them(runs):
    text, frame = board(runs, ci=True)
    line = cell(frame, "mgca", "rsna_cls", 0.1)
    assert line["ci_low"] < line["mean"] < line["ci_high"]
    assert f"[{line['ci_low']:.1f}, {line['ci_high']:.1f}] (3)" in markdown_cells(text, "Data: real").loc[
        "mgca", "rsna_cls 10%"]
    csv = pd.read_csv(io.StringIO(board(runs, "csv", ci=True)[0]))
    assert {"ci_low", "ci_high", "p_value", "files"} <= set(csv.columns)
    assert set(csv["n_resamples"]) == {300} and set(csv["bootstrap_seed"]) == {0}
    assert len(cell(csv, "mgca", "rsna_cls", 0.1)["files"].split("; ")) == 3


def test_latex_carries_deltas_and_marks(runs):
    text, _ = board(runs, "latex", baseline="random")
    assert "$^{*}$" in text and "p=" in text and "Holm" in text


def test_corrections_adjust_across_the_table(runs):
    write_runs(runs, "gloria", 0.35, seed_offset=20)
    _, holm = board(runs, baseline="random", correction="holm")
    _, none = board(runs, baseline="random", correction="none")
    tested = holm["p_value"].notna()
    assert (holm.loc[tested, "p_adjusted"] >= holm.loc[tested, "p_value"]).all()
    assert (none.loc[tested, "p_adjusted"] == none.loc[tested, "p_value"]).all()
    assert holm.loc[tested, "p_adjusted"].max() > holm.loc[tested, "p_value"].min()


def test_records_without_outputs_have_no_interval_but_a_note(tmp_path):
    write_runs(tmp_path, "mgca", 1.5, with_outputs=False)
    write_runs(tmp_path, "random", 0.2, seed_offset=10)
    text, frame = board(tmp_path, baseline="random")
    line = cell(frame, "mgca", "rsna_cls", 0.1)
    assert not np.isnan(line["delta"]) and np.isnan(line["delta_low"]) and np.isnan(line["p_value"])
    assert line["interval_note"] == "no per-sample outputs"
    assert markdown_cells(text, "Data: real").loc["mgca", "rsna_cls 10%"].endswith("[n/a]**")


def test_unknown_or_ambiguous_baseline_is_refused(runs):
    with pytest.raises(MedvlpError, match="neither a method nor a row"):
        board(runs, baseline="nobody")


def test_older_schema_records_are_marked(runs, monkeypatch):
    monkeypatch.setattr(leaderboard, "SCHEMA_VERSION", leaderboard.SCHEMA_VERSION + 1)
    text, _ = board(runs)
    assert markdown_cells(text, "Data: real").loc["random", "rsna_cls 10%"].endswith("†")
    assert "records of an older schema" in text


def test_mixed_plugin_versions_are_noted():
    first, second = make_record("mgca", "rsna_cls", 0.1, 0, 0.8), make_record("mgca", "rsna_cls", 0.1, 1, 0.8)
    first.plugins = {"method": {"name": "mgca", "distribution": "medvlp-bench", "version": "0.1.0"}}
    second.plugins = {"method": {"name": "mgca", "distribution": "medvlp-bench", "version": "0.2.0"}}
    assert plugin_version_note([first, second]) == (
        "Note: this table mixes plugin versions: method mgca (medvlp-bench 0.1.0, 0.2.0).")
    assert plugin_version_note([first, first]) == ""
    assert "mixes plugin versions" in build_leaderboard([first, second])


def test_cli_leaderboard_baseline(runs, capsys):
    assert cli.main(["leaderboard", "--runs", str(runs), "--baseline", "random", "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "p=" in out and "Baseline random" in out
    assert cli.main(["leaderboard", "--runs", str(runs), "--ci", "--correction", "bh", "--format", "csv",
                     "--resamples", "200"]) == 0
    assert "ci_low" in capsys.readouterr().out
