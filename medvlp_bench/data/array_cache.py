"""Memory-mapped arrays computed once and kept on disk under a content key (e.g. frozen feature maps).

``cached_array(root, key, shape, dtype, fill)`` returns the finished array ``root/key.npy`` (read-only memory map),
or creates it: a temporary ``.npy`` memory map is filled in place by ``fill(array)`` (which may write it batch by
batch, so arrays larger than memory work), flushed, and renamed into place; a killed fill leaves no finished file.
Concurrent processes fill an entry once: the fill runs under the entry's lock (:mod:`medvlp_bench.data.build_once`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from medvlp_bench.data.build_once import exclusive_lock, lock_path, temporary_path


def cached_array(
    root: Path, key: str, shape: tuple[int, ...], dtype, fill: Callable[[np.ndarray], None]
) -> np.ndarray:
    """The array stored under ``key`` in ``root``, computing it with ``fill`` on a miss (see module docstring)."""
    root = Path(root)
    path = root / f"{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    with exclusive_lock(lock_path(path)):
        if not path.is_file():
            temporary = temporary_path(path, ".npy")
            array = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
            try:
                fill(array)
                array.flush()
            except BaseException:
                del array
                temporary.unlink(missing_ok=True)
                raise
            del array
            os.replace(temporary, path)
    return np.load(path, mmap_mode="r")
