"""Benchmark suites: YAML files that name a grid of runs (method x task x pct x seed) and how to run them.

A suite (see ``docs/sweeps.md`` for a full example) has these top-level keys:

* ``name`` (default: the file's stem), ``description``;
* ``data``: ``{synthetic: {seed: 0, scale: 1.0}}`` for the synthetic default, or ``{root: DIR, paths: {DATASET:
  DIR}}`` for real downloads (``paths`` override single datasets). ``$VAR`` and ``~`` are expanded in paths; an
  unset variable is an error; a relative path is taken from the current directory;
* ``encoder``: image encoder of every cell (default: the runner's default for the data source);
* ``methods``: row label -> weights: ``{}`` (none needed, or the method's default pretraining), ``{checkpoint:
  PATH}``, or ``{pretrain: {epochs: N}}``; ``options: {...}`` sets method options (for a method that pretrains,
  those of its pretraining, as ``run --method-option``); ``method:`` names the plugin when the label is not its
  name (two rows of one method, e.g. ``mgca-12ep: {method: mgca, pretrain: {epochs: 12}}``);
* ``tasks``, ``fractions`` (of the training split, in (0, 1]), ``seeds``: the grid over every method;
* ``grid``: instead, a list of blocks, each ``{methods: [...], tasks: [...], fractions: [...], seeds: [...]}``
  (a missing key takes the top-level value), for suites that are a union of grids;
* ``protocol_options``: protocol name -> ``{option: value}``, given to every cell of that protocol;
* ``baseline``: the row label the others are compared against; ``published``: method names of the published
  reference rows to show beside the results (real data only), or ``[]``;
* ``resources``: ``{cells: {...}, pretraining: {...}}`` with ``partition``, ``account``, ``time`` (minutes),
  ``cpus`` (per process), ``gpus`` (per node), ``mem`` (GB per node) and, for pretraining only, ``nodes`` and
  ``devices`` (processes per node, default: ``gpus``, or 1 without GPUs): a pretraining with ``nodes`` x ``devices``
  above 1 runs as Lightning DDP (SLURM: ``srun``, one task per process; local: Lightning's own launcher) and is
  another model than the single-process one (see ``docs/sweeps.md``). Command-line flags override both groups.

:func:`load_suite` reads and validates the file; every error names the file, the key and the line
(``suite.yaml:12: methods.mgca.pretrain.epochs: must be a positive integer, got 0``). Plugin names are checked
against the registry when the suite is planned (:mod:`medvlp_bench.sweeps.planning`), with the same location.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from medvlp_bench.errors import MedvlpError

TOP_KEYS = ("name", "description", "data", "encoder", "methods", "tasks", "fractions", "seeds", "grid",
            "protocol_options", "baseline", "published", "resources")
METHOD_KEYS = ("method", "checkpoint", "pretrain", "options")
PRETRAIN_KEYS = ("epochs",)
GRID_KEYS = ("methods", "tasks", "fractions", "seeds")
DATA_KEYS = ("synthetic", "root", "paths")
SYNTHETIC_KEYS = ("seed", "scale")
RESOURCE_GROUPS = ("cells", "pretraining")
RESOURCE_KEYS = ("partition", "account", "time", "cpus", "gpus", "mem", "nodes", "devices")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_UNSET_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


class SuiteError(MedvlpError):
    """A malformed suite file; the message starts with ``FILE:LINE: KEY:``."""


@dataclass(frozen=True)
class Where:
    """A place in a suite file: the file, the 1-based line and the dotted key."""

    file: Path
    line: int
    key: str

    def error(self, message: str) -> SuiteError:
        return SuiteError(f"{self.file}:{self.line}: {self.key}: {message}")


@dataclass(frozen=True)
class MethodEntry:
    """One row of a suite: a method plugin and its weights (checkpoint, pretraining, or none)."""

    label: str
    method: str
    checkpoint: Optional[Path]
    pretrain_epochs: Optional[int]
    options: dict
    where: Where
    method_where: Where


@dataclass(frozen=True)
class GridBlock:
    """A full grid: every method label x task x fraction x seed."""

    methods: tuple[str, ...]
    tasks: tuple[tuple[str, Where], ...]
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class SuiteData:
    """Where the suite's data comes from."""

    synthetic: bool
    synthetic_seed: int = 0
    synthetic_scale: float = 1.0
    root: Optional[Path] = None
    paths: dict = field(default_factory=dict)
    paths_where: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Resources:
    """What a job asks for; ``None`` leaves the cluster's default (``time`` minutes, ``cpus`` per process,
    ``gpus`` per node, ``mem`` GB per node). ``nodes`` and ``devices`` (processes per node; ``None``: one per GPU,
    or 1 without GPUs) apply to pretraining only: cells run as one process."""

    partition: Optional[str] = None
    account: Optional[str] = None
    time: Optional[int] = None
    cpus: Optional[int] = None
    gpus: Optional[int] = None
    mem: Optional[float] = None
    nodes: int = 1
    devices: Optional[int] = None

    @property
    def processes_per_node(self) -> int:
        """``devices``, else ``gpus`` (one process per GPU), else 1."""
        return self.devices or self.gpus or 1

    @property
    def world_size(self) -> int:
        """Processes of the job in all: ``nodes x processes_per_node``."""
        return self.nodes * self.processes_per_node


@dataclass(frozen=True)
class Cell:
    """One run of a suite: a row (method entry) on a task at a training fraction with a seed."""

    entry: MethodEntry
    task: str
    pct: float
    seed: int

    @property
    def id(self) -> str:
        """``{label}__{task}__pct{pct:g}__seed{seed}``: unique within a suite, used for log file names."""
        return f"{self.entry.label}__{self.task}__pct{self.pct:g}__seed{self.seed}"


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    description: str
    data: SuiteData
    encoder: Optional[str]
    encoder_where: Optional[Where]
    methods: dict
    grid: tuple[GridBlock, ...]
    protocol_options: dict
    protocol_where: dict
    baseline: Optional[str]
    published: tuple[str, ...]
    resources: dict

    def cells(self) -> list[Cell]:
        """Every cell of the suite, once, in grid order (block, method, task, fraction, seed)."""
        seen: dict[str, Cell] = {}
        for block in self.grid:
            for label in block.methods:
                for task, _ in block.tasks:
                    for pct in block.fractions:
                        for seed in block.seeds:
                            cell = Cell(self.methods[label], task, pct, seed)
                            seen.setdefault(cell.id, cell)
        return list(seen.values())

    def task_where(self, task: str) -> Where:
        for block in self.grid:
            for name, where in block.tasks:
                if name == task:
                    return where
        raise KeyError(task)


class _Reader:
    """Turns YAML nodes into checked Python values, every error located by the node's start mark."""

    def __init__(self, path: Path):
        self.file = path
        self._constructor = yaml.SafeLoader("")

    def where(self, node: yaml.Node, key: str) -> Where:
        return Where(self.file, node.start_mark.line + 1, key)

    def value(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: yaml.Node, key: str, allowed: Optional[tuple[str, ...]] = None) -> dict:
        """``name -> (key node, value node)`` of a mapping node, refusing unknown names when ``allowed`` is given."""
        if isinstance(node, yaml.ScalarNode) and self.value(node) is None:
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise self.where(node, key).error(f"must be a mapping, got {_kind(node)}")
        out = {}
        for key_node, value_node in node.value:
            name = self.value(key_node)
            child = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str):
                raise self.where(key_node, child).error("keys must be strings")
            if name in out:
                raise self.where(key_node, child).error("given twice")
            if allowed is not None and name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.where(key_node, child).error(f"unknown key{hint}; allowed: {', '.join(allowed)}")
            out[name] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        """The items of a sequence node; a single scalar counts as a one-item list."""
        if isinstance(node, yaml.ScalarNode):
            return [node]
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.where(node, key).error(f"must be a non-empty list, got {_kind(node)}")
        return list(node.value)

    def string(self, node: yaml.Node, key: str, pattern: Optional[re.Pattern] = None) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value or (pattern is not None and not pattern.match(value)):
            raise self.where(node, key).error(f"must be a name, got {value!r}")
        return value

    def integer(self, node: yaml.Node, key: str, minimum: Optional[int] = None) -> int:
        value = self.value(node)
        if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
            bound = "an integer" if minimum is None else ("a positive integer" if minimum == 1 else
                                                          f"an integer >= {minimum}")
            raise self.where(node, key).error(f"must be {bound}, got {value!r}")
        return value

    def number(self, node: yaml.Node, key: str) -> float:
        value = self.value(node)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise self.where(node, key).error(f"must be a positive number, got {value!r}")
        return float(value)

    def fraction(self, node: yaml.Node, key: str) -> float:
        value = self.value(node)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 < value <= 1.0:
            raise self.where(node, key).error(f"must be a fraction in (0, 1] (1% is 0.01), got {value!r}")
        return float(value)

    def path(self, node: yaml.Node, key: str) -> Path:
        value = self.value(node)
        if not isinstance(value, str) or not value:
            raise self.where(node, key).error(f"must be a path, got {value!r}")
        expanded = os.path.expandvars(os.path.expanduser(value))
        unset = _UNSET_VARIABLE.search(expanded)
        if unset:
            raise self.where(node, key).error(f"environment variable {unset.group(1)} is not set (in {value!r})")
        return Path(expanded)

    def options(self, node: yaml.Node, key: str) -> dict:
        return {name: self.value(value) for name, (_, value) in self.mapping(node, key).items()}


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value) if node.value else "nothing"


def load_suite(path: Path | str) -> Suite:
    """Read and validate a suite file (see the module docstring); raises :class:`SuiteError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SuiteError(f"{path}: cannot read the suite file: {error.strerror or error}") from error
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{path}{line}: not valid YAML: {error.problem or error}") from error
    if root is None:
        raise SuiteError(f"{path}: the suite file is empty")
    reader = _Reader(path)
    top = reader.mapping(root, "", TOP_KEYS)
    for required in ("methods",):
        if required not in top:
            raise reader.where(root, required).error("missing (every suite names its methods)")
    methods = _methods(reader, top["methods"][1])
    grid = _grid(reader, top, methods)
    data = _data(reader, top["data"][1]) if "data" in top else SuiteData(synthetic=True)
    encoder, encoder_where = None, None
    if "encoder" in top:
        encoder = reader.string(top["encoder"][1], "encoder")
        encoder_where = reader.where(top["encoder"][1], "encoder")
    protocol_options, protocol_where = {}, {}
    if "protocol_options" in top:
        for name, (key_node, value) in reader.mapping(top["protocol_options"][1], "protocol_options").items():
            protocol_options[name] = reader.options(value, f"protocol_options.{name}")
            protocol_where[name] = reader.where(key_node, f"protocol_options.{name}")
    baseline = None
    if "baseline" in top:
        baseline = reader.string(top["baseline"][1], "baseline")
        if baseline not in methods:
            raise reader.where(top["baseline"][1], "baseline").error(
                f"{baseline!r} is not one of the suite's methods ({', '.join(methods)})")
    published: tuple[str, ...] = ()
    if "published" in top and reader.value(top["published"][1]) not in (None, [], False):
        published = tuple(reader.string(item, "published") for item in reader.sequence(top["published"][1],
                                                                                       "published"))
    resources = _resources(reader, top["resources"][1]) if "resources" in top else {}
    name = reader.string(top["name"][1], "name", _LABEL) if "name" in top else path.stem
    description = str(reader.value(top["description"][1]) or "") if "description" in top else ""
    return Suite(path, name, description, data, encoder, encoder_where, methods, grid, protocol_options,
                 protocol_where, baseline, published, resources)


def _methods(reader: _Reader, node: yaml.Node) -> dict[str, MethodEntry]:
    entries = {}
    mapping = reader.mapping(node, "methods")
    if not mapping:
        raise reader.where(node, "methods").error("names no method")
    for label, (key_node, value) in mapping.items():
        key = f"methods.{label}"
        if not _LABEL.match(label):
            raise reader.where(key_node, key).error("a row label is letters, digits, '.', '_' or '-'")
        fields = reader.mapping(value, key, METHOD_KEYS)
        method = reader.string(fields["method"][1], f"{key}.method") if "method" in fields else label
        method_where = reader.where(fields["method"][1] if "method" in fields else key_node, key)
        checkpoint = reader.path(fields["checkpoint"][1], f"{key}.checkpoint") if "checkpoint" in fields else None
        epochs = None
        options = reader.options(fields["options"][1], f"{key}.options") if "options" in fields else {}
        if "pretrain" in fields:
            if checkpoint is not None:
                raise reader.where(fields["pretrain"][0], f"{key}.pretrain").error(
                    "a row has a checkpoint or a pretraining, not both")
            pretrain = reader.mapping(fields["pretrain"][1], f"{key}.pretrain", PRETRAIN_KEYS)
            if "epochs" in pretrain:
                epochs = reader.integer(pretrain["epochs"][1], f"{key}.pretrain.epochs", minimum=1)
        entries[label] = MethodEntry(label, method, checkpoint, epochs, options, reader.where(key_node, key),
                                     method_where)
    return entries


def _grid(reader: _Reader, top: dict, methods: dict[str, MethodEntry]) -> tuple[GridBlock, ...]:
    """The grid blocks: the ``grid`` list, or one block of the top-level keys over every method."""
    if "grid" not in top:
        first_line = reader.where(next(iter(top.values()))[0], "")
        return (_block(reader, {k: top[k] for k in GRID_KEYS[1:] if k in top}, top, methods, "", first_line),)
    blocks = []
    for index, node in enumerate(reader.sequence(top["grid"][1], "grid")):
        key = f"grid[{index}]"
        blocks.append(_block(reader, reader.mapping(node, key, GRID_KEYS), top, methods, key,
                             reader.where(node, key)))
    return tuple(blocks)


def _block(reader: _Reader, fields: dict, top: dict, methods: dict[str, MethodEntry], key: str,
           where: Where) -> GridBlock:
    def items(name: str):
        source = fields.get(name) or top.get(name)
        if source is None:
            missing = Where(where.file, where.line, f"{key}.{name}" if key else name)
            raise missing.error(f"missing (give {name} {'in this block or ' if key else ''}at the top level)")
        owner = key if name in fields and key else ""
        dotted = f"{owner}.{name}" if owner else name
        return [(item, f"{dotted}[{i}]") for i, item in enumerate(reader.sequence(source[1], dotted))]

    if fields.get("methods") is not None:
        labels = []
        for node, item_key in items("methods"):
            label = reader.string(node, item_key)
            if label not in methods:
                close = difflib.get_close_matches(label, list(methods), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise reader.where(node, item_key).error(f"{label!r} is not under methods{hint}")
            labels.append(label)
    else:
        labels = list(methods)
    tasks = tuple((reader.string(node, item_key), reader.where(node, item_key)) for node, item_key in items("tasks"))
    fractions = tuple(reader.fraction(node, item_key) for node, item_key in items("fractions"))
    seeds = tuple(reader.integer(node, item_key, minimum=0) for node, item_key in items("seeds"))
    return GridBlock(tuple(labels), tasks, fractions, seeds)


def _data(reader: _Reader, node: yaml.Node) -> SuiteData:
    fields = reader.mapping(node, "data", DATA_KEYS)
    if "synthetic" in fields:
        if "root" in fields or "paths" in fields:
            raise reader.where(node, "data").error("synthetic data excludes root and paths")
        synthetic = reader.mapping(fields["synthetic"][1], "data.synthetic", SYNTHETIC_KEYS)
        seed = reader.integer(synthetic["seed"][1], "data.synthetic.seed", minimum=0) if "seed" in synthetic else 0
        scale = reader.number(synthetic["scale"][1], "data.synthetic.scale") if "scale" in synthetic else 1.0
        return SuiteData(synthetic=True, synthetic_seed=seed, synthetic_scale=scale)
    if "root" not in fields and "paths" not in fields:
        raise reader.where(node, "data").error("give synthetic: {...}, or root: DIR (and/or paths: {DATASET: DIR})")
    root = reader.path(fields["root"][1], "data.root") if "root" in fields else None
    paths, paths_where = {}, {}
    if "paths" in fields:
        for name, (key_node, value) in reader.mapping(fields["paths"][1], "data.paths").items():
            paths[name] = reader.path(value, f"data.paths.{name}")
            paths_where[name] = reader.where(key_node, f"data.paths.{name}")
    return SuiteData(synthetic=False, root=root, paths=paths, paths_where=paths_where)


def _resources(reader: _Reader, node: yaml.Node) -> dict[str, Resources]:
    groups = {}
    for group, (_, value) in reader.mapping(node, "resources", RESOURCE_GROUPS).items():
        key = f"resources.{group}"
        fields = reader.mapping(value, key, RESOURCE_KEYS)
        values: dict[str, Any] = {}
        for name, (_, item) in fields.items():
            item_key = f"{key}.{name}"
            if name in ("partition", "account"):
                values[name] = reader.string(item, item_key)
            elif name == "mem":
                values[name] = reader.number(item, item_key)
            elif name in ("nodes", "devices") and group == "cells":
                raise reader.where(item, item_key).error(
                    f"cells run as one process on one node; {name} applies to pretraining")
            else:
                values[name] = reader.integer(item, item_key, minimum=0 if name == "gpus" else 1)
        if values.get("gpus") and values.get("devices") not in (None, values["gpus"]):
            raise reader.where(fields["devices"][1], f"{key}.devices").error(
                f"with GPUs a pretraining runs one process per GPU: devices must equal gpus ({values['gpus']}), "
                f"got {values['devices']}")
        groups[group] = Resources(**values)
    return groups
