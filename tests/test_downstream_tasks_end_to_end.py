"""The four detection and segmentation tasks through ``medvlp-bench run`` on tiny synthetic data: every task with
``random``, and every pretraining method with a checkpoint in its authors' release layout."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from medvlp_bench.cli import main

TINY = ["--synthetic-scale", "0.1", "--option", "max_epochs=1"]
PRIMARY = {"rsna_det": "map", "object_cxr_det": "map", "siim_seg": "dice", "rsna_seg": "dice"}
#: each method's release layout (key prefix of the image encoder's torchvision weights) and a task to run it on
RELEASES = {
    "mgca": ("img_encoder_q.model.", "rsna_det"),
    "convirt": ("img_encoder.model.", "siim_seg"),
    "gloria": ("gloria.img_encoder.model.", "object_cxr_det"),
}


def run_record(out, *arguments) -> dict:
    assert main(["run", "--pct", "1.0", "--out", str(out), *TINY, *arguments]) == 0
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("task", sorted(PRIMARY))
def test_random_runs_each_task_and_records_its_metrics(task, tmp_path):
    record = run_record(tmp_path, "--method", "random", "--task", task)
    metric = PRIMARY[task]
    assert record["task"] == task and record["primary_metric"] == metric
    assert 0.0 <= record["metrics"][metric] <= 1.0
    reference = {"map": "map_reference", "dice": "dice_reference_batched"}[metric]
    assert reference in record["metrics"] and record["details"]["epochs_trained"] <= 1
    assert record["n_train"] > 0 and record["n_test"] > 0


@pytest.mark.parametrize("method", sorted(RELEASES))
def test_each_pretraining_method_runs_from_its_release_layout(method, tmp_path, capsys):
    prefix, task = RELEASES[method]
    torch.manual_seed(0)
    weights = torchvision.models.resnet18().state_dict()
    checkpoint = tmp_path / f"{method}.ckpt"
    torch.save({"state_dict": {prefix + key: value for key, value in weights.items()}}, checkpoint)
    record = run_record(tmp_path / "out", "--method", method, "--task", task, "--checkpoint", str(checkpoint))
    assert record["method"] == method and record["task"] == task
    report = record["encoder"]["weights_report"]
    assert report["matched"] == len(weights) - 2 and report["missing"] == 0  # all but fc.weight, fc.bias
    assert f"{prefix!r}" in capsys.readouterr().err
