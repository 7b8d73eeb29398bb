"""Zero-shot and retrieval records in the statistics, end to end: fresh records of the tiny synthetic scale (random
towers and an MGCA checkpoint in its released layout) get intervals and paired differences in ``leaderboard``,
``report`` and ``plot``, their recomputed point estimates equal the records' metrics, and the committed zero-shot
records (written before per-sample outputs) still load, shown without intervals."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from medvlp_bench import cli
from medvlp_bench.leaderboard import leaderboard_frame
from medvlp_bench.records import load_record_files
from medvlp_bench.sample_outputs import record_outputs
from medvlp_bench.statistics.bootstrap import full_value
from medvlp_bench.statistics.record_statistics import statistic_for
from medvlp_bench.statistics.table_statistics import NO_OUTPUTS, StatisticsRequest
from test_leaderboard import markdown_cells
from test_zero_shot_end_to_end import TINY, bio_clinicalbert_cache, released_state

TASKS = ("chexpert5x200_zs", "chexpert5x200_ret", "mimic_cxr_ret")
#: MIMIC-CXR's test split holds 4 images at scale 0.1; 0.5 gives some twenty
SCALE = {"mimic_cxr_ret": ["--synthetic-scale", "0.5"]}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """One record per task of ``random`` (seed 0) and of ``mgca`` from a tiny released-layout checkpoint."""
    import torch

    root = tmp_path_factory.mktemp("zero-shot-statistics")
    folder = root / "records"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_CACHE", str(root / "hub"))
        torch.save({"state_dict": released_state("mgca", bio_clinicalbert_cache(root / "hub"))}, root / "mgca.ckpt")
        for task in TASKS:
            for method in ("random", "mgca"):
                weights = ["--checkpoint", str(root / "mgca.ckpt")] if method == "mgca" else []
                assert cli.main(["run", "--out", str(folder), *TINY, *SCALE.get(task, []), "--method", method,
                                 "--task", task, *weights]) == 0
    return folder


def test_every_metric_recomputed_from_the_outputs_equals_the_records(records):
    pairs = load_record_files(records)
    assert len(pairs) == 2 * len(TASKS)
    for path, record in pairs:
        outputs = record_outputs(record, path)
        assert statistic_for(record.primary_metric, outputs) is not None, path.name
        for metric, value in record.metrics.items():
            statistic = statistic_for(metric, outputs)
            assert statistic is not None, (path.name, metric)
            n_units = len(outputs["text_query"]) if metric.startswith("t2i") and "text_label" in outputs else \
                len(outputs["sample_id"])
            # torchmetrics returns the zero-shot metrics in float32: equal to its precision
            assert full_value(statistic, n_units) == pytest.approx(value, rel=1e-6, abs=1e-12), (path.name, metric)


def test_zero_shot_and_retrieval_cells_get_intervals_and_differences_to_random(records):
    pairs = load_record_files(records)
    frame = leaderboard_frame([record for _, record in pairs], files=[path for path, _ in pairs],
                              statistics=StatisticsRequest(ci=True, baseline="random", n_resamples=200))
    for task in TASKS:
        base = frame[(frame["row"] == "random") & (frame["task"] == task)].iloc[0]
        other = frame[(frame["row"] == "mgca") & (frame["task"] == task)].iloc[0]
        assert base["interval_note"] == "" and other["interval_note"] == "", task
        assert base["ci_low"] <= base["mean"] <= base["ci_high"], task
        assert other["delta"] == pytest.approx(other["mean"] - base["mean"])
        assert other["delta_low"] <= other["delta"] <= other["delta_high"], task
        assert 0 < other["p_value"] <= 1 and not np.isnan(other["p_adjusted"]), task


def test_leaderboard_report_and_plot_run_on_zero_shot_and_retrieval_records(records, tmp_path, capsys):
    assert cli.main(["leaderboard", "--runs", str(records), "--ci", "--baseline", "random",
                     "--resamples", "200"]) == 0
    board = capsys.readouterr().out
    cells = markdown_cells(board, "Data: synthetic")
    assert list(cells.index) == ["random", "mgca"]
    for task in TASKS:
        assert re.search(r"\[\d+\.\d, \d+\.\d\] \(1\)", cells.loc["random", f"{task} 100%"]), task  # not [n/a]
        assert " p=" in cells.loc["mgca", f"{task} 100%"], task
    assert cli.main(["report", "--runs", str(records), "--out", str(tmp_path / "report"), "--baseline", "random",
                     "--resamples", "200"]) == 0
    page = (tmp_path / "report" / "report.md").read_text()
    per_record = page.split("## Per-record intervals")[1]
    rows = [line for line in per_record.splitlines() if line.startswith("| [")]
    assert len(rows) == 2 * len(TASKS) and not any("| n/a" in row for row in rows)
    assert cli.main(["plot", "--runs", str(records), "--out", str(tmp_path / "plots"), "--baseline", "random",
                     "--resamples", "200"]) == 0
    assert (tmp_path / "plots" / "data_efficiency.png").is_file()
    assert (tmp_path / "plots" / "delta_heatmap.png").is_file()


def test_committed_zero_shot_records_without_outputs_load_and_show_no_interval(repo_root, tmp_path, capsys):
    committed = repo_root / "leaderboards" / "synthetic-cpu" / "schema1" / "zero-shot" / "records"
    pairs = load_record_files(committed)
    assert pairs and not any(getattr(record, "outputs", None) for _, record in pairs)
    frame = leaderboard_frame([record for _, record in pairs], files=[path for path, _ in pairs],
                              statistics=StatisticsRequest(ci=True, n_resamples=50))
    runs = frame[frame["kind"] == "run"]
    assert (runs["interval_note"] == NO_OUTPUTS).all() and runs["ci_low"].isna().all()
    shutil.copytree(committed, tmp_path / "records")
    assert cli.main(["leaderboard", "--runs", str(tmp_path / "records"), "--ci", "--resamples", "50"]) == 0
    assert "[n/a]" in capsys.readouterr().out
