"""Tests of the report page: sections, intervals or their absence per cell, figures and record links."""

from __future__ import annotations

import re

from medvlp_bench import cli
from stats_fixtures import write_runs


def test_report_page_links_figures_and_records_and_says_which_cells_lack_intervals(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_runs(runs, "mgca", 1.5, data_source="synthetic")
    write_runs(runs, "random", 0.2, seed_offset=10, with_outputs=False, data_source="synthetic")
    out = tmp_path / "report"
    assert cli.main(["report", "--runs", str(runs), "--out", str(out), "--baseline", "random",
                     "--resamples", "200"]) == 0
    page = (out / "report.md").read_text()
    for heading in ("## Results with intervals", "## Differences to random", "## Figures", "## Published numbers",
                    "## Records behind each cell"):
        assert heading in page
    assert "Not shown: these records are on synthetic data" in page
    links = re.findall(r"\]\(([^)]+)\)", page)
    assert any(link.endswith(".png") for link in links)
    for link in links:
        assert (out / link).resolve().is_file(), link
    record_links = [link for link in links if link.endswith(".json")]
    assert len(record_links) == 6
    rows = {line.split("|")[2].strip(): line for line in page.split("## Records behind each cell")[1].splitlines()
            if line.startswith("| Data")}
    assert "no per-sample outputs" in rows["random"] and "no per-sample outputs" in rows["mgca"]  # its baseline has none
    mgca_cell = [line for line in page.split("## Results with intervals")[1].splitlines() if line.startswith("| mgca")]
    assert re.search(r"\[\d+\.\d, \d+\.\d\] \(3\)", mgca_cell[0])
