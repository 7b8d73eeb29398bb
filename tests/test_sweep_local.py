"""``medvlp-bench sweep`` with the local executor, end to end at a tiny synthetic scale: cells run in their own
processes, a failing cell is contained and reported, a rerun (also after kill -9 of the sweep) runs only what is
missing, and every cell ends with exactly one record; a pretraining with two processes runs as DDP under
Lightning's own launcher."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from medvlp_bench.records import load_records
from medvlp_bench.registry import load_registry
from medvlp_bench.sweeps.local_executor import LocalExecutor
from medvlp_bench.sweeps.planning import plan_suite
from medvlp_bench.sweeps.progress import Progress
from medvlp_bench.sweeps.suite import load_suite
from medvlp_bench.sweeps.sweep import build_jobs

SUITE = """\
name: local-test
data:
  synthetic: {{seed: 0, scale: 0.05}}
encoder: resnet18_64
methods:
  random: {{}}
{extra}tasks: [rsna_cls]
fractions: [1.0]
seeds: {seeds}
protocol_options:
  linear_probe: {{max_epochs: 1}}
baseline: random
"""


def _suite(tmp_path, seeds="[0, 1]", extra="") -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(seeds=seeds, extra=extra))
    return path


def _sweep(*arguments, **kwargs):
    command = [sys.executable, "-m", "medvlp_bench.cli", "sweep", *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900, **kwargs)


def test_sweep_runs_cells_contains_a_failure_and_resumes(tmp_path):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    suite = _suite(tmp_path, extra=f"  broken: {{method: convirt, checkpoint: {broken}}}\n")
    out = tmp_path / "sweep"
    first = _sweep(suite, "--workers", "2", "--out", out)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "done: 0   to run: 4" in first.stdout
    broken_log = out / "logs" / "broken__rsna_cls__pct1__seed0.log"
    assert f"FAILED broken__rsna_cls__pct1__seed0: exit status 1; log: {broken_log}" in first.stdout
    assert "checkpoint" in broken_log.read_text()
    records = load_records(out / "records")
    assert sorted((r.method, r.seed) for r in records) == [("random", 0), ("random", 1)]
    assert (out / "logs" / "random__rsna_cls__pct1__seed0.log").read_text().count("exit status 0") == 1
    assert "random" in (out / "leaderboard.md").read_text()
    assert "random" in (out / "report" / "report.md").read_text() and f"report: {out / 'report'}" in first.stdout
    assert "sweep: cells 4/4 finished (2 done, 2 failed)" in first.stderr
    assert set(json.loads((out / "failed.json").read_text())) == {"broken__rsna_cls__pct1__seed0",
                                                                  "broken__rsna_cls__pct1__seed1"}

    again = _sweep(suite, "--workers", "2", "--out", out)
    assert again.returncode == 1 and "done: 2   to run: 0   failed before, not retried: 2" in again.stdout
    assert "not retried broken__rsna_cls__pct1__seed0" in again.stdout
    assert len(load_records(out / "records")) == 2

    dry = _sweep(suite, "--dry-run", "--retry-failed", "--out", out)
    assert dry.returncode == 0 and "to run: broken__rsna_cls__pct1__seed1" in dry.stdout


def test_rerun_after_kill_9_of_the_sweep_finishes_only_the_rest(tmp_path):
    suite = _suite(tmp_path, seeds="[0, 1]")
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "medvlp_bench.cli", "sweep", str(suite), "--workers", "1", "--out", str(out)]
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not list((out / "records").glob("*.json")) and time.monotonic() < deadline and sweep.poll() is None:
        time.sleep(0.5)
    assert sweep.poll() is None, "the sweep ended before it could be killed"
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.wait()
    finished_before = len(list((out / "records").glob("*.json")))
    assert finished_before == 1

    rerun = _sweep(suite, "--workers", "1", "--out", out)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "done: 1   to run: 1" in rerun.stdout
    records = load_records(out / "records")
    assert sorted(r.seed for r in records) == [0, 1]  # every cell exactly once
    assert len({r.config_key for r in records}) == 2
    assert not [p for p in (out / "records").iterdir() if p.name.startswith(".")]
    nothing = _sweep(suite, "--out", out)
    assert nothing.returncode == 0 and "done: 2   to run: 0" in nothing.stdout


def test_a_two_process_pretraining_runs_under_lightnings_launcher_into_the_planned_key(tmp_path, fresh_home):
    """resources.pretraining {devices: 2} on this machine: the pretraining job (alone here; its cells are the
    other tests' business) runs `pretrain --devices 2 --strategy ddp` on two CPU slots, Lightning starts the second
    process, and the model lands under the key the cells planned, trained with world size 2 (global batch, and
    the optimiser steps of one epoch over half the pairs per process). A home of its own, so no other test has
    stored that pretraining."""
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(SUITE.format(seeds="[0]", extra="  convirt: {pretrain: {epochs: 1}}\n")
                          .replace("scale: 0.05", "scale: 0.12")
                          + "resources:\n  pretraining: {devices: 2}\n")
    plan = plan_suite(load_registry(), load_suite(suite_path), tmp_path / "sweep")
    [job] = [job for job in build_jobs(plan, set()) if job.kind == "pretrain"]
    assert job.processes == 2 and "--devices 2 --strategy ddp" in " ".join(job.command)
    with Progress(0, 1, 2, stream=io.StringIO()) as progress:
        [result] = LocalExecutor(2, gpus=[]).run([job], progress)
    log = job.log.read_text()
    assert result.ok, log[-3000:]
    pairs = int(re.search(r"(\d+) pairs, 2 processes\)", log).group(1))
    [pretraining] = plan.pretrain_jobs
    config = json.loads((pretraining.out_dir / "config.json").read_text())
    assert config["config_key"] == pretraining.key and (pretraining.out_dir / "model.ckpt").is_file()
    batch = config["batch_size_per_device"]
    assert config["global_batch_size"] == 2 * batch and math.ceil(pairs / 2) // batch != pairs // batch
    last = torch.load(pretraining.out_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == math.ceil(pairs / 2) // batch
    assert log.count("pretrained convirt:") == 1  # the second process prints nothing of its own
