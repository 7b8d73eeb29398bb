"""Planning the MGCA paper's grid (``benchmarks/suites/mgca-paper.yaml``, 315 cells) when every record is there.

A rerun of a finished sweep must find nothing to do within seconds. Set-up (not timed): a fake real-layout data root
(the synthetic writers' raw layouts at a tiny scale, under the dataset folder names a real data root uses), tiny
fake checkpoint files for the three VLP methods, a ResNet-50 state dict (random values) as the ImageNet file in a
throw-away torch cache, and one fake record per cell with the key its plan has. Timed, in a fresh process (as a
rerun of ``medvlp-bench sweep`` starts): importing the harness and loading the plugin registry, then reading the
suite and planning every cell (the runner's plan step per cell, the weights probe of the two baselines), then the
same planning again in that process. Goal: planning under 2 s.

Usage: ``python benchmarks/perf/sweep_planning.py [--scale 0.05]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "benchmarks" / "suites" / "mgca-paper.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05, help="size of the fake data root's datasets")
    parser.add_argument("--timed-in", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timed_in is not None:
        timed(args.timed_in)
        return
    work = Path(tempfile.mkdtemp(prefix="medvlp-plan-bench-"))
    os.environ["MEDVLP_HOME"] = str(work / "home")
    os.environ["TORCH_HOME"] = str(work / "torch")
    os.environ["MEDVLP_CHECKPOINTS"] = str(work / "checkpoints")

    import torch
    import torchvision

    from medvlp_bench.data.locations import synthetic_root
    from medvlp_bench.data.synthetic_store import ensure_synthetic
    from medvlp_bench.records import RunRecord, collect_provenance, write_record
    from medvlp_bench.registry import load_registry
    from medvlp_bench.sweeps.planning import plan_suite
    from medvlp_bench.sweeps.suite import load_suite

    registry = load_registry()
    for name in ("rsna", "chexpert", "covidx", "siim", "object_cxr"):
        ensure_synthetic(registry.get("dataset", name), 0, args.scale)
    os.environ["MEDVLP_DATA_ROOT"] = str(synthetic_root(0, args.scale))
    (work / "checkpoints").mkdir()
    for name in ("convirt_resnet50.ckpt", "gloria_resnet50.ckpt", "mgca_resnet_50.ckpt"):
        (work / "checkpoints" / name).write_bytes(name.encode() * 1000)
    url = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
    imagenet = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    imagenet.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet50().state_dict(), imagenet)

    out = work / "sweep"
    plan = plan_suite(registry, load_suite(SUITE), out)
    now = datetime.now(timezone.utc)
    provenance = collect_provenance(now, now, "cpu")
    for item in plan.cells:
        write_record(RunRecord(
            method=item.plan.method.name, task=item.plan.task.name, dataset=item.plan.dataset.name,
            data_source="real", pct=item.cell.pct, seed=item.cell.seed, protocol=item.plan.protocol.name,
            metrics={item.plan.task.primary_metric: 0.5}, primary_metric=item.plan.task.primary_metric,
            higher_is_better=True, n_train=1, n_val=1, n_test=1, checkpoint=None, checkpoint_sha256=None,
            encoder={"name": item.plan.encoder}, config=item.plan.config, config_key=item.plan.key,
            split_hash=item.plan.split_hash, provenance=provenance,
        ), item.request.out_dir)
    print(f"set-up: {len(plan.cells)} cells, {len(plan.cells)} fake records in {out / 'records'}")
    try:
        subprocess.run([sys.executable, __file__, "--timed-in", str(work)], check=True, env=os.environ.copy())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def timed(work: Path) -> None:
    """The timed part, in a fresh process (see the module docstring)."""
    start = time.perf_counter()
    from medvlp_bench.registry import load_registry
    from medvlp_bench.sweeps.planning import plan_suite
    from medvlp_bench.sweeps.suite import load_suite

    registry = load_registry()
    print(f"importing the harness and loading the plugin registry: {time.perf_counter() - start:.2f} s")
    for attempt in ("first", "second"):
        start = time.perf_counter()
        plan = plan_suite(registry, load_suite(SUITE), work / "sweep")
        seconds = time.perf_counter() - start
        assert len(plan.done) == len(plan.cells) == 315 and not plan.pretrain_jobs
        print(f"planning mgca-paper.yaml, every record present ({attempt} call in a fresh process): {seconds:.2f} s "
              f"(goal < 2 s): done {len(plan.done)}, to run {len(plan.to_run)}")


if __name__ == "__main__":
    main()
