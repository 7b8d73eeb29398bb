"""Shared caches under concurrency: 8 processes asking for one entry at once build it exactly once, all read the
same finished entry, and nothing half-written or temporary is left behind."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medvlp_bench.data import array_cache, image_cache, splits, synthetic_store
from medvlp_bench.data.build_once import atomic_write_text, exclusive_lock, temporary_path
from medvlp_bench.protocols import feature_cache
from medvlp_bench.specs import DatasetSpec, SplitTables

WORKERS = 8


def _count_calls(monkeypatch, module, name, counter: Path, delay: float = 0.3):
    """Wrap ``module.name`` so that every call appends a line to ``counter`` (O_APPEND) and lasts ``delay`` s."""
    original = getattr(module, name)

    def counted(*args, **kwargs):
        with open(counter, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(delay)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def _in_parallel(function, arguments):
    """``function(argument)`` in WORKERS forked processes started together; their results in order."""
    context = multiprocessing.get_context("fork")
    with context.Pool(WORKERS) as pool:
        return pool.map(function, arguments)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).rglob("*") if ".tmp" in p.name)


def _fill_ones(array):
    array[:] = 1.0


def _cached_array(root):
    return np.asarray(array_cache.cached_array(Path(root), "entry", (4, 3), np.float32, _fill_ones)).tolist()


def test_array_entry_is_filled_once_by_concurrent_processes(tmp_path, monkeypatch):
    counter = tmp_path / "calls"
    _count_calls(monkeypatch, array_cache, "temporary_path", counter)
    results = _in_parallel(_cached_array, [tmp_path / "cache"] * WORKERS)
    assert len(counter.read_text().splitlines()) == 1
    assert all(result == [[1.0] * 3] * 4 for result in results)
    assert _leftovers(tmp_path / "cache") == []


def _table(folder: Path, count=6) -> pd.DataFrame:
    paths = []
    for index in range(count):
        path = folder / f"img{index}.png"
        Image.fromarray(np.full((30, 20), 20 * index, dtype=np.uint8)).save(path)
        paths.append(str(path))
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(count)], "image_path": paths,
                         "source_file": "labels.csv", "source_row": range(2, count + 2)})


def _prepare(args):
    table, root = args
    array, key = image_cache.prepare_images(table, 16, root, workers=1)
    return key, np.asarray(array).sum(), os.stat(Path(root) / f"{key}.u8").st_ino


def test_prepared_images_are_decoded_once_by_concurrent_processes(tmp_path, monkeypatch):
    counter = tmp_path / "calls"
    _count_calls(monkeypatch, image_cache, "_prepare", counter)
    table = _table(tmp_path)
    results = _in_parallel(_prepare, [(table, tmp_path / "cache")] * WORKERS)
    assert len(counter.read_text().splitlines()) == 1
    assert len(set(results)) == 1  # same key, same pixels, the same file (never replaced by a second build)
    assert _leftovers(tmp_path / "cache") == []


class _Mean(torch.nn.Module):
    """A stand-in encoder: the mean pixel as a 1-d global feature."""

    input_size, mean, std, global_dim = 16, (0.0,) * 3, (1.0,) * 3, 1

    def global_features(self, x):
        return x.mean(dim=(1, 2, 3)).unsqueeze(1)


def _features(root):
    images = np.arange(4 * 16 * 16, dtype=np.uint8).reshape(4, 16, 16)
    return feature_cache.cached_global_features(_Mean(), "enc", images, "img", Path(root), label="t").tolist()


def test_features_are_extracted_once_by_concurrent_processes(tmp_path, monkeypatch):
    counter = tmp_path / "calls"
    _count_calls(monkeypatch, feature_cache, "extract_global_features", counter)
    results = _in_parallel(_features, [tmp_path / "cache"] * WORKERS)
    assert len(counter.read_text().splitlines()) == 1
    assert all(result == results[0] for result in results) and len(results[0]) == 4
    assert _leftovers(tmp_path / "cache") == []


def _write_splits(folder):
    table = pd.DataFrame({"sample_id": ["a", "b"], "source_file": "x.csv", "source_row": [2, 3]})
    splits.write_split_files(SplitTables(table, table, table), Path(folder))
    return (Path(folder) / "test.csv").read_text(), os.stat(Path(folder) / "train.csv").st_ino


def test_split_files_are_written_once_by_concurrent_processes(tmp_path, monkeypatch):
    counter = tmp_path / "calls"
    _count_calls(monkeypatch, splits, "temporary_path", counter, delay=0.1)
    results = _in_parallel(_write_splits, [tmp_path / "splits"] * WORKERS)
    assert len(counter.read_text().splitlines()) == 3  # train, val, test: one temporary file each
    assert len(set(results)) == 1 and results[0][0].splitlines()[0] == "sample_id,source_file,source_row"
    assert _leftovers(tmp_path / "splits") == []


def _writer(counter):
    def write(folder, seed, scale):
        with open(counter, "a") as handle:
            handle.write("generated\n")
        time.sleep(0.3)
        folder.mkdir(parents=True)
        (folder / synthetic_store.MARKER).write_text(json.dumps({"seed": seed}))

    return write


def _generate(counter):
    spec = DatasetSpec(name="toy", title="Toy", citation="", url="", folder="toy", check=lambda f: [],
                       write_synthetic=_writer(counter))
    return str(synthetic_store.ensure_synthetic(spec, seed=1, scale=0.5))


def test_synthetic_dataset_is_generated_once_by_concurrent_processes(tmp_path, fresh_home):
    counter = tmp_path / "calls"
    results = _in_parallel(_generate, [counter] * WORKERS)
    assert counter.read_text().splitlines() == ["generated"]
    assert len(set(results)) == 1 and synthetic_store.is_generated(Path(results[0]))
    assert _leftovers(fresh_home) == []


def test_lock_excludes_and_atomic_write_leaves_old_or_new(tmp_path):
    target = tmp_path / "entry.txt"
    atomic_write_text(target, "old")
    with exclusive_lock(tmp_path / ".entry.lock"):
        temporary = temporary_path(target)
        assert temporary.parent == tmp_path and temporary.name.startswith(".entry.txt.") and not temporary.exists()
        atomic_write_text(target, "new")
    assert target.read_text() == "new" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".npy", ""])
def test_temporary_names_are_unique(tmp_path, suffix):
    names = {temporary_path(tmp_path / "x", suffix).name for _ in range(100)}
    assert len(names) == 100 and all(name.endswith(".tmp" + suffix) for name in names)
