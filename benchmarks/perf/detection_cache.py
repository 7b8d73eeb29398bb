"""Benchmark: the detection protocol with and without the frozen feature-map cache.

Trains the YOLOv3 head for a fixed number of epochs (no early stopping) three ways and prints wall seconds and
ratios measured in this one run (images are prepared beforehand, so no timing includes decoding):

* ``no cache``: ``use_cache=False``: the frozen encoder (eval mode) runs on every training, validation and test
  batch, every epoch (what the reference code does, minus its BatchNorm drift);
* ``cold``: empty feature-map cache: one encoder pass per split writes the float16 maps, then head training;
* ``cached``: the rerun: maps read from the cache, no encoder forward.

Data: ``--task NAME`` runs a registered detection task (e.g. ``rsna_det``) on its synthetic dataset (generated
into the harness home on first use); without it, ``--images`` grey images (160 x 128 px) with one bright
rectangle each are drawn into a temporary folder and split 50 / 25 / 25.

Usage: ``python benchmarks/perf/detection_cache.py [--epochs 5] [--encoder resnet18] [--head-width 128] [--threads 1]``.
On a shared CPU, ``--threads 1`` avoids intra-op thread contention (here: 4-10x faster for these small tensors).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def drawn_splits(folder: Path, count: int, seed: int = 0):
    """``count`` 160 x 128 px images, each with one bright rectangle, as train / val / test detection tables."""
    import pandas as pd
    from PIL import Image

    from medvlp_bench.api import SplitTables

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(count):
        image = rng.integers(0, 60, size=(128, 160), dtype=np.uint8)
        w, h = int(rng.integers(16, 60)), int(rng.integers(16, 60))
        x, y = int(rng.integers(0, 160 - w)), int(rng.integers(0, 128 - h))
        image[y : y + h, x : x + w] = 220
        path = folder / f"{n:05d}.png"
        Image.fromarray(image).save(path)
        rows.append({"sample_id": path.stem, "image_path": str(path), "source_file": "drawn", "source_row": n,
                     "boxes": [[float(x), float(y), float(w), float(h)]]})
    table = pd.DataFrame(rows)
    train, val = count // 2, count // 4
    parts = (table[:train], table[train : train + val], table[train + val :])
    return SplitTables(*(part.reset_index(drop=True) for part in parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default=None, help="a registered detection task (default: drawn rectangles)")
    parser.add_argument("--pct", type=float, default=1.0, help="training fraction (with --task)")
    parser.add_argument("--images", type=int, default=96, help="drawn images (without --task)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--head-width", type=int, default=128, help="YOLOv3 tower width (reference: 512)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--home", type=Path, default=None, help="harness home (default: a temporary folder)")
    args = parser.parse_args()
    os.environ["MEDVLP_HOME"] = str(args.home or tempfile.mkdtemp(prefix="medvlp-bench-home-"))

    import torch

    from medvlp_bench.api import ProtocolInputs, SplitTables, TaskSpec, prepare_images
    from medvlp_bench.data.locations import harness_home
    from medvlp_bench.data.splits import subsample_training
    from medvlp_bench.data.synthetic_store import ensure_synthetic
    from medvlp_bench.protocols.feature_cache import encoder_fingerprint
    from medvlp_bench.registry import load_registry
    from medvlp_bench_plugins.protocols.detection import run

    if args.threads:
        torch.set_num_threads(args.threads)
    registry = load_registry()
    if args.task:
        task = registry.get("task", args.task)
        full = task.load_splits(ensure_synthetic(registry.get("dataset", task.dataset)))
        splits = SplitTables(subsample_training(full.train, args.pct), full.val, full.test)
    else:
        task = TaskSpec(name="drawn_det", dataset="drawn", protocol="detection", description="drawn rectangles",
                        load_splits=lambda folder: None, label_names=("rectangle",), target="boxes",
                        primary_metric="map")
        splits = drawn_splits(harness_home() / "drawn", args.images)
    encoder = registry.get("encoder", args.encoder).build()
    key = encoder_fingerprint(encoder)
    cache = harness_home() / "cache"
    for name, table in splits.items():
        prepare_images(table, encoder.input_size, cache / "images", label=name)
    fixed = {"max_epochs": args.epochs, "patience": args.epochs + 1, "head_width": args.head_width}

    def timed(**options) -> tuple[float, dict]:
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            result = run(ProtocolInputs(task, encoder, key, splits, 0, {**fixed, **options}, cache, Path(work)))
            return time.perf_counter() - start, dict(result.metrics)

    no_cache_seconds, no_cache_metrics = timed(use_cache=False)
    cold_seconds, cold_metrics = timed()
    cached_seconds, cached_metrics = timed()

    print(f"{task.name}, {args.encoder} ({encoder.input_size} px), head width {args.head_width}, {args.epochs} epochs, "
          f"n_train={len(splits.train)}, n_val={len(splits.val)}, n_test={len(splits.test)}")
    print(f"  no cache (encoder every batch): {no_cache_seconds:8.2f} s  {no_cache_metrics}")
    print(f"  cold (empty map cache):         {cold_seconds:8.2f} s  {cold_metrics}")
    print(f"  cached rerun:                   {cached_seconds:8.2f} s  {cached_metrics}")
    print(f"  same metrics cold vs cached:    {cold_metrics == cached_metrics}")
    print(f"  ratio no-cache / cached rerun:  {no_cache_seconds / cached_seconds:8.1f}x")
    print(f"  ratio no-cache / cold:          {no_cache_seconds / cold_seconds:8.1f}x")


if __name__ == "__main__":
    main()
