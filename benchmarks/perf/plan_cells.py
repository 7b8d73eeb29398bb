"""Benchmark: planning many cells (the skip decision and a sweep's planner) against executing one.

Plans every (method, task, pct, seed) cell of a grid on the synthetic default three ways and prints wall seconds
per cell and ratios measured in this one run:

* ``cold``: the first plan of each cell in a fresh process state (task tables read, split hashes computed, the
  pretraining config resolved from the corpus tables);
* ``warm``: the same cells planned again (tables, split hashes and record keys memoised in the process);
* ``execute``: one cell executed (``random`` on the first task, the protocol's defaults), for scale.

Usage: ``python benchmarks/perf/plan_cells.py [--scale 0.1] [--seeds 5]``. Uses a throw-away MEDVLP_HOME unless
``--home`` is given (the synthetic data is generated there on first use, before timing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="synthetic scale")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--home", type=Path, default=None, help="harness home (default: a temporary folder)")
    args = parser.parse_args()
    os.environ["MEDVLP_HOME"] = str(args.home or tempfile.mkdtemp(prefix="medvlp-bench-plan-"))

    from medvlp_bench import runner
    from medvlp_bench.pretraining import service
    from medvlp_bench.registry import load_registry

    registry = load_registry()
    out = Path(tempfile.mkdtemp(prefix="medvlp-bench-plan-records-"))
    tasks = [name for name in registry.names("task") if name.endswith("_cls")]
    cells = [
        runner.RunRequest(method=method, task=task, pct=pct, seed=seed, out_dir=out, synthetic=True,
                          synthetic_scale=args.scale)
        for method in ("random", "mgca") for task in tasks for pct in (0.01, 0.1, 1.0) for seed in range(args.seeds)
    ]
    for request in cells:  # materialise the synthetic data before timing
        runner.plan_run(registry, request)
    runner._SPLITS.clear(), runner._SUBSAMPLED.clear(), service._CORPORA.clear()

    start = time.perf_counter()
    for request in cells:
        runner.plan_run(registry, request)
    cold = (time.perf_counter() - start) / len(cells)
    start = time.perf_counter()
    for request in cells:
        runner.plan_run(registry, request)
    warm = (time.perf_counter() - start) / len(cells)
    start = time.perf_counter()
    runner.execute_plan(registry, runner.plan_run(registry, cells[0]))
    execute = time.perf_counter() - start

    print(f"{len(cells)} cells ({len(tasks)} tasks x 3 pct x {args.seeds} seeds x 2 methods), scale {args.scale}")
    print(f"cold plan   {1000 * cold:8.1f} ms per cell")
    print(f"warm plan   {1000 * warm:8.1f} ms per cell   (cold / warm = {cold / warm:.1f}x)")
    print(f"execute     {1000 * execute:8.1f} ms for one cell (execute / warm plan = {execute / warm:.0f}x)")


if __name__ == "__main__":
    main()
