"""Planning a suite: every cell through the runner's plan step, and the distinct pretrainings they rely on.

Each cell becomes a :class:`~medvlp_bench.runner.RunRequest` and is planned with
:func:`~medvlp_bench.runner.plan_run` (cheap: no image read, no weights loaded; the synthetic default is generated
on first use). A cell is *done* when a record with its config key exists in the sweep's records folder, else *to
run*. The records folder is read once per sweep (:func:`record_index`: config key -> file) instead of once per cell:
``plan_run`` is given a request whose ``out_dir`` does not exist, so it looks nothing up, and the cell's own
request (with the real records folder) is what its job runs. Cells whose weights come from a pretraining that is
not in the model store yet share one :class:`PretrainJob` per pretraining key, which runs before them. The
pretraining is planned with the nodes and processes per node its job will run with (the suite's
``resources.pretraining`` or the sweep's flags), so its key is the one the job's ``pretrain`` command writes; on
real data the cells of a row with ``pretrain: {epochs: N}`` plan the method's real-data pretraining (the suite's
explicit request for it), which the sweep runs first; their ``run`` commands only look it up.

Plugin names are checked against the registry first, and every planning error names the suite file, the line and
the key it comes from. Methods that need neither a checkpoint nor a pretraining (baselines) are asked for their
encoder once per (method, encoder): the ImageNet baseline without its file in the local cache fails here, naming the
file to provide, instead of in every cell.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from medvlp_bench.data.locations import harness_home
from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.pretraining.model_store import stored_checkpoint
from medvlp_bench.pretraining.service import PretrainPlan
from medvlp_bench.records import read_record
from medvlp_bench.registry import Registry
from medvlp_bench.runner import RunPlan, RunRequest, check_protocol_options, plan_run
from medvlp_bench.specs import MethodContext
from medvlp_bench.sweeps.suite import Cell, Resources, Suite, Where


@dataclass
class PretrainJob:
    """One distinct pretraining that cells of the suite rely on (not in the model store when planned)."""

    plan: PretrainPlan
    request: RunRequest  # the request of the first cell that needs it (its pretraining fields are shared)
    cells: list["PlannedCell"] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def method(self) -> str:
        return self.plan.method.name

    @property
    def out_dir(self) -> Path:
        return self.plan.out_dir

    @property
    def id(self) -> str:
        return f"pretrain__{self.method}__{self.key[:12]}"


@dataclass
class PlannedCell:
    cell: Cell
    request: RunRequest
    plan: RunPlan
    pretrain: Optional[PretrainJob]
    record_path: Optional[Path] = None

    @property
    def done(self) -> bool:
        return self.record_path is not None


@dataclass
class SweepPlan:
    suite: Suite
    out_dir: Path
    cells: list[PlannedCell]
    pretrain_jobs: list[PretrainJob]

    @property
    def done(self) -> list[PlannedCell]:
        return [cell for cell in self.cells if cell.done]

    @property
    def to_run(self) -> list[PlannedCell]:
        return [cell for cell in self.cells if not cell.done]


def records_folder(out_dir: Path) -> Path:
    """Where a sweep writes its run records: ``DIR/records``."""
    return Path(out_dir) / "records"


def record_index(folder: Path) -> dict[str, Path]:
    """Config key -> record file of every run record below ``folder`` (hidden and temporary files skipped), each
    file read once; a file that is not a valid record raises :class:`~medvlp_bench.records.RecordError`."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    index: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        index.setdefault(read_record(path).config_key, path)
    return index


def cell_request(suite: Suite, cell: Cell, out_dir: Path, protocol: str,
                 pretraining: Optional[Resources] = None) -> RunRequest:
    """The runner request of one cell (``protocol``: the protocol of the cell's task, for its options).

    ``pretraining``: the resources its pretraining runs with, when the cell's weights come from one (a row without
    a checkpoint, of a method that pretrains): its nodes and processes per node go into the request, so the cell's
    plan has the key of the pretraining the sweep runs (the global batch, part of that key, grows with them)."""
    data = suite.data
    world = pretraining or Resources()
    return RunRequest(
        method=cell.entry.method, task=cell.task, pct=cell.pct, seed=cell.seed, out_dir=records_folder(out_dir),
        data_root=data.root, dataset_paths=dict(data.paths), synthetic=data.synthetic,
        synthetic_seed=data.synthetic_seed, synthetic_scale=data.synthetic_scale, encoder=suite.encoder,
        checkpoint=cell.entry.checkpoint, hparams=dict(suite.protocol_options.get(protocol, {})),
        pretrain_epochs=cell.entry.pretrain_epochs, method_options=dict(cell.entry.options),
        pretrain_nodes=world.nodes, pretrain_devices=world.processes_per_node,
    )


def plan_suite(registry: Registry, suite: Suite, out_dir: Path,
               pretraining: Optional[Resources] = None) -> SweepPlan:
    """Plan every cell of ``suite`` against the records in ``out_dir`` (see the module docstring); ``pretraining``:
    the resources the pretraining jobs run with (default: the suite's ``resources.pretraining``)."""
    check_names(registry, suite)
    if pretraining is None:
        pretraining = suite.resources.get("pretraining", Resources())
    cells = suite.cells()
    jobs: dict[str, PretrainJob] = {}
    planned = []
    probed: set[tuple[str, str]] = set()
    records = record_index(records_folder(out_dir))
    no_lookup = records_folder(out_dir) / ".no-lookup"  # never created: plan_run finds no record there
    for cell in cells:
        pretrains = cell.entry.checkpoint is None and registry.get("method", cell.entry.method).pretrain is not None
        request = cell_request(suite, cell, out_dir, registry.get("task", cell.task).protocol,
                               pretraining if pretrains else None)
        try:
            plan = plan_run(registry, replace(request, out_dir=no_lookup))
        except MedvlpError as error:
            raise cell.entry.where.error(f"{cell.id}: {error}") from error
        job = None
        if plan.pretrain is not None and stored_checkpoint(plan.method.name, plan.pretrain.key) is None:
            job = jobs.get(plan.pretrain.key)
            if job is None:
                job = jobs[plan.pretrain.key] = PretrainJob(plan.pretrain, request)
        if plan.pretrain is None and request.checkpoint is None and (plan.method.name, plan.encoder) not in probed:
            probed.add((plan.method.name, plan.encoder))
            probe_weights(registry, plan, cell.entry.where)
        planned.append(PlannedCell(cell, request, plan, job, records.get(plan.key)))
    for job in jobs.values():
        job.cells = [item for item in planned if item.pretrain is job and not item.done]
    return SweepPlan(suite, Path(out_dir), planned, [job for job in jobs.values() if job.cells])


def check_names(registry: Registry, suite: Suite) -> None:
    """Every plugin name of the suite exists (else an error at its line, with did-you-mean suggestions)."""
    for entry in suite.methods.values():
        _known(registry, "method", entry.method, entry.method_where)
    for block in suite.grid:
        for task, where in block.tasks:
            _known(registry, "task", task, where)
    if suite.encoder is not None:
        _known(registry, "encoder", suite.encoder, suite.encoder_where)
    for name, where in suite.protocol_where.items():
        _known(registry, "protocol", name, where)
        try:
            check_protocol_options(registry.get("protocol", name), suite.protocol_options[name])
        except MedvlpError as error:
            raise where.error(str(error).replace("--option ", "option ")) from error
    for name in suite.data.paths:
        _known(registry, "dataset", name, suite.data.paths_where[name])


def _known(registry: Registry, kind: str, name: str, where: Where) -> None:
    if name not in registry.names(kind):
        close = difflib.get_close_matches(name, registry.names(kind), n=3, cutoff=0.5)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise where.error(f"unknown {kind} {name!r}{hint}; available: {', '.join(registry.names(kind))}")


class _ProbeEnd(Exception):
    """Raised when a probed method first uses its encoder: its weights were found."""


class _EncoderStandIn:
    """What :func:`probe_weights` hands a method instead of a built encoder (building a ResNet-50 costs seconds):
    any use of it ends the probe."""

    def __getattr__(self, name):
        raise _ProbeEnd(name)

    def __call__(self, *args, **kwargs):
        raise _ProbeEnd("__call__")


def probe_weights(registry: Registry, plan: RunPlan, where: Where) -> None:
    """Ask a method that needs no checkpoint and no pretraining for its encoder once, so missing local weights
    (e.g. an ImageNet file) stop the sweep at planning with the method's own message naming the file.

    The method gets a stand-in instead of a built encoder: loaders look for their files first, and the probe ends
    (successfully) where the method first touches the encoder."""
    context = MethodContext(
        encoder=plan.encoder,
        build_encoder=lambda name: _EncoderStandIn(),
        load_imagenet=lambda name, module: _load_imagenet(registry, name, module),
        checkpoint=None,
        seed=0,
        data_source=plan.data_source,
        home=harness_home(),
    )
    try:
        plan.method.load_image_encoder(context)
    except _ProbeEnd:
        return
    except WeightsNotFoundError as error:
        raise where.error(f"weights of method {plan.method.name!r} ({plan.encoder}) are missing: {error}") from error


def _load_imagenet(registry: Registry, name: str, module) -> None:
    spec = registry.get("encoder", name)
    if spec.load_imagenet is None:
        raise WeightsNotFoundError(f"encoder {name!r} has no ImageNet weights")
    spec.load_imagenet(module)
