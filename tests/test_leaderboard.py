"""Tests of leaderboards: numbers, best marking, data-source tables, reported rows and the three formats."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from medvlp_bench.errors import MedvlpError
from medvlp_bench.leaderboard import (
    SUMMARY_COLUMNS,
    build_leaderboard,
    leaderboard_frame,
    runs_frame,
    summarize_runs,
)
from medvlp_bench.records import RunRecord, config_key

VALUES = {  # (method, task, pct) -> primary metric per seed 0, 1, 2 (fractions)
    ("mgca", "rsna_cls", 0.01): [0.81, 0.84, 0.86],
    ("random", "rsna_cls", 0.01): [0.60, 0.55, 0.58],
    ("mgca", "rsna_cls", 1.0): [0.90, 0.91, 0.89],
    ("random", "rsna_cls", 1.0): [0.70, 0.74, 0.69],
}


def make_record(method, task, pct, seed, value, *, data_source="real", metric="auroc", higher_is_better=True,
                encoder="resnet50", finished_at="2024-05-01T12:00:30+00:00"):
    config = {"method": method, "task": task, "pct": pct, "seed": seed, "encoder": encoder,
              "data_source": data_source, "synthetic": {"seed": 0} if data_source == "synthetic" else None}
    return RunRecord(
        method=method, task=task, dataset=task.split("_")[0], data_source=data_source, pct=pct, seed=seed,
        protocol="linear_probe", metrics={metric: value}, primary_metric=metric,
        higher_is_better=higher_is_better, n_train=100, n_val=20, n_test=20, checkpoint=None,
        checkpoint_sha256=None, encoder={"arch": encoder}, config=config, config_key=config_key(config),
        split_hash="1" * 64,
        provenance={"package_version": "0.1.0", "git_sha": None, "torch_version": "2.4.0",
                    "python_version": "3.11.7", "device": "cpu", "hostname": "test",
                    "started_at": "2024-05-01T12:00:00+00:00", "finished_at": finished_at, "wall_seconds": 30.0},
    )


def grid_records(data_source="real"):
    return [
        make_record(method, task, pct, seed, value, data_source=data_source)
        for (method, task, pct), values in VALUES.items()
        for seed, value in enumerate(values)
    ]


def reported_frame():
    return pd.DataFrame({
        "method": ["mgca", "mgca", "gloria"],
        "label": ["MGCA", "MGCA", "GLoRIA"],
        "task": ["rsna_cls", "siim_seg", "rsna_cls"],
        "pct": [0.01, 0.01, 0.01],
        "value": [88.6, 49.7, 99.9],
        "metric": ["auroc", "dice", "auroc"],
        "source": "paper",
        "notes": "",
    })


def cell(frame, row, task, pct):
    return frame[(frame["row"] == row) & (frame["task"] == task) & (frame["pct"] == pct)].iloc[0]


def markdown_section(text, title):
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def markdown_cells(text, title):
    """The cells of the pipe table in section ``title``: index = row labels, columns = column labels."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in markdown_section(text, title).splitlines() if line.startswith("|")]
    return pd.DataFrame(rows[2:], columns=rows[0]).set_index("method")


def test_mean_std_n_over_seeds_match_numpy():
    summary = summarize_runs(runs_frame(grid_records()))
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    for (method, task, pct), values in VALUES.items():
        line = cell(summary, method, task, pct)
        percent = 100 * np.array(values)
        assert line["mean"] == pytest.approx(percent.mean())
        assert line["std"] == pytest.approx(percent.std(ddof=1))
        assert line["n"] == 3


def test_cells_format_mean_std_n_and_single_seed():
    records = grid_records() + [make_record("gloria", "rsna_cls", 0.01, 0, 0.7)]
    cells = markdown_cells(build_leaderboard(records, fmt="md"), "Data: real")
    values = 100 * np.array(VALUES[("mgca", "rsna_cls", 0.01)])
    assert cells.loc["mgca", "rsna_cls 1%"] == f"**{values.mean():.1f} ± {values.std(ddof=1):.1f} (3)**"
    assert cells.loc["gloria", "rsna_cls 1%"] == "70.0 (1)"
    assert cells.loc["gloria", "rsna_cls 100%"] == "–"


def test_best_is_marked_per_column_in_both_directions():
    records = grid_records() + [
        make_record("mgca", "toy_error", 0.1, seed, value, metric="error", higher_is_better=False)
        for seed, value in enumerate([0.30, 0.32])
    ] + [
        make_record("random", "toy_error", 0.1, seed, value, metric="error", higher_is_better=False)
        for seed, value in enumerate([0.10, 0.12])
    ]
    frame = leaderboard_frame(records)
    assert cell(frame, "mgca", "rsna_cls", 0.01)["best"] and not cell(frame, "random", "rsna_cls", 0.01)["best"]
    assert cell(frame, "random", "toy_error", 0.1)["best"] and not cell(frame, "mgca", "toy_error", 0.1)["best"]
    cells = markdown_cells(build_leaderboard(records, fmt="md"), "Data: real")
    assert cells.loc["random", "toy_error 10%"] == "**11.0 ± 1.4 (2)**"
    assert cells.loc["mgca", "toy_error 10%"] == "31.0 ± 1.4 (2)"
    assert cells.loc["mgca", "rsna_cls 100%"].startswith("**90.0 ± 1.0 (3)")


def test_ties_at_displayed_precision_are_all_best():
    records = [make_record("a", "rsna_cls", 1.0, 0, 0.87601), make_record("b", "rsna_cls", 1.0, 0, 0.87599)]
    frame = leaderboard_frame(records)
    assert frame["best"].all()


def test_tables_are_split_by_data_source():
    records = grid_records("real") + [make_record("convirt", "rsna_cls", 0.01, 0, 0.5, data_source="synthetic")]
    text = build_leaderboard(records, fmt="md")
    assert text.index("## Data: real") < text.index("## Data: synthetic")
    real, synthetic = markdown_section(text, "Data: real"), markdown_section(text, "Data: synthetic")
    assert "convirt" not in real and "mgca" in real
    assert "convirt" in synthetic and "mgca" not in synthetic
    assert "rsna_cls 100%" not in synthetic
    frame = leaderboard_frame(records)
    assert cell(frame, "convirt", "rsna_cls", 0.01)["best"]  # best of its own (synthetic) table


def test_configs_besides_the_seed_become_separate_rows():
    records = [make_record("mgca", "rsna_cls", 0.01, seed, 0.8 + 0.01 * seed) for seed in range(3)]
    records += [make_record("mgca", "rsna_cls", 0.01, seed, 0.7, encoder="vit_b16") for seed in range(2)]
    records += [make_record("mgca", "rsna_cls", 1.0, 0, 0.9)]
    frame = leaderboard_frame(records)
    assert sorted(frame["row"].unique()) == ["mgca (encoder=resnet50)", "mgca (encoder=vit_b16)"]
    assert cell(frame, "mgca (encoder=resnet50)", "rsna_cls", 0.01)["n"] == 3
    assert cell(frame, "mgca (encoder=vit_b16)", "rsna_cls", 0.01)["n"] == 2
    assert cell(frame, "mgca (encoder=resnet50)", "rsna_cls", 1.0)["n"] == 1


def test_nested_seeds_make_different_configs():
    records = [make_record("mgca", "rsna_cls", 0.01, seed, 0.8, data_source="synthetic") for seed in range(2)]
    other_data = RunRecord(**{**records[0].to_dict(), "config": {**records[0].config, "synthetic": {"seed": 1}},
                              "config_key": config_key({**records[0].config, "synthetic": {"seed": 1}})})
    frame = leaderboard_frame(records + [other_data])
    assert dict(zip(frame["row"], frame["n"])) == {"mgca (synthetic.seed=0)": 2, "mgca (synthetic.seed=1)": 1}


def test_digests_label_rows_only_when_nothing_readable_differs():
    def pretrained(record, epochs, key):
        config = {**record.config, "weights": {"pretrain_key": key, "pretrain": {"max_epochs": epochs}}}
        return RunRecord(**{**record.to_dict(), "config": config, "config_key": config_key(config)})

    base = make_record("mgca", "rsna_cls", 0.01, 0, 0.8)
    frame = leaderboard_frame([pretrained(base, 4, "a" * 64), pretrained(base, 12, "b" * 64)])
    assert sorted(frame["row"]) == ["mgca (weights.pretrain.max_epochs=12)", "mgca (weights.pretrain.max_epochs=4)"]
    frame = leaderboard_frame([pretrained(base, 4, "a" * 64), pretrained(base, 4, "b" * 64)])
    assert sorted(frame["row"]) == ["mgca (weights.pretrain_key=aaaaaaaaaaaa)", "mgca (weights.pretrain_key=bbbbbbbbbbbb)"]


def test_a_subtree_present_in_some_configs_only_labels_by_its_presence():
    base = make_record("mgca", "rsna_cls", 0.01, 0, 0.8)

    def with_weights(weights):
        config = {**base.config, "weights": weights}
        return RunRecord(**{**base.to_dict(), "config": config, "config_key": config_key(config)})

    pretrained = with_weights({"pretrain_key": "a" * 64, "pretrain": {"max_epochs": 4, "options": {"lr": 1e-3}}})
    given = with_weights({"checkpoint_sha256": "c" * 64})
    frame = leaderboard_frame([pretrained, given])
    assert sorted(frame["row"]) == ["mgca", "mgca (weights.pretrain)"]


def test_copies_of_one_run_count_once():
    first = make_record("mgca", "rsna_cls", 0.01, 0, 0.8, finished_at="2024-05-01T12:00:30+00:00")
    later = RunRecord(**{**first.to_dict(), "metrics": {"auroc": 0.9},
                         "provenance": {**first.provenance, "finished_at": "2024-05-02T12:00:30+00:00"}})
    line = cell(leaderboard_frame([later, first]), "mgca", "rsna_cls", 0.01)
    assert (line["n"], line["mean"]) == (1, pytest.approx(90.0))


def test_null_metrics_are_left_out_and_missing_cells_shown():
    records = [make_record("mgca", "rsna_cls", 0.01, 0, 0.8), make_record("mgca", "rsna_cls", 0.01, 1, None),
               make_record("random", "rsna_cls", 1.0, 0, 0.7)]
    assert cell(leaderboard_frame(records), "mgca", "rsna_cls", 0.01)["n"] == 1
    cells = markdown_cells(build_leaderboard(records, fmt="md"), "Data: real")
    assert cells.loc["mgca", "rsna_cls 100%"] == "–"
    assert cells.loc["random", "rsna_cls 1%"] == "–"


def test_disagreeing_primary_metrics_raise():
    records = [make_record("mgca", "rsna_cls", 0.01, 0, 0.8), make_record("random", "rsna_cls", 0.01, 0, 0.7,
                                                                          metric="accuracy")]
    with pytest.raises(MedvlpError, match="disagree"):
        leaderboard_frame(records)


def test_no_records_and_no_reported_raises():
    with pytest.raises(MedvlpError, match="no run records"):
        build_leaderboard([], None, "md")


def test_reported_rows_sit_under_the_real_table_only_and_are_never_best():
    records = grid_records("real") + grid_records("synthetic")
    frame = leaderboard_frame(records, reported_frame())
    reported = frame[frame["kind"] == "reported"]
    assert set(reported["table"]) == {"real"}
    assert set(reported["row"]) == {"MGCA (reported)", "GLoRIA (reported)"}
    assert set(zip(reported["task"], reported["pct"])) == {("rsna_cls", 0.01)}  # only the real table's columns
    assert not reported["best"].any()
    assert cell(frame[frame["table"] == "real"], "mgca", "rsna_cls", 0.01)["best"]  # 99.9 reported is ignored
    text = build_leaderboard(records, reported_frame(), "md")
    assert "(reported)" in markdown_section(text, "Data: real")
    assert "(reported)" not in markdown_section(text, "Data: synthetic")
    cells = markdown_cells(text, "Data: real")
    assert list(cells.index) == ["mgca", "random", "MGCA (reported)", "GLoRIA (reported)"]
    assert cells.loc["GLoRIA (reported)", "rsna_cls 1%"] == "99.9"
    assert cells.loc["MGCA (reported)", "rsna_cls 100%"] == "–"


def test_reported_get_their_own_table_without_real_records():
    text = build_leaderboard(grid_records("synthetic"), reported_frame(), "md")
    assert "(reported)" not in markdown_section(text, "Data: synthetic")
    published = markdown_section(text, "Reported (published)")
    assert "MGCA (reported)" in published and "siim_seg 1%" in published
    assert "Primary metric per task: rsna_cls: AUROC; siim_seg: Dice." in published


def test_markdown_is_a_pipe_table_with_caption():
    text = build_leaderboard(grid_records(), fmt="md")
    lines = text.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("| method"))
    assert re.fullmatch(r"\|(-+\|)+", lines[header + 1])
    assert lines[header].split("|")[2].strip() == "rsna_cls 1%"
    assert lines[header].split("|")[3].strip() == "rsna_cls 100%"
    assert "Primary metric per task: rsna_cls: AUROC." in text
    assert lines[0].startswith("<!-- medvlp-bench")


def test_columns_follow_metric_then_task_name_then_pct():
    metrics = {"object_cxr_det": "map", "aaa_custom": "auroc", "chexpert_cls": "auroc", "zzz_cls": "accuracy"}
    records = [make_record("mgca", task, pct, 0, 0.5, metric=metric) for task, metric in metrics.items()
               for pct in (1.0, 0.01)]
    header = next(line for line in build_leaderboard(records).splitlines() if line.startswith("| method"))
    names = [name.strip() for name in header.strip("|").split("|")][1:]
    assert names == ["zzz_cls 1%", "zzz_cls 100%", "aaa_custom 1%", "aaa_custom 100%", "chexpert_cls 1%",
                     "chexpert_cls 100%", "object_cxr_det 1%", "object_cxr_det 100%"]


def test_csv_parses_back_with_pandas():
    records = grid_records()
    parsed = pd.read_csv(io.StringIO(build_leaderboard(records, reported_frame(), "csv")))
    assert list(parsed.columns) == list(SUMMARY_COLUMNS)
    line = cell(parsed, "random", "rsna_cls", 1.0)
    assert line["mean"] == pytest.approx(100 * np.mean(VALUES[("random", "rsna_cls", 1.0)]))
    assert line["std"] == pytest.approx(100 * np.std(VALUES[("random", "rsna_cls", 1.0)], ddof=1))
    assert set(parsed["kind"]) == {"run", "reported"}


def test_unknown_format_raises():
    with pytest.raises(MedvlpError, match="unknown leaderboard format"):
        build_leaderboard(grid_records(), fmt="html")


def latex_document(records, reported=None):
    tables = build_leaderboard(records, reported, "latex")
    return "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + tables + "\\end{document}\n"


def test_latex_has_balanced_table_environments():
    records = grid_records("real") + grid_records("synthetic")
    text = build_leaderboard(records, reported_frame(), "latex")
    assert text.startswith("% ") and "\\usepackage{booktabs}" in text.splitlines()[0]
    for environment in ("table", "tabular"):
        assert text.count(f"\\begin{{{environment}}}") == text.count(f"\\end{{{environment}}}") == 2
    assert "\\toprule" in text and "\\bottomrule" in text
    assert "rsna\\_cls 1\\%" in text and "\\textbf{" in text and "$\\pm$" in text
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", text):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack.pop() == name
    assert not stack


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(tmp_path):
    source = tmp_path / "leaderboard.tex"
    source.write_text(latex_document(grid_records("real") + grid_records("synthetic"), reported_frame()))
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
