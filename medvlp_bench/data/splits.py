"""Deterministic splits, training-set subsampling and split content hashes.

* :func:`partition` assigns ids to named parts by a seeded permutation (``numpy.random.default_rng(seed)``),
  so the same ids and seed give the same split on every machine.
* :func:`subsample_training` keeps ``round(pct * n)`` rows (at least one) of the training table: the first rows of
  a permutation drawn with :data:`SUBSAMPLE_SEED`, independent of the run seed. Smaller fractions are prefixes
  of larger ones (the 1 % subset lies inside the 10 % subset).
* :func:`split_hash` is the sha256 of the sorted sample ids of each split, recorded with every run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from medvlp_bench.data.build_once import exclusive_lock, lock_path, temporary_path
from medvlp_bench.specs import SplitTables

#: seed of the training-set subsampling permutation (``--pct``), fixed across runs and run seeds
SUBSAMPLE_SEED = 42


def partition(ids: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, list[str]]:
    """Split unique ``ids`` into parts of the given fractions (summing to 1) by a seeded permutation.

    The ids are sorted first so that input order does not matter; part sizes are ``floor(f * n)`` except the
    last part, which takes the remainder.
    """
    if abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {dict(fractions)}")
    ordered = np.array(sorted(set(ids)), dtype=object)
    permuted = ordered[np.random.default_rng(seed).permutation(len(ordered))]
    parts: dict[str, list[str]] = {}
    start = 0
    names = list(fractions)
    for index, name in enumerate(names):
        stop = len(permuted) if index == len(names) - 1 else start + int(fractions[name] * len(permuted))
        parts[name] = list(permuted[start:stop])
        start = stop
    return parts


def subsample_training(frame: pd.DataFrame, pct: float, seed: int = SUBSAMPLE_SEED) -> pd.DataFrame:
    """Keep a fraction ``pct`` in (0, 1] of the rows of a training table (see module docstring)."""
    if not 0.0 < pct <= 1.0:
        raise ValueError(f"pct must be in (0, 1], got {pct}")
    if pct == 1.0:
        return frame
    keep = max(1, int(round(pct * len(frame))))
    order = np.random.default_rng(seed).permutation(len(frame))[:keep]
    return frame.iloc[np.sort(order)].reset_index(drop=True)


def split_hash(splits: SplitTables) -> str:
    """sha256 over ``split-name:sorted sample ids`` of train, val and test."""
    digest = hashlib.sha256()
    for name, table in splits.items():
        digest.update(f"{name}:".encode())
        for sample_id in sorted(map(str, table["sample_id"])):
            digest.update(sample_id.encode() + b"\n")
    return digest.hexdigest()


def write_split_files(splits: SplitTables, folder) -> None:
    """Write ``{train,val,test}.csv`` (columns sample_id, source_file, source_row) into ``folder`` once.

    Each file is written under a temporary name and renamed, ``test.csv`` last, so an existing ``test.csv`` means
    the set is complete and a killed writer never leaves a truncated file; concurrent writers write the set once,
    under the folder's lock (:mod:`medvlp_bench.data.build_once`).
    """
    folder = Path(folder)
    if (folder / "test.csv").is_file():
        return
    with exclusive_lock(lock_path(folder)):
        if (folder / "test.csv").is_file():
            return
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in splits.items():
            temporary = temporary_path(folder / f"{name}.csv")
            table[["sample_id", "source_file", "source_row"]].to_csv(temporary, index=False)
            os.replace(temporary, folder / f"{name}.csv")
