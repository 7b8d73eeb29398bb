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
    registry.add("method", spec, Origin("thirdparty", "0.1", "ep2"))
    registry.add("method", MethodSpec(name="Bad Name", description="", load_image_encoder=lambda c: None), origin)
    registry.add("method", "not a spec", origin)
    assert registry.names("method") == ["ok_name"]
    assert len(registry.problems) == 3
    assert "duplicate method name 'ok_name'" in registry.problems[0] and "thirdparty 0.1" in registry.problems[0]
    assert "invalid method name" in registry.problems[1]
    assert "expected MethodSpec" in registry.problems[2]


def test_two_third_party_distributions_with_one_name_are_both_refused_naming_both():
    registry = Registry()
    spec = MethodSpec(name="shared", description="", load_image_encoder=lambda c: None)
    registry.add("method", MethodSpec(name="random", description="", load_image_encoder=lambda c: None),
                 Origin("built-in", "1", "random"))
    for distribution in ("alpha-plugins", "beta-plugins", "gamma-plugins"):
        registry.add("method", spec, Origin(distribution, "1.0", "ep"))
    registry.add("method", MethodSpec(name="random", description="", load_image_encoder=lambda c: None),
                 Origin("alpha-plugins", "1.0", "ep"))
    assert registry.names("method") == ["random"]
    assert registry.entries["method"]["random"].origin.distribution == "built-in"
    first, third, impostor = registry.problems
    assert "registered by two distributions, alpha-plugins 1.0" in first and "beta-plugins 1.0" in first
    assert "both refused" in first
    assert third.startswith("gamma-plugins 1.0") and "also registered by alpha-plugins 1.0" in third
    assert "duplicate method name 'random'" in impostor and "ignored" in impostor


def test_a_task_with_an_unknown_protocol_dataset_or_target_is_refused_at_load_time():
    from medvlp_bench.specs import DatasetSpec, ProtocolSpec, TaskSpec

    registry = Registry()
    origin = Origin("my-tasks", "0.3", "tasks")
    registry.add("dataset", DatasetSpec("pairs", "", "", "", "pairs", check=lambda folder: []), origin)
    registry.add("protocol", ProtocolSpec("probe", "", run=lambda inputs: None, targets=("binary", "multilabel")),
                 origin)
    registry.add("protocol", ProtocolSpec("anything", "", run=lambda inputs: None), origin)

    def task(name, dataset="pairs", protocol="probe", target="binary"):
        return TaskSpec(name=name, dataset=dataset, protocol=protocol, description="", load_splits=lambda f: None,
                        label_names=("a",), target=target, primary_metric="auroc")

    for spec in (task("good"), task("free", protocol="anything", target="mask"), task("no_protocol", protocol="prob"),
                 task("no_dataset", dataset="pair"), task("wrong_target", target="boxes")):
        registry.add("task", spec, origin)
    registry.check_tasks()
    assert registry.names("task") == ["free", "good"]
    problems = "\n".join(registry.problems)
    assert "my-tasks 0.3 (entry point 'tasks'): task 'no_protocol' refused: its protocol 'prob' is not" in problems
    assert "task 'no_dataset' refused: its dataset 'pair' is not registered" in problems
    assert "task 'wrong_target' refused: its target 'boxes' is not one its protocol 'probe' accepts" in problems


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
    assert rows[("encoder", "tiny_cnn")]["origin"] == "medvlp-bench-example-plugin 0.2.0"
    assert rows[("task", "example_rsna_quick")]["origin"] == "medvlp-bench-example-plugin 0.2.0"
    assert rows[("method", "example_method")]["entry_point"] == "example"
    assert listing["problems"] == []
