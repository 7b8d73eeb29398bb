"""Suite files: the grid they expand to, their validation (file, line and key in every error), the shipped suites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medvlp_bench.sweeps.suite import SuiteError, load_suite

MINIMAL = """\
name: mini
data:
  synthetic: {seed: 3, scale: 0.1}
encoder: resnet18_64
methods:
  random: {}
  mgca-2ep: {method: mgca, pretrain: {epochs: 2}}
tasks: [rsna_cls, siim_seg]
fractions: [0.1, 1.0]
seeds: [0, 1]
protocol_options:
  linear_probe: {max_epochs: 3}
baseline: random
"""


def _write(tmp_path, text, name="suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_suite_expands_to_the_full_grid(tmp_path):
    suite = load_suite(_write(tmp_path, MINIMAL))
    cells = suite.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    assert cells[0].id == "random__rsna_cls__pct0.1__seed0"
    assert {cell.entry.method for cell in cells} == {"random", "mgca"}
    mgca = suite.methods["mgca-2ep"]
    assert mgca.pretrain_epochs == 2 and mgca.checkpoint is None and mgca.where.line == 7
    assert suite.data.synthetic and suite.data.synthetic_seed == 3 and suite.data.synthetic_scale == 0.1
    assert suite.protocol_options == {"linear_probe": {"max_epochs": 3}} and suite.baseline == "random"
    with_options = MINIMAL.replace("{epochs: 2}}", "{epochs: 2}, options: {ita_temperature: 0.1}}")
    assert load_suite(_write(tmp_path, with_options)).methods["mgca-2ep"].options == {"ita_temperature": 0.1}


def test_grid_blocks_are_a_union_without_duplicates(tmp_path):
    text = MINIMAL.split("tasks:")[0] + """\
seeds: [0]
grid:
  - {methods: [random], tasks: [rsna_cls], fractions: [0.1, 1.0]}
  - {tasks: [rsna_cls, siim_seg], fractions: [1.0], seeds: [0, 1]}
"""
    ids = [cell.id for cell in load_suite(_write(tmp_path, text)).cells()]
    assert ids == ["random__rsna_cls__pct0.1__seed0", "random__rsna_cls__pct1__seed0",
                   "random__rsna_cls__pct1__seed1", "random__siim_seg__pct1__seed0", "random__siim_seg__pct1__seed1",
                   "mgca-2ep__rsna_cls__pct1__seed0", "mgca-2ep__rsna_cls__pct1__seed1",
                   "mgca-2ep__siim_seg__pct1__seed0", "mgca-2ep__siim_seg__pct1__seed1"]


@pytest.mark.parametrize("old, new, line, key, words", [
    ("fractions: [0.1, 1.0]", "fractions: [0.1, 10]", 9, "fractions[1]", "fraction in (0, 1]"),
    ("{epochs: 2}", "{epochs: 0}", 7, "methods.mgca-2ep.pretrain.epochs", "positive integer"),
    ("{epochs: 2}", "{epoch: 2}", 7, "methods.mgca-2ep.pretrain.epoch", "did you mean 'epochs'"),
    ("seeds: [0, 1]", "sedes: [0, 1]", 10, "sedes", "did you mean 'seeds'"),
    ("baseline: random", "baseline: imagenet", 13, "baseline", "not one of the suite's methods"),
    ("  random: {}", "  random: {checkpoint: a.ckpt, pretrain: {epochs: 1}}", 6, "methods.random.pretrain",
     "not both"),
    ("tasks: [rsna_cls, siim_seg]", "tasks: []", 8, "tasks", "non-empty list"),
    ("synthetic: {seed: 3, scale: 0.1}", "synthetic: {seed: 3, scale: 0.1}\n  root: /data", 3, "data",
     "excludes root"),
    ("encoder: resnet18_64\n", "encoder: resnet18_64\ncolour: blue\n", 5, "colour", "unknown key"),
    ("methods:\n", "methods:\n  random: {}\n", 7, "methods.random", "given twice"),
    ("fractions: [0.1, 1.0]", "fractions: [0.1, 1.0", 10, None, "not valid YAML"),
])
def test_errors_name_file_line_and_key(tmp_path, old, new, line, key, words):
    path = _write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert key is None or f": {key}: " in message, message
    assert words in message, message


def test_missing_methods_and_unset_variables_are_named(tmp_path, monkeypatch):
    with pytest.raises(SuiteError, match=r"suite.yaml:1: methods: missing"):
        load_suite(_write(tmp_path, "tasks: [rsna_cls]\n"))
    monkeypatch.delenv("NO_SUCH_ROOT_VARIABLE", raising=False)
    text = MINIMAL.replace("  synthetic: {seed: 3, scale: 0.1}", "  root: $NO_SUCH_ROOT_VARIABLE/cxr")
    with pytest.raises(SuiteError, match=r"suite.yaml:3: data.root: environment variable NO_SUCH_ROOT_VARIABLE"):
        load_suite(_write(tmp_path, text))
    monkeypatch.setenv("NO_SUCH_ROOT_VARIABLE", "/data")
    assert load_suite(_write(tmp_path, text)).data.root == Path("/data/cxr")
    with pytest.raises(SuiteError, match="cannot read the suite file"):
        load_suite(tmp_path / "absent.yaml")


def test_resources_are_read_per_group(tmp_path):
    text = MINIMAL + "resources:\n  cells: {partition: gpu, time: 30, gpus: 1, mem: 8}\n  pretraining: {nodes: 2}\n"
    resources = load_suite(_write(tmp_path, text)).resources
    assert resources["cells"].partition == "gpu" and resources["cells"].time == 30 and resources["cells"].mem == 8.0
    assert resources["pretraining"].nodes == 2
    with pytest.raises(SuiteError, match="resources.cells.nodes: cells run as one process on one node"):
        load_suite(_write(tmp_path, MINIMAL + "resources:\n  cells: {nodes: 2}\n"))


@pytest.mark.parametrize("pretraining, nodes, per_node, world", [
    ("{nodes: 2, devices: 3}", 2, 3, 6),  # CPU cluster: processes per node named
    ("{nodes: 4, gpus: 8}", 4, 8, 32),  # GPU cluster: one process per GPU
    ("{nodes: 2, gpus: 4, devices: 4}", 2, 4, 8),
    ("{cpus: 4}", 1, 1, 1),  # a single process
])
def test_pretraining_world_size_from_nodes_devices_and_gpus(tmp_path, pretraining, nodes, per_node, world):
    resources = load_suite(_write(tmp_path, MINIMAL + f"resources:\n  pretraining: {pretraining}\n")).resources
    got = resources["pretraining"]
    assert (got.nodes, got.processes_per_node, got.world_size) == (nodes, per_node, world)


@pytest.mark.parametrize("resources, line, key, words", [
    ("  cells: {devices: 2}", 15, "resources.cells.devices", "cells run as one process"),
    ("  pretraining: {nodes: 2,\n    devices: 0}", 16, "resources.pretraining.devices", "positive integer"),
    ("  pretraining: {gpus: 4,\n    devices: 2}", 16, "resources.pretraining.devices", "devices must equal gpus (4)"),
    ("  pretraining: {node: 2}", 15, "resources.pretraining.node", "did you mean 'nodes'"),
])
def test_pretraining_resource_errors_name_file_line_and_key(tmp_path, resources, line, key, words):
    path = _write(tmp_path, MINIMAL + "resources:\n" + resources + "\n")
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: {key}: ") and words in message, message


def test_shipped_suites_parse(repo_root, monkeypatch):
    monkeypatch.setenv("MEDVLP_DATA_ROOT", "/data/cxr")
    monkeypatch.setenv("MEDVLP_CHECKPOINTS", "/models")
    quick = load_suite(repo_root / "benchmarks/suites/synthetic-quick.yaml")
    assert {entry.method for entry in quick.methods.values()} == {"mgca", "convirt", "gloria", "random"}
    assert {cell.seed for cell in quick.cells()} == {0, 1} and quick.data.synthetic
    paper = load_suite(repo_root / "benchmarks/suites/mgca-paper.yaml")
    assert len(paper.cells()) == 5 * 7 * 3 * 3 and paper.encoder == "resnet50"
    assert paper.methods["mgca"].checkpoint == Path("/models/mgca_resnet_50.ckpt")
    assert paper.data.root == Path("/data/cxr") and set(paper.published) == set(paper.methods)
    assert paper.resources["pretraining"].world_size == 2 * 4


def test_readme_suite_is_exactly_the_cells_of_the_readme_records(repo_root):
    """synthetic-readme.yaml names the (method, pretraining epochs, task, pct, seed) of every record behind the
    README's synthetic results, and nothing else; those records are current (schema 2, per-sample outputs)."""
    suite = load_suite(repo_root / "benchmarks/suites/synthetic-readme.yaml")
    profile_epochs = 4
    cells = {(cell.entry.method, cell.entry.pretrain_epochs or (profile_epochs if cell.entry.method != "random"
                                                                else None), cell.task, cell.pct, cell.seed)
             for cell in suite.cells()}
    records = set()
    folder = repo_root / "leaderboards/synthetic-cpu/records"
    for path in folder.glob("*.json"):
        record = json.loads(path.read_text())
        pretrain = record["config"]["weights"].get("pretrain")
        records.add((record["method"], pretrain["max_epochs"] if pretrain else None, record["task"], record["pct"],
                     record["seed"]))
        assert record["config"]["encoder"] == suite.encoder
        assert record["config"]["synthetic"]["seed"] == suite.data.synthetic_seed
        assert record["schema_version"] == 2 and (folder / record["outputs"]["file"]).is_file()
    assert len(suite.cells()) == len(cells) == 66
    assert cells == records
