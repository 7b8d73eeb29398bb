"""Benchmark: the segmentation protocol with and without the frozen-map cache, for a fixed number of epochs.

Three kinds of run of the same task, encoder and seed (no early stopping); for each, the wall seconds and the
process CPU seconds (robust to other load on a shared machine when torch uses one thread), the minimum over
``--repeats`` runs for the first and last kind:

* ``no cache``: ``feature_cache=False``: the frozen encoder runs on every training, validation and test batch;
* ``cold``: cache on, empty cache: one encoder pass per split writes the maps, then training reads them;
* ``warm``: the rerun: maps read from the cache, no encoder forward at all.

Data: by default ``--images`` synthetic grey images with a bright ellipse and its mask (one in four without),
written as PNGs at 1.25 x 1 the encoder's input size and split 50/25/25; with ``--task siim_seg`` (or any
registered segmentation task) the synthetic twin of that dataset through the registry, training split
subsampled with ``--pct``.

Usage: ``python benchmarks/perf/segmentation_cache.py [--encoder resnet18] [--epochs 3] [--images 64]
[--decoder auto|unet|generic] [--task siim_seg --pct 0.05] [--threads N] [--repeats 2]``. Uses a throw-away
MEDVLP_HOME unless ``--home`` is given.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def blob_task(folder: Path, count: int, side: int):
    """A TaskSpec and its splits over ``count`` PNGs (height ``side``, width 1.25 x ``side``) with ellipse masks."""
    import pandas as pd
    from PIL import Image

    from medvlp_bench.specs import SplitTables, TaskSpec

    rng = np.random.default_rng(0)
    height, width = side, round(side * 1.25)
    yy, xx = np.mgrid[0:height, 0:width]
    rows = []
    for index in range(count):
        mask = np.zeros((height, width), dtype=bool)
        if index % 4:
            cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.25, 0.75) * width
            ry, rx = rng.uniform(0.08, 0.2, size=2) * side
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        image = (rng.integers(20, 90, size=(height, width)) + 140 * mask).astype(np.uint8)
        image_path, mask_path = folder / f"image{index}.png", folder / f"mask{index}.png"
        Image.fromarray(image).save(image_path)
        Image.fromarray(mask).save(mask_path)
        rows.append({"sample_id": str(index), "image_path": str(image_path), "source_file": "blobs.csv",
                     "source_row": index, "mask_path": str(mask_path)})
    table = pd.DataFrame(rows)
    train_end, val_end = count // 2, count * 3 // 4
    splits = SplitTables(*(part.reset_index(drop=True) for part in
                           (table.iloc[:train_end], table.iloc[train_end:val_end], table.iloc[val_end:])))
    task = TaskSpec(name="blob_seg", dataset="blobs", protocol="segmentation", description="synthetic blobs",
                    load_splits=lambda _: splits, label_names=("blob",), target="mask", primary_metric="dice",
                    load_mask=lambda row: np.asarray(Image.open(row["mask_path"])) > 0)
    return task, splits


def registry_task(name: str, pct: float):
    from medvlp_bench.data.splits import subsample_training
    from medvlp_bench.data.synthetic_store import ensure_synthetic
    from medvlp_bench.registry import load_registry
    from medvlp_bench.specs import SplitTables

    registry = load_registry()
    task = registry.get("task", name)
    full = task.load_splits(ensure_synthetic(registry.get("dataset", task.dataset)))
    return task, SplitTables(subsample_training(full.train, pct), full.val, full.test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--decoder", default="auto", choices=("auto", "unet", "generic"))
    parser.add_argument("--task", default=None, help="a registered segmentation task (default: synthetic blobs)")
    parser.add_argument("--pct", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--home", type=Path, default=None, help="harness home (default: a temporary folder)")
    args = parser.parse_args()
    os.environ["MEDVLP_HOME"] = str(args.home or tempfile.mkdtemp(prefix="medvlp-bench-home-"))

    import torch

    from medvlp_bench.data.locations import harness_home
    from medvlp_bench.protocols.feature_cache import encoder_fingerprint
    from medvlp_bench.registry import load_registry
    from medvlp_bench.specs import ProtocolInputs
    from medvlp_bench_plugins.protocols.segmentation import run

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder = load_registry().get("encoder", args.encoder).build()
    data_folder = Path(tempfile.mkdtemp(prefix="medvlp-seg-bench-"))
    if args.task:
        task, splits = registry_task(args.task, args.pct)
    else:
        task, splits = blob_task(data_folder, args.images, encoder.input_size)
    key = encoder_fingerprint(encoder)
    hparams = {"max_epochs": args.epochs, "patience": args.epochs + 1, "batch_size": args.batch_size,
               "decoder": args.decoder}
    cache = harness_home() / "cache"

    def timed(**extra):
        """(wall seconds, CPU seconds, result) of one run."""
        with tempfile.TemporaryDirectory() as work:
            wall, cpu = time.perf_counter(), time.process_time()
            result = run(ProtocolInputs(task, encoder, key, splits, 0, {**hparams, **extra}, cache, Path(work)))
            return time.perf_counter() - wall, time.process_time() - cpu, result

    timed(feature_cache=False, max_epochs=1)  # prepares images and masks, so no run below pays for it
    cold_wall, cold_cpu, cold = timed()
    no_cache_runs, warm_runs = [], []
    for _ in range(args.repeats):
        no_cache_runs.append(timed(feature_cache=False))
        warm_runs.append(timed())
    no_cache_wall, no_cache_cpu = min(r[0] for r in no_cache_runs), min(r[1] for r in no_cache_runs)
    warm_wall, warm_cpu = min(r[0] for r in warm_runs), min(r[1] for r in warm_runs)
    no_cache, warm = no_cache_runs[-1][2], warm_runs[-1][2]

    per_image = cold.details["feature_cache_bytes_per_image"]
    print(f"{task.name}, {args.encoder} at {encoder.input_size} px, path {cold.details['path']}, {args.epochs} epochs, "
          f"batch {args.batch_size}, n_train={cold.n_train}, n_val={cold.n_val}, n_test={cold.n_test}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  cached maps per image:          {per_image:,} bytes (float16)")
    print("                                   wall s     CPU s")
    print(f"  no cache:                       {no_cache_wall:8.2f}  {no_cache_cpu:8.2f}  "
          f"dice {no_cache.metrics['dice']:.4f}")
    print(f"  cache, cold (fills the cache):  {cold_wall:8.2f}  {cold_cpu:8.2f}  dice {cold.metrics['dice']:.4f}")
    print(f"  cache, warm rerun:              {warm_wall:8.2f}  {warm_cpu:8.2f}  dice {warm.metrics['dice']:.4f}")
    print(f"  same metrics cold vs warm:      {cold.metrics == warm.metrics}")
    print(f"  ratio no cache / warm:          {no_cache_wall / warm_wall:8.2f}x {no_cache_cpu / warm_cpu:8.2f}x")
    print(f"  ratio no cache / cold:          {no_cache_wall / cold_wall:8.2f}x {no_cache_cpu / cold_cpu:8.2f}x")


if __name__ == "__main__":
    main()
