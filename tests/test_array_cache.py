"""Disk-backed arrays: computed once, reused, nothing finished left behind by a failed fill."""

from __future__ import annotations

import numpy as np
import pytest

from medvlp_bench.data.array_cache import cached_array


def test_fill_runs_once_and_result_is_reused(tmp_path):
    calls = []

    def fill(array):
        calls.append(1)
        array[:] = np.arange(12, dtype=np.float16).reshape(3, 4)

    first = cached_array(tmp_path, "k", (3, 4), np.float16, fill)
    second = cached_array(tmp_path, "k", (3, 4), np.float16, fill)
    assert len(calls) == 1 and np.array_equal(first, second) and second[2, 3] == 11


def test_failed_fill_leaves_no_file(tmp_path):
    def fill(array):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached_array(tmp_path, "k", (2,), np.float32, fill)
    assert [path.name for path in tmp_path.iterdir()] == [".k.npy.lock"]  # only the (released) lock file
