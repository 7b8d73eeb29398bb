"""Deterministic partitions, nested training subsets, split hashes."""

from __future__ import annotations

import pandas as pd
import pytest

from medvlp_bench.data.splits import partition, split_hash, subsample_training
from medvlp_bench.specs import SplitTables


def test_partition_is_deterministic_order_free_and_disjoint():
    ids = [f"id{i}" for i in range(100)]
    parts = partition(ids, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    assert parts == partition(list(reversed(ids)), {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    assert [len(parts[p]) for p in ("train", "val", "test")] == [60, 20, 20]
    assert set().union(*map(set, parts.values())) == set(ids)
    assert parts != partition(ids, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)
    with pytest.raises(ValueError):
        partition(ids, {"train": 0.5}, seed=0)


def test_subsample_is_fixed_nested_and_at_least_one():
    frame = pd.DataFrame({"sample_id": [str(i) for i in range(1000)]})
    ten = subsample_training(frame, 0.1)
    one = subsample_training(frame, 0.01)
    assert len(ten) == 100 and len(one) == 10
    assert set(one.sample_id) <= set(ten.sample_id)
    assert ten.equals(subsample_training(frame, 0.1))
    assert len(subsample_training(frame.head(20), 0.01)) == 1
    assert subsample_training(frame, 1.0) is frame


def test_split_hash_depends_on_content_not_order():
    def tables(train):
        return SplitTables(pd.DataFrame({"sample_id": train}), pd.DataFrame({"sample_id": ["v"]}),
                           pd.DataFrame({"sample_id": ["t"]}))

    assert split_hash(tables(["a", "b"])) == split_hash(tables(["b", "a"]))
    assert split_hash(tables(["a", "b"])) != split_hash(tables(["a", "c"]))
    moved = SplitTables(pd.DataFrame({"sample_id": ["a", "b", "v"]}), pd.DataFrame({"sample_id": []}),
                        pd.DataFrame({"sample_id": ["t"]}))
    assert split_hash(moved) != split_hash(tables(["a", "b"]))
