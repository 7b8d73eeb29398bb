"""Tests of the figures: files written in both formats, read back with a size and non-blank content."""

from __future__ import annotations

import matplotlib.image

from medvlp_bench.plots import write_plots
from medvlp_bench.records import load_record_files
from stats_fixtures import write_runs


def test_curves_and_heat_map_are_written_and_not_blank(tmp_path):
    runs = tmp_path / "runs"
    for pct in (0.01, 0.1, 1.0):
        write_runs(runs, "mgca", 1.0 + pct, pct=pct, seeds=(0, 1))
        write_runs(runs, "random", 0.2, pct=pct, seeds=(0, 1), seed_offset=10, with_outputs=pct != 0.01)
    pairs = load_record_files(runs)
    written = write_plots([record for _, record in pairs], [path for path, _ in pairs], tmp_path / "figures",
                          baseline="random", n_resamples=200)
    assert sorted(path.name for path in written) == ["data_efficiency.png", "data_efficiency.svg",
                                                      "delta_heatmap.png", "delta_heatmap.svg"]
    for name, minimum_width in (("data_efficiency.png", 600), ("delta_heatmap.png", 600)):
        image = matplotlib.image.imread(tmp_path / "figures" / name)
        assert image.shape[1] >= minimum_width and image.shape[0] >= 300
        assert image[..., :3].std() > 0.05  # drawn, not a blank canvas
        assert (image[..., :3] < 0.5).mean() > 0.001  # has dark ink (text, lines)
    svg = (tmp_path / "figures" / "delta_heatmap.svg").read_text()
    assert "<svg" in svg and "random" in svg


def test_without_a_baseline_only_the_curves_are_written(tmp_path):
    write_runs(tmp_path / "runs", "mgca", 1.0, seeds=(0,))
    pairs = load_record_files(tmp_path / "runs")
    written = write_plots([record for _, record in pairs], [path for path, _ in pairs], tmp_path / "figures",
                          n_resamples=100)
    assert sorted(path.name for path in written) == ["data_efficiency.png", "data_efficiency.svg"]
