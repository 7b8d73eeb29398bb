"""A local sweep with N workers against 1 worker: wall time of ``medvlp-bench sweep SUITE`` from a fresh home.

Each run starts from an empty throw-away ``MEDVLP_HOME`` and sweep folder, offline (synthetic data generation,
pretraining and every cell included), and prints its wall time; the last line is the ratio (1 worker / N workers).
On the project's 2-core machines, use ``--workers 2`` (the default). It takes about twice the suite's own time.

Usage: ``python benchmarks/perf/sweep_workers.py [--suite benchmarks/suites/synthetic-quick.yaml] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def sweep_seconds(suite: Path, workers: int) -> float:
    """Wall seconds of one sweep of ``suite`` with ``workers`` from a fresh home (raises if the sweep fails)."""
    work = Path(tempfile.mkdtemp(prefix=f"medvlp-sweep-bench-{workers}-"))
    environment = {**os.environ, "MEDVLP_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    environment.pop("MEDVLP_DATA_ROOT", None)
    command = [sys.executable, "-m", "medvlp_bench.cli", "sweep", str(suite), "--workers", str(workers),
               "--out", str(work / "sweep")]
    try:
        start = time.perf_counter()
        subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=REPO / "benchmarks" / "suites" / "synthetic-quick.yaml")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    one = sweep_seconds(args.suite, 1)
    print(f"1 worker: {one:.0f} s (load average now {os.getloadavg()[0]:.1f})")
    many = sweep_seconds(args.suite, args.workers)
    print(f"{args.workers} workers: {many:.0f} s (load average now {os.getloadavg()[0]:.1f})")
    print(f"speed-up of {args.workers} workers over 1: {one / many:.2f}x")


if __name__ == "__main__":
    main()
