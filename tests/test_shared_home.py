"""Eight `medvlp-bench run` workers started together on one fresh MEDVLP_HOME and one results folder: the synthetic
data is generated once, each prepared-image cache is built once, every run leaves exactly one valid record, and no
temporary or half-written file remains."""

from __future__ import annotations

import os
import subprocess
import sys

from medvlp_bench.records import load_records

WORKERS = 8


def test_eight_concurrent_workers_share_one_fresh_home(tmp_path):
    home, results = tmp_path / "home", tmp_path / "results"
    environment = {**os.environ, "MEDVLP_HOME": str(home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "medvlp_bench.cli", "run", "--method", "random", "--task", "rsna_cls",
               "--pct", "1.0", "--out", str(results), "--data", "synthetic", "--synthetic-scale", "0.05",
               "--option", "max_epochs=1", "--seed"]
    workers = [subprocess.Popen([*command, str(seed)], env=environment, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
               for seed in range(WORKERS)]
    outputs = [worker.communicate(timeout=900) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-2000:]
    notices = sum(stderr.count("generating the synthetic rsna dataset") for _, stderr in outputs)
    assert notices == 1
    records = load_records(results)
    assert sorted(record.seed for record in records) == list(range(WORKERS))
    assert len({record.config_key for record in records}) == WORKERS
    assert len({record.split_hash for record in records}) == 1
    prepared = sorted(path.name for path in home.rglob("*.u8"))
    assert len(prepared) == 3, prepared  # train, val, test: shared by the eight runs
    assert len(list(home.rglob("*.u8"))) == len([p for p in home.rglob("*.json") if p.with_suffix(".u8").exists()])
    leftovers = [str(path) for folder in (home, results) for path in folder.rglob("*") if ".tmp" in path.name]
    assert leftovers == []
    assert len(list((home / "splits" / "rsna_cls").iterdir())) == 2  # one split folder and its lock file
