"""Benchmark: the linear probe with and without the frozen-feature cache.

Runs ``rsna_cls`` on the synthetic default (random-init ``resnet18``, fixed number of epochs, no early stopping)
three ways, and prints wall seconds and ratios measured in this one run:

* ``no cache``: what a probe without a feature cache does (the reference code): the frozen encoder runs over the
  training and validation images every epoch; measured as ``epochs x`` one encoder pass over train + val (timed
  here, over the prepared images), plus the head training time of the cached run;
* ``cold``: first run with an empty feature cache (one encoder pass per split, then head training);
* ``cached``: the rerun, features read from the cache (no encoder forward passes).

Usage: ``python benchmarks/perf/linear_probe_cache.py [--pct 0.1] [--epochs 20]``. Uses a throw-away MEDVLP_HOME
unless ``--home`` is given (the synthetic data is generated there on first use).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pct", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--home", type=Path, default=None, help="harness home (default: a temporary folder)")
    args = parser.parse_args()
    os.environ["MEDVLP_HOME"] = str(args.home or tempfile.mkdtemp(prefix="medvlp-bench-home-"))

    from medvlp_bench.data.image_cache import prepare_images, prepared_side
    from medvlp_bench.data.locations import harness_home
    from medvlp_bench.data.splits import subsample_training
    from medvlp_bench.data.synthetic_store import ensure_synthetic
    from medvlp_bench.protocols.feature_cache import encoder_fingerprint, extract_global_features
    from medvlp_bench.protocols.linear_probe import run_linear_probe
    from medvlp_bench.registry import load_registry
    from medvlp_bench.specs import ProtocolInputs, SplitTables

    registry = load_registry()
    task = registry.get("task", "rsna_cls")
    folder = ensure_synthetic(registry.get("dataset", task.dataset))
    full = task.load_splits(folder)
    splits = SplitTables(subsample_training(full.train, args.pct), full.val, full.test)
    encoder = registry.get("encoder", args.encoder).build()
    key = encoder_fingerprint(encoder)
    side = prepared_side(encoder.input_size)
    prepared = {name: prepare_images(table, side, harness_home() / "cache" / "images")[0] for name, table in splits.items()}
    hparams = {"max_epochs": args.epochs, "patience": args.epochs + 1}

    def probe() -> tuple[float, dict]:
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            result = run_linear_probe(ProtocolInputs(task, encoder, key, splits, 0, hparams, harness_home() / "cache", Path(work)))
            return time.perf_counter() - start, dict(result.metrics)

    cold_seconds, cold_metrics = probe()
    cached_seconds, cached_metrics = probe()
    start = time.perf_counter()
    extract_global_features(encoder, prepared["train"], label="train")
    extract_global_features(encoder, prepared["val"], label="val")
    encoder_pass_seconds = time.perf_counter() - start
    test_pass_start = time.perf_counter()
    extract_global_features(encoder, prepared["test"], label="test")
    test_pass_seconds = time.perf_counter() - test_pass_start
    no_cache_seconds = args.epochs * encoder_pass_seconds + test_pass_seconds + cached_seconds

    print(f"rsna_cls, {args.encoder}, pct {args.pct}, {args.epochs} epochs, n_train={len(splits.train)}, "
          f"n_val={len(splits.val)}, n_test={len(splits.test)}")
    print(f"  encoder pass over train+val:   {encoder_pass_seconds:8.2f} s")
    print(f"  no cache (epochs x pass + head): {no_cache_seconds:8.2f} s")
    print(f"  cold (empty feature cache):    {cold_seconds:8.2f} s")
    print(f"  cached rerun:                  {cached_seconds:8.2f} s")
    print(f"  same metrics cold vs cached:   {cold_metrics == cached_metrics} ({cached_metrics})")
    print(f"  ratio no-cache / cached rerun: {no_cache_seconds / cached_seconds:8.1f}x")
    print(f"  ratio cold / cached rerun:     {cold_seconds / cached_seconds:8.1f}x")


if __name__ == "__main__":
    main()
