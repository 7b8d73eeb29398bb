"""Plugin discovery: built-ins through the entry-point group, broken and duplicate third-party plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medvlp_bench.errors import UnknownNameError
from medvlp_bench.registry import Origin, Registry, load_registry
from medvlp_bench.specs import MethodSpec


def _fake_distribution(site: Path, name: str, module_source: str, entry_points: dict[str, str]) -> None:
    """Write an installed distribution (dist-info with entry points + its module) into ``site``."""
    module = name.replace("-", "_")
    (site / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{module}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{ep} = {target}" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[medvlp_bench]\n{lines}\n")


def _plugins_json(site: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "medvlp_bench.cli", "plugins", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_builtins_register_through_the_entry_point_group():
    registry = load_registry()
    assert {"random", "imagenet"} <= set(registry.names("method"))
    assert {"resnet18", "resnet50"} <= set(registry.names("encoder"))
    assert "linear_probe" in registry.names("protocol")
    assert registry.entries["method"]["random"].origin.distribution == "built-in"
    assert registry.entries["protocol"]["linear_probe"].origin.distribution == "core"


def test_core_never_imports_a_plugin_by_name(repo_root):
    for source in (repo_root / "medvlp_bench").rglob("*.py"):
        assert "medvlp_bench_plugins" not in source.read_text(), source


def test_unknown_name_suggests_close_matches():
    registry = load_registry()
    with pytest.raises(UnknownNameError) as caught:
        registry.get("method", "randon")
    message = str(caught.value)
    assert "Did you mean 'random'" in message and "imagenet" in message


def test_invalid_and_duplicate_names_become_problems():
    registry = Registry()
    origin = Origin("thirdparty", "0.1", "ep")
    spec = MethodSpec(name="ok_name", description="", load_image_encoder=lambda c: None)
    registry.add("method", spec, origin)
    registry.add("method", spec, Origin("other", "2.0", "ep2"))
    registry.add("method", MethodSpec(name="Bad Name", description="", load_image_encoder=lambda c: None), origin)
    registry.add("method", "not a spec", origin)
    assert registry.names("method") == ["ok_name"]
    assert len(registry.problems) == 3
    assert "duplicate method name 'ok_name'" in registry.problems[0] and "thirdparty 0.1" in registry.problems[0]
    assert "invalid method name" in registry.problems[1]
    assert "expected MethodSpec" in registry.problems[2]


def test_broken_plugins_are_reported_and_everything_else_works(tmp_path):
    _fake_distribution(tmp_path, "broken-plugin", "raise RuntimeError('boom at import')\n", {"broken": "broken_plugin"})
    _fake_distribution(
        tmp_path,
        "dup-plugin",
        """
        from medvlp_bench.api import MethodSpec, hookimpl

        @hookimpl
        def medvlp_bench_methods():
            return [MethodSpec(name="random", description="impostor", load_image_encoder=lambda c: None),
                    MethodSpec(name="fresh_method", description="new", load_image_encoder=lambda c: None)]
        """,
        {"dup": "dup_plugin"},
    )
    listing = _plugins_json(tmp_path)
    problems = "\n".join(listing["problems"])
    assert "broken-plugin 1.2.3 (entry point 'broken'" in problems and "boom at import" in problems
    assert "dup-plugin 1.2.3 (entry point 'dup')" in problems and "duplicate method name 'random'" in problems
    methods = {row["name"]: row for row in listing["plugins"] if row["kind"] == "method"}
    assert methods["random"]["origin"] == "built-in"
    assert methods["fresh_method"]["origin"] == "dup-plugin 1.2.3"


def test_example_third_party_package_installs_and_registers(tmp_path, repo_root):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(repo_root / "examples" / "medvlp-bench-example-plugin")],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    listing = _plugins_json(site)
    rows = {(row["kind"], row["name"]): row for row in listing["plugins"]}
    assert rows[("encoder", "tiny_cnn")]["origin"] == "medvlp-bench-example-plugin 0.1.0"
    assert rows[("method", "example_method")]["entry_point"] == "example"
    assert listing["problems"] == []
