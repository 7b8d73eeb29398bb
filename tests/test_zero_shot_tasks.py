"""The zero-shot tasks' selections: CheXpert 5x200 (exactly one of five positive, deterministic, all when short)
and the test-only splits of the other tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medvlp_bench_plugins.datasets.zero_shot_tasks import (
    chexpert_five_by_two_hundred,
    chexpert_patient,
    medvlp_bench_tasks,
    mimic_subject,
)
from raw_layouts import CHEXPERT_HEADER, CHEXPERT_LABELS, CHEXPERT_OTHER, write_csv, write_raster


def write_single_positive_chexpert(folder, per_label: int = 6) -> dict:
    """train.csv with ``per_label`` single-positive frontal images per label plus decoys (a second positive, an
    uncertain other label, a lateral view); returns the Paths of the single positives per label."""
    rows, singles, index = [], {name: [] for name in CHEXPERT_LABELS}, 0

    def add(values, view="Frontal"):
        nonlocal index
        path = f"CheXpert-v1.0-small/train/patient{index:05d}/study1/view1_{view.lower()}.jpg"
        rows.append([path, "Male", "50", view, "PA", *values, *[""] * len(CHEXPERT_OTHER)])
        write_raster(folder / path.split("/", 1)[1], seed=index)
        index += 1
        return path

    for k, name in enumerate(CHEXPERT_LABELS):
        for j in range(per_label):
            values = ["0.0" if (j + other) % 2 else "" for other in range(5)]
            values[k] = "1.0"
            singles[name].append(add(values))
        two = ["1.0" if other in (k, (k + 1) % 5) else "" for other in range(5)]
        uncertain = ["-1.0" if other == (k + 2) % 5 else "" for other in range(5)]
        uncertain[k] = "1.0"
        lateral = [""] * 5
        lateral[k] = "1.0"
        add(two), add(uncertain), add(lateral, view="Lateral")
    write_csv(folder / "train.csv", CHEXPERT_HEADER, rows)
    write_csv(folder / "valid.csv", CHEXPERT_HEADER, rows[:1])
    return singles


def test_five_by_two_hundred_keeps_only_single_positive_frontal_images(tmp_path):
    singles = write_single_positive_chexpert(tmp_path, per_label=6)
    test = chexpert_five_by_two_hundred(tmp_path, per_label=4).test
    assert len(test) == 20
    one_hot = test[list(CHEXPERT_LABELS)].to_numpy()
    assert (one_hot.sum(axis=1) == 1).all() and (one_hot.argmax(axis=1) == test["label"]).all()
    for k, name in enumerate(CHEXPERT_LABELS):
        chosen = test.loc[test["label"] == k, "sample_id"]
        assert len(chosen) == 4 and set(chosen) <= set(singles[name])
    assert (test["patient_id"] == test["sample_id"].map(chexpert_patient)).all()
    assert test["patient_id"].str.fullmatch(r"patient\d{5}").all()


def test_five_by_two_hundred_is_deterministic_and_seeded(tmp_path):
    write_single_positive_chexpert(tmp_path, per_label=6)
    first = chexpert_five_by_two_hundred(tmp_path, per_label=3).test
    again = chexpert_five_by_two_hundred(tmp_path, per_label=3).test
    pd.testing.assert_frame_equal(first, again)
    others = [set(chexpert_five_by_two_hundred(tmp_path, per_label=3, seed=seed).test["sample_id"])
              for seed in range(1, 6)]
    assert any(other != set(first["sample_id"]) for other in others)


def test_five_by_two_hundred_takes_all_when_short_and_says_so(tmp_path, capsys):
    singles = write_single_positive_chexpert(tmp_path, per_label=3)
    splits = chexpert_five_by_two_hundred(tmp_path, per_label=200)
    assert set(splits.test["sample_id"]) == {path for paths in singles.values() for path in paths}
    assert splits.train.empty and splits.val.empty
    assert "fewer than 200" in capsys.readouterr().err


def test_every_task_names_its_selection_rule_and_prompts():
    tasks = {task.name: task for task in medvlp_bench_tasks()}
    assert set(tasks) == {"chexpert5x200_zs", "chexpert5x200_ret", "rsna_zs", "covidx_zs", "siim_zs",
                          "mimic_cxr_ret"}
    for task in tasks.values():
        assert task.split_rule
        if task.name != "mimic_cxr_ret":
            assert task.hparams["prompts"].startswith("medvlp_bench_plugins.datasets:prompts/")
    assert mimic_subject("/d/files/p10/p10000032/s50414267/abc.jpg") == "p10000032"


@pytest.mark.parametrize("name", ["rsna_zs", "covidx_zs", "siim_zs"])
def test_prompt_files_fit_their_tasks(name):
    from medvlp_bench_plugins.protocols.image_text_scores import load_prompts, resolve_prompts
    from medvlp_bench_plugins.protocols.zero_shot import ordered_prompts

    task = {task.name: task for task in medvlp_bench_tasks()}[name]
    path = resolve_prompts(task.hparams["prompts"])
    names, prompts = ordered_prompts(load_prompts(path), task, path)
    assert len(names) == max(2, len(task.label_names)) and all(len(p) >= 4 for p in prompts)
    assert np.all([names[-1] == task.label_names[0]] if task.target == "binary" else [names == list(task.label_names)])
