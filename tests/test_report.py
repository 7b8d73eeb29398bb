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
    cells_section, records_section = page.split("## Records behind each cell")[1].split("## Per-record intervals")
    assert len(re.findall(r"\]\([^)]+\.json\)", cells_section)) == 6  # every record of both cells
    assert len(re.findall(r"\]\([^)]+\.json\)", records_section)) == 3  # the records with outputs
    rows = {line.split("|")[2].strip(): line for line in cells_section.splitlines() if line.startswith("| Data")}
    # mgca has outputs, but its baseline has none
    assert "no per-sample outputs" in rows["random"] and "no per-sample outputs" in rows["mgca"]
    mgca_cell = [line for line in page.split("## Results with intervals")[1].splitlines() if line.startswith("| mgca")]
    assert re.search(r"\[\d+\.\d, \d+\.\d\] \(3\)", mgca_cell[0])


def test_report_lists_each_record_with_outputs_with_its_bootstrap_and_delong_interval(tmp_path):
    runs = tmp_path / "runs"
    write_runs(runs, "mgca", 1.0, seeds=(0,))
    out = tmp_path / "report"
    assert cli.main(["report", "--runs", str(runs), "--out", str(out), "--resamples", "200"]) == 0
    section = (out / "report.md").read_text().split("## Per-record intervals")[1]
    row = next(line for line in section.splitlines() if line.startswith("| [mgca"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    value, bootstrap, delong = float(cells[2]), cells[3], cells[4]
    for interval in (bootstrap, delong):
        low, high = (float(number) for number in interval.strip("[]").split(","))
        assert low < value < high
    assert cells[5] == "100"
