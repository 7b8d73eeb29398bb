"""``medvlp-bench sweep --executor slurm`` against a real single-node SLURM cluster (``.ci/start-slurm.sh``, which
``.ci/run`` starts before the tests): a tiny synthetic suite with one pretraining and the cells that depend on it.
Without a reachable cluster this test fails and says why; it is never skipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime

import pytest

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


def test_slurm_sweep_runs_pretraining_then_cells_and_writes_records(tmp_path):
    problem = _cluster_problem()
    if problem is not None:
        pytest.fail(f"no usable SLURM cluster: {problem}. Start the single-node test cluster with "
                    "`.ci/start-slurm.sh` (as root; .ci/run does it before the tests)", pytrace=False)
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
