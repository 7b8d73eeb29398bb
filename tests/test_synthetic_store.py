"""The synthetic store: generated once, atomically, and only a finished folder counts."""

from __future__ import annotations

import json

import pytest

from medvlp_bench.data.synthetic_store import MARKER, ensure_synthetic, is_generated
from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import DatasetSpec


def _spec(writer):
    return DatasetSpec(name="toy", title="Toy", citation="", url="", folder="toy", check=lambda f: [],
                       write_synthetic=writer)


def test_generates_once_and_reuses(fresh_home):
    calls = []

    def writer(folder, seed, scale):
        calls.append((seed, scale))
        folder.mkdir(parents=True)
        (folder / "data.txt").write_text("x")
        (folder / MARKER).write_text(json.dumps({"seed": seed}))

    first = ensure_synthetic(_spec(writer), seed=3, scale=0.5)
    second = ensure_synthetic(_spec(writer), seed=3, scale=0.5)
    assert first == second and calls == [(3, 0.5)]
    assert is_generated(first) and (first / "data.txt").read_text() == "x"
    assert str(fresh_home) in str(first) and "seed3-scale0.5" in str(first)


def test_a_failed_writer_leaves_nothing_that_looks_finished(fresh_home):
    def broken(folder, seed, scale):
        folder.mkdir(parents=True)
        (folder / "half.txt").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        ensure_synthetic(_spec(broken))
    folder = fresh_home / "synthetic"
    assert not any(is_generated(p) for p in folder.rglob("*") if p.is_dir())


def test_a_writer_without_its_marker_is_an_error(fresh_home):
    def forgetful(folder, seed, scale):
        folder.mkdir(parents=True)

    with pytest.raises(MedvlpError, match="marker"):
        ensure_synthetic(_spec(forgetful))


def test_dataset_without_twin_says_to_use_real_data():
    with pytest.raises(MedvlpError, match="--data-root"):
        ensure_synthetic(_spec(None))
