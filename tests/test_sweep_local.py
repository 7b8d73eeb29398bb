"""``medvlp-bench sweep`` with the local executor, end to end at a tiny synthetic scale: cells run in their own
processes, a failing cell is contained and reported, a rerun (also after kill -9 of the sweep) runs only what is
missing, and every cell ends with exactly one record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from medvlp_bench.records import load_records

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
