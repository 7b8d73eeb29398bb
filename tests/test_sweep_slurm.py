"""``medvlp-bench sweep --executor slurm`` against a real single-node SLURM cluster (``.ci/start-slurm.sh``, which
``.ci/run`` starts before the tests): a tiny synthetic suite with one pretraining and the cells that depend on it,
and one whose pretraining runs as Lightning DDP in two SLURM tasks (CPU, gloo). Without a reachable cluster these
tests fail and say why; they are never skipped."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch

from medvlp_bench.cli import main
from medvlp_bench.records import load_records

SUITE = """\
name: slurm-test
data:
  synthetic: {seed: 0, scale: 0.05}
encoder: resnet18_64
methods:
  random: {}
  convirt: {pretrain: {epochs: 1}}
tasks: [rsna_cls]
fractions: [1.0]
seeds: [0, 1]
protocol_options:
  linear_probe: {max_epochs: 1}
resources:
  cells: {cpus: 1, time: 30}
  pretraining: {cpus: 2, time: 30}
"""


def _stamps(log) -> list[datetime]:
    """The times of the ``=== <ISO time> ...`` lines a job writes to its log (start, end)."""
    return [datetime.fromisoformat(line.split()[1]) for line in log.read_text().splitlines()
            if line.startswith("=== ")]


def _cluster_problem() -> str | None:
    """Why no SLURM cluster can take jobs here, or ``None`` when one can."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "the SLURM client commands (sinfo, sbatch) are not installed"
    result = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return f"sinfo failed: {result.stderr.strip() or result.stdout.strip()}"
    states = {state.strip("*~#!%$@^-") for state in result.stdout.split()}
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no SLURM node can take jobs (node states: {', '.join(sorted(states)) or 'none'})"
    return None


def _require_cluster() -> None:
    problem = _cluster_problem()
    if problem is not None:
        pytest.fail(f"no usable SLURM cluster: {problem}. Start the single-node test cluster with "
                    "`.ci/start-slurm.sh` (as root; .ci/run does it before the tests)", pytrace=False)


def test_slurm_sweep_runs_pretraining_then_cells_and_writes_records(tmp_path):
    _require_cluster()
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "medvlp_bench.cli", "sweep", str(suite), "--executor", "slurm", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "to run: 4" in result.stdout and "pretraining needed: 1" in result.stdout
    records = load_records(out / "records")
    assert sorted((r.method, r.seed) for r in records) == [("convirt", 0), ("convirt", 1), ("random", 0),
                                                           ("random", 1)]
    convirt = [r for r in records if r.method == "convirt"]
    assert all(r.config["weights"]["pretrain"]["max_epochs"] == 1 for r in convirt)
    pretrain_logs = list((out / "logs").glob("pretrain__convirt__*.log"))
    assert len(pretrain_logs) == 1 and "exit status 0" in pretrain_logs[0].read_text()
    pretraining_ended = _stamps(pretrain_logs[0])[-1]
    for seed in (0, 1):  # afterok: the cells that need the pretraining started after it ended
        assert _stamps(out / "logs" / f"convirt__rsna_cls__pct1__seed{seed}.log")[0] >= pretraining_ended
    assert list((out / "slurm").iterdir()), "submitit's files belong in the sweep folder"
    again = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert again.returncode == 0 and "done: 4   to run: 0" in again.stdout


DDP_SUITE = """\
name: slurm-ddp-test
data:
  synthetic: {seed: 0, scale: 0.12}
encoder: resnet18_64
methods:
  random: {}
  convirt: {pretrain: {epochs: 1}}
tasks: [rsna_cls]
fractions: [1.0]
seeds: [0]
protocol_options:
  linear_probe: {max_epochs: 1}
baseline: random
resources:
  cells: {cpus: 1, time: 30}
  pretraining: {nodes: 1, devices: 2, cpus: 1, time: 30}
"""


def test_slurm_sweep_runs_a_ddp_pretraining_in_two_tasks_then_its_cells(tmp_path, fresh_home):
    """The pretraining job has 2 SLURM tasks; each runs `pretrain --num-nodes 1 --devices 2 --strategy ddp` and
    Lightning takes the ranks from SLURM. World size 2 shows in the stored config (global batch = 2 x the batch
    per process) and in the optimiser steps of its one epoch (each process sees half the pairs; full batches
    only); the cells found that pretraining by key; the leaderboard has the baseline differences. A home of its
    own, so no other test has stored that pretraining."""
    _require_cluster()
    suite = tmp_path / "suite.yaml"
    suite.write_text(DDP_SUITE)
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "medvlp_bench.cli", "sweep", str(suite), "--executor", "slurm", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "on 1 node(s) x 2 process(es) (DDP)" in result.stdout and "to run: 2" in result.stdout
    [log] = [path for path in (out / "logs").glob("pretrain__convirt__*.log") if ".rank" not in path.name]
    rank1 = log.with_name(f"{log.stem}.rank1.log")
    assert "--num-nodes 1 --devices 2 --strategy ddp" in log.read_text() and "exit status 0" in log.read_text()
    assert "exit status 0" in rank1.read_text() and "pretraining convirt" not in rank1.read_text()  # rank 0 says it
    started = re.search(r"pretraining convirt \(.*, (\d+) pairs, 2 processes\) into (\S+)", log.read_text())
    pairs, store = int(started.group(1)), Path(started.group(2))
    config = json.loads((store / "config.json").read_text())
    assert config["global_batch_size"] == 2 * config["batch_size_per_device"]
    batch = config["batch_size_per_device"]
    assert math.ceil(pairs / 2) // batch != pairs // batch, "the corpus size must tell 1 process from 2"
    assert torch.load(store / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == math.ceil(
        pairs / 2) // batch
    records = load_records(out / "records")
    assert sorted(r.method for r in records) == ["convirt", "random"]
    [convirt] = [r for r in records if r.method == "convirt"]
    assert convirt.config["weights"]["pretrain_key"] == config["config_key"]
    expected = tmp_path / "expected.md"
    assert main(["leaderboard", "--runs", str(out / "records"), "--baseline", "random", "--output", str(expected)]) == 0
    assert (out / "leaderboard.md").read_text() == expected.read_text()
    assert "p=" in expected.read_text()
