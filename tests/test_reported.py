"""Tests of the published reference numbers (every CSV of ``leaderboards/reported/``, today ``mgca_paper.csv``)."""

from __future__ import annotations

import io
from importlib import resources

import pandas as pd
import pytest

from medvlp_bench.errors import MedvlpError
from medvlp_bench.reported import REPORTED_COLUMNS, load_reported, read_reported_csv

TASK_METRICS = {
    "chexpert_cls": "auroc", "rsna_cls": "auroc", "covidx_cls": "accuracy", "siim_seg": "dice",
    "rsna_seg": "dice", "rsna_det": "map", "object_cxr_det": "map",
}


def test_ships_as_package_data():
    assert resources.files("medvlp_bench_reported").joinpath("mgca_paper.csv").is_file()


def test_covers_six_methods_seven_tasks_three_fractions():
    frame = load_reported()
    assert tuple(frame.columns) == REPORTED_COLUMNS
    assert set(frame["method"]) == {"random", "imagenet", "convirt", "gloria", "gloria_mimic", "mgca"}
    assert dict(frame.groupby("task")["metric"].first()) == TASK_METRICS
    assert sorted(frame["pct"].unique()) == [0.01, 0.1, 1.0]
    assert len(frame) == 6 * 7 * 3
    assert frame.set_index("method")["label"].to_dict()["gloria_mimic"] == "GLoRIA-MIMIC"


@pytest.mark.parametrize(
    "method, task, pct, value",
    [
        ("mgca", "chexpert_cls", 0.01, 87.6),
        ("mgca", "covidx_cls", 1.0, 90.5),
        ("random", "rsna_cls", 0.1, 69.4),
        ("gloria_mimic", "siim_seg", 0.1, 57.1),
        ("imagenet", "rsna_seg", 1.0, 64.0),
        ("convirt", "rsna_det", 0.01, 8.2),
        ("gloria", "object_cxr_det", 1.0, 15.6),
    ],
)
def test_values_in_percent(method, task, pct, value):
    frame = load_reported()
    line = frame[(frame["method"] == method) & (frame["task"] == task) & (frame["pct"] == pct)]
    assert line["value"].tolist() == [value]


def test_dashes_are_empty_values_with_a_note():
    frame = load_reported()
    empty = frame[frame["value"].isna()]
    assert set(empty["task"]) == {"object_cxr_det"} and set(empty["pct"]) == {0.01}
    assert empty["notes"].str.contains("below 1%").all()


def csv_text(frame: pd.DataFrame) -> io.StringIO:
    return io.StringIO(frame.to_csv(index=False))


def test_rejects_wrong_columns():
    frame = load_reported().drop(columns=["notes"])
    with pytest.raises(MedvlpError, match="columns must be"):
        read_reported_csv(csv_text(frame), name="bad.csv")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"value": 876.0}, "percentage"),
        ({"pct": 10.0}, "pct"),
        ({"label": ""}, "'label' has empty entries"),
        ({"metric": "dice"}, "more than one metric"),
    ],
)
def test_rejects_bad_values(change, message):
    frame = load_reported()
    for column, value in change.items():
        frame.loc[0, column] = value
    with pytest.raises(MedvlpError, match=message):
        read_reported_csv(csv_text(frame), name="bad.csv")


def test_rejects_duplicates():
    frame = load_reported()
    with pytest.raises(MedvlpError, match="more than once"):
        read_reported_csv(csv_text(pd.concat([frame, frame.head(1)])))


def test_every_csv_of_the_package_is_read_and_duplicates_across_files_are_refused(tmp_path, monkeypatch):
    from medvlp_bench import reported

    header = ",".join(reported.REPORTED_COLUMNS)
    (tmp_path / "a_paper.csv").write_text(f"{header}\nmgca,MGCA,rsna_cls,0.01,88.0,auroc,paper A,\n")
    (tmp_path / "b_paper.csv").write_text(f"{header}\ngloria,GLoRIA,chexpert5x200_zs,1.0,67.0,accuracy,paper B,\n")
    (tmp_path / "notes.txt").write_text("not a table")
    monkeypatch.setattr(reported.resources, "files", lambda package: tmp_path)
    frame = reported.load_reported()
    assert sorted(frame["source"]) == ["paper A", "paper B"] and len(frame) == 2
    (tmp_path / "c_paper.csv").write_text(f"{header}\nmgca,MGCA,rsna_cls,0.01,87.0,auroc,paper C,\n")
    with pytest.raises(MedvlpError, match="a_paper.csv, b_paper.csv, c_paper.csv together: a \\(method, task, pct\\)"):
        reported.load_reported()
