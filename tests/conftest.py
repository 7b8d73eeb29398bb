"""Shared test set-up: every test session gets its own harness home and an empty torch cache (no downloads)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="medvlp-test-home-"))
os.environ["MEDVLP_HOME"] = str(_SESSION_HOME / "home")
os.environ["TORCH_HOME"] = str(_SESSION_HOME / "torch")
os.environ.pop("MEDVLP_DATA_ROOT", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    """A harness home of the test's own (for tests that must start with empty caches)."""
    home = tmp_path / "medvlp-home"
    monkeypatch.setenv("MEDVLP_HOME", str(home))
    return home
