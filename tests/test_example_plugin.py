"""The example third-party package, installed by the test as a user would: its image-only method pretrains through
``medvlp-bench run`` with its own checkpoint layout and synthetic profile, the record names the package and its
version, an unchanged rerun is skipped, and an upgraded package (new version, changed code) recomputes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

RUN = ["run", "--method", "example_rotation", "--task", "example_rsna_quick", "--synthetic-scale", "0.05"]


def _install(source: Path, site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr


def _medvlp(site: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "MEDVLP_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "medvlp_bench.cli", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_an_installed_pretraining_package_runs_and_an_upgrade_recomputes(tmp_path, repo_root):
    package = repo_root / "examples" / "medvlp-bench-example-plugin"
    home, out = tmp_path / "home", tmp_path / "results"
    _install(package, tmp_path / "site")
    first = _medvlp(tmp_path / "site", home, *RUN, "--out", str(out))
    assert "pretraining example_rotation (tiny_cnn, 1 epochs" in first.stderr
    assert "(layout example_rotation)" in first.stderr
    (path,) = out.glob("*.json")
    record = json.loads(path.read_text())
    example = {"distribution": "medvlp-bench-example-plugin", "version": "0.2.0"}
    assert record["plugins"]["method"] == {"name": "example_rotation", **example}
    assert record["plugins"]["task"] == {"name": "example_rsna_quick", **example}
    assert record["plugins"]["encoder"] == {"name": "tiny_cnn", **example}
    assert record["plugins"]["dataset"]["distribution"] == "medvlp-bench" and "text_encoder" not in record["plugins"]
    assert record["config"]["weights"]["pretrain"]["text_encoder"] is None
    assert "skipped" in _medvlp(tmp_path / "site", home, *RUN, "--out", str(out)).stdout

    upgraded = tmp_path / "upgraded"
    shutil.copytree(package, upgraded, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    pyproject = upgraded / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.2.0"', 'version = "0.2.1"'))
    training = upgraded / "medvlp_bench_example" / "training.py"
    training.write_text(training.read_text().replace("torch.randint(0, 4,", "torch.randint(0, 2,"))
    _install(upgraded, tmp_path / "site-upgraded")
    second = _medvlp(tmp_path / "site-upgraded", home, *RUN, "--out", str(out))
    assert "skipped" not in second.stdout and "pretraining example_rotation" in second.stderr
    records = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert sorted(record["plugins"]["method"]["version"] for record in records) == ["0.2.0", "0.2.1"]
