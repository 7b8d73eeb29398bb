"""The runner: one (method, task, pct, seed) run from names to a run record, in two steps.

* :func:`plan_run` (cheap, no image is read and no weights are loaded; it only materialises the synthetic default
  data when that is the data source): resolve the specs -> locate the data (real root or synthetic default) -> load
  the task's splits (memoised per task and folder within a process) and subsample the training split -> plan the
  weights (``--checkpoint``, or the pretraining found in the model store, trained on first use only when it is a
  single-process one on synthetic data: see :func:`~medvlp_bench.pretraining.service.checkpoint_for_run`) -> resolve the
  config and its key -> find an existing record with that key. The result is a :class:`RunPlan`.
* :func:`execute_plan`: pretrain if planned -> ask the method for the image encoder -> run the task's protocol ->
  write the record atomically.

:func:`run` plans, returns the existing record unless forced, and otherwise executes.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from medvlp_bench.data.locations import configured_data_root, harness_home
from medvlp_bench.data.splits import SUBSAMPLE_SEED, split_hash, subsample_training, write_split_files
from medvlp_bench.data.synthetic_store import ensure_synthetic
from medvlp_bench.errors import MedvlpError
from medvlp_bench.image_text import needs_image_text_model, require_image_text_model
from medvlp_bench.options import resolve_options
from medvlp_bench.pretraining.service import PretrainPlan, checkpoint_for_run, plan_for_run, synthetic_descriptor
from medvlp_bench.protocols.feature_cache import encoder_fingerprint, preferred_device
from medvlp_bench.records import RunRecord, collect_provenance, config_key, find_record, read_record, write_record
from medvlp_bench.registry import Registry
from medvlp_bench.specs import DatasetSpec, MethodContext, MethodSpec, ProtocolInputs, ProtocolSpec, SplitTables, TaskSpec

@dataclass
class RunRequest:
    """What the user asked for (one seed)."""

    method: str
    task: str
    pct: float
    seed: int = 0
    out_dir: Path = Path("results")
    data_root: Optional[Path] = None
    dataset_paths: dict[str, Path] = field(default_factory=dict)
    synthetic: bool = False
    synthetic_seed: int = 0
    synthetic_scale: float = 1.0
    encoder: Optional[str] = None
    checkpoint: Optional[Path] = None
    trust_checkpoint: bool = False
    force: bool = False
    hparams: dict = field(default_factory=dict)
    pretrain_epochs: Optional[int] = None
    method_options: dict = field(default_factory=dict)
    pretrain_nodes: int = 1
    pretrain_devices: int = 1


@dataclass(frozen=True)
class RunOutcome:
    record: RunRecord
    path: Path
    skipped: bool


@dataclass(frozen=True)
class DataLocation:
    folder: Path
    source: str  # "synthetic" | "real"


@dataclass(frozen=True)
class RunPlan:
    """A resolved run: everything :func:`execute_plan` needs, and what a sweep planner inspects.

    ``method``, ``task``, ``protocol``, ``dataset`` are the specs; ``encoder`` the image encoder's name;
    ``data_source`` ``"synthetic"`` or ``"real"`` and ``data_folder`` the dataset's raw folder; ``splits`` the
    subsampled split tables (shared with other plans of the same task: read them, never modify them);
    ``hparams`` the protocol's resolved options (its defaults, then the task's overrides, then ``--option``);
    ``method_options`` the method's resolved options (those of its pretraining when it pretrains);
    ``plugins`` role -> provenance (``name``, ``distribution``, ``version``) of every plugin involved;
    ``weights`` what identifies the weights (part of ``config``); ``pretrain`` the pretraining the run relies on
    (``None`` when the method does not pretrain or a checkpoint is given; it may already be in the model store:
    ``pretrain.out_dir``); ``config`` the run's full config and ``key`` its sha256 (:func:`config_key`);
    ``record_path`` an existing record with that key below ``request.out_dir``, or ``None``.
    """

    request: RunRequest
    method: MethodSpec
    task: TaskSpec
    protocol: ProtocolSpec
    dataset: DatasetSpec
    encoder: str
    data_source: str
    data_folder: Path
    splits: SplitTables
    split_hash: str
    hparams: dict[str, Any]
    method_options: dict[str, Any]
    plugins: dict[str, dict[str, str]]
    weights: dict[str, Any]
    pretrain: Optional[PretrainPlan]
    config: dict[str, Any]
    key: str
    record_path: Optional[Path]


@functools.cache
def _say_synthetic_default() -> None:
    """Tell the user, once per process, that the synthetic default stands in for real data."""
    print("medvlp-bench: no data root configured (--data-root / MEDVLP_DATA_ROOT); using the synthetic default",
          file=sys.stderr)


def locate_dataset(dataset: DatasetSpec, request: RunRequest) -> DataLocation:
    """The folder holding ``dataset``'s raw layout: an explicit path, the data root, or the synthetic default."""
    if not request.synthetic:
        if dataset.name in request.dataset_paths:
            return DataLocation(Path(request.dataset_paths[dataset.name]), "real")
        root = request.data_root or configured_data_root()
        if root is not None:
            return DataLocation(Path(root) / dataset.folder, "real")
        _say_synthetic_default()
    folder = ensure_synthetic(dataset, request.synthetic_seed, request.synthetic_scale)
    return DataLocation(folder, "synthetic")


#: (task name, its load_splits, folder) -> split tables; see :func:`task_splits`
_SPLITS: dict[tuple, SplitTables] = {}
#: (task name, its load_splits, folder, pct) -> (subsampled tables, their split hash); see :func:`run_splits`
_SUBSAMPLED: dict[tuple, tuple[SplitTables, str]] = {}


def task_splits(task: TaskSpec, folder: Path) -> SplitTables:
    """``task.load_splits(folder)``, memoised within the process per task and folder (planning many cells of one
    task reads its tables once). The tables are shared: callers must not modify them."""
    memo_key = (task.name, task.load_splits, str(Path(folder).resolve()))
    if memo_key not in _SPLITS:
        _SPLITS[memo_key] = task.load_splits(Path(folder))
    return _SPLITS[memo_key]


def run_splits(task: TaskSpec, folder: Path, pct: float) -> tuple[SplitTables, str]:
    """The task's splits with the training split subsampled to ``pct`` and their :func:`split_hash`, memoised like
    :func:`task_splits` (seeds of one cell share them)."""
    memo_key = (task.name, task.load_splits, str(Path(folder).resolve()), pct)
    if memo_key not in _SUBSAMPLED:
        full = task_splits(task, folder)
        splits = SplitTables(subsample_training(full.train, pct), full.val, full.test)
        _SUBSAMPLED[memo_key] = (splits, split_hash(splits))
    return _SUBSAMPLED[memo_key]


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes, computed once per process for a file whose path, size and modification
    time are unchanged (planning a grid names the same 100-300 MB checkpoint in many cells)."""
    status = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def device_description() -> str:
    device = preferred_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def run(registry: Registry, request: RunRequest) -> RunOutcome:
    """Run one request, or return the existing record with the same config key unless ``request.force``."""
    plan = plan_run(registry, request)
    if plan.record_path is not None and not request.force:
        return RunOutcome(read_record(plan.record_path), plan.record_path, skipped=True)
    return execute_plan(registry, plan)


def plan_run(registry: Registry, request: RunRequest) -> RunPlan:
    """Resolve a request into a :class:`RunPlan` (see the module docstring); bad input raises before any work."""
    method = registry.get("method", request.method)
    task = registry.get("task", request.task)
    protocol = registry.get("protocol", task.protocol)
    hparams = resolve_options(protocol.options, (f"task {task.name!r} sets", task.hparams),
                              ("--option", request.hparams), owner=f"protocol {protocol.name!r}")
    method_options = resolve_options(method.options, ("--method-option", request.method_options),
                                     owner=f"method {method.name!r}")
    if needs_image_text_model(protocol):
        require_image_text_model(method, task.name, protocol.name, [
            name for name in registry.names("method") if registry.get("method", name).load_image_text_model])
    if request.pretrain_epochs is not None:
        _check_pretrain_epochs(request, method)
    if (request.pretrain_nodes, request.pretrain_devices) != (1, 1):
        _check_pretrain_world(request, method)
    dataset = registry.get("dataset", task.dataset)
    if not 0.0 < request.pct <= 1.0:
        raise MedvlpError(f"--pct must be a fraction in (0, 1], got {request.pct} (1% is 0.01)")
    unknown = sorted(set(request.dataset_paths) - set(registry.names("dataset")))
    if unknown:
        registry.get("dataset", unknown[0])
    location = locate_dataset(dataset, request)
    encoder_name = request.encoder or method.default_encoder.get(location.source)
    if encoder_name is None:
        raise MedvlpError(f"method {method.name!r} names no default image encoder for {location.source} data; "
                          f"pass --encoder NAME (see medvlp-bench plugins)")
    registry.get("encoder", encoder_name)
    splits, hash_of_splits = run_splits(task, location.folder, request.pct)
    weights, pretrain = _weights_plan(registry, method, request, location, encoder_name)
    if pretrain is not None:
        method_options = dict(pretrain.config["options"])
    plugins = run_plugins(registry, method=method.name, task=task.name, dataset=dataset.name,
                          protocol=protocol.name, encoder=encoder_name, pretrain=pretrain)
    config = {
        "method": method.name,
        "task": task.name,
        "dataset": dataset.name,
        "protocol": protocol.name,
        "protocol_version": protocol.version,
        "pct": request.pct,
        "seed": request.seed,
        "encoder": encoder_name,
        "weights": weights,
        "data_source": location.source,
        "synthetic": (
            synthetic_descriptor(request.synthetic_seed, request.synthetic_scale)
            if location.source == "synthetic" else None
        ),
        "split_hash": hash_of_splits,
        "subsample_seed": SUBSAMPLE_SEED,
        "hparams": hparams,
        "method_options": method_options,
        "plugins": plugins,
    }
    key = config_key(config)
    return RunPlan(
        request=request, method=method, task=task, protocol=protocol, dataset=dataset, encoder=encoder_name,
        data_source=location.source, data_folder=location.folder, splits=splits, split_hash=hash_of_splits,
        hparams=hparams, method_options=method_options, plugins=plugins, weights=weights, pretrain=pretrain,
        config=config, key=key, record_path=find_record(request.out_dir, key),
    )


def run_plugins(registry: Registry, *, method: str, task: str, dataset: str, protocol: str, encoder: str,
                pretrain: Optional[PretrainPlan]) -> dict[str, dict[str, str]]:
    """role -> provenance (name, distribution, version) of the plugins a run uses: ``method``, ``task``,
    ``dataset``, ``protocol``, ``encoder`` and, when the run pretrains with one, ``text_encoder``."""
    plugins = {
        "method": registry.provenance("method", method),
        "task": registry.provenance("task", task),
        "dataset": registry.provenance("dataset", dataset),
        "protocol": registry.provenance("protocol", protocol),
        "encoder": registry.provenance("encoder", encoder),
    }
    if pretrain is not None and pretrain.config.get("text_encoder") is not None:
        plugins["text_encoder"] = registry.provenance("text_encoder", pretrain.config["text_encoder"])
    return plugins


def execute_plan(registry: Registry, plan: RunPlan) -> RunOutcome:
    """Execute a planned run (pretraining first when planned and not stored) and write its record."""
    request, splits = plan.request, plan.splits
    write_split_files(splits, harness_home() / "splits" / plan.task.name / plan.split_hash[:16])
    started = datetime.now(timezone.utc)
    checkpoint = request.checkpoint or (checkpoint_for_run(registry, plan.pretrain) if plan.pretrain is not None
                                        else None)
    checkpoint_sha = plan.weights.get("checkpoint_sha256") or (file_sha256(checkpoint) if checkpoint else None)
    wants_text_tower = needs_image_text_model(plan.protocol)
    load = plan.method.load_image_text_model if wants_text_tower else plan.method.load_image_encoder
    encoder = load(
        MethodContext(
            encoder=plan.encoder,
            build_encoder=lambda name: registry.get("encoder", name).build(),
            load_imagenet=lambda name, module: _load_imagenet(registry, name, module),
            checkpoint=checkpoint,
            seed=request.seed,
            data_source=plan.data_source,
            home=harness_home(),
            trust_checkpoint=request.trust_checkpoint,
            options=plan.method_options,
        )
    )
    encoder_key = encoder_fingerprint(encoder)
    with tempfile.TemporaryDirectory(prefix="medvlp-run-") as work_dir:
        result = plan.protocol.run(
            ProtocolInputs(
                task=plan.task,
                encoder=encoder,
                encoder_key=encoder_key,
                splits=SplitTables(*(table.copy() for _, table in splits.items())),
                seed=request.seed,
                hparams=dict(plan.hparams),
                cache_dir=harness_home() / "cache",
                work_dir=Path(work_dir),
                pct=request.pct,
            )
        )
    finished = datetime.now(timezone.utc)
    record = RunRecord(
        method=plan.method.name,
        task=plan.task.name,
        dataset=plan.dataset.name,
        data_source=plan.data_source,
        pct=request.pct,
        seed=request.seed,
        protocol=plan.protocol.name,
        metrics=dict(result.metrics),
        primary_metric=plan.task.primary_metric,
        higher_is_better=plan.task.higher_is_better,
        n_train=result.n_train,
        n_val=result.n_val,
        n_test=result.n_test,
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_sha256=checkpoint_sha,
        encoder={**encoder.describe(), "name": plan.encoder, "weights_sha256": encoder_key},
        config=plan.config,
        config_key=plan.key,
        plugins=plan.plugins,
        split_hash=plan.split_hash,
        provenance=collect_provenance(started, finished, device_description()),
        details={**dict(result.details), "split_rule": plan.task.split_rule, "data_folder": str(plan.data_folder)},
    )
    return RunOutcome(record, write_record(record, request.out_dir, outputs=result.outputs), skipped=False)


def _weights_plan(registry: Registry, method, request: RunRequest, location: DataLocation, encoder_name: str):
    """What identifies the weights of a run (part of its config) and, for a method that pretrains and was given no
    ``--checkpoint``, the pretraining plan that provides them (from the model store, or trained on first use)."""
    if request.checkpoint is not None:
        if not Path(request.checkpoint).is_file():
            raise MedvlpError(f"checkpoint not found: {request.checkpoint}")
        return {"checkpoint_sha256": file_sha256(request.checkpoint)}, None
    if method.pretrain is None:
        return {}, None
    if method.corpus is None:
        raise MedvlpError(f"method {method.name!r} pretrains but names no corpus; pass --checkpoint PATH")
    corpus = registry.get("dataset", method.corpus)
    corpus_location = locate_dataset(corpus, request)
    if location.source == "real" and corpus_location.source != "real":
        raise MedvlpError(f"the task's data is real, but method {method.name!r} would pretrain on the synthetic "
                          f"default of its corpus {corpus.name!r}: give its folder with --data-root DIR or "
                          f"--dataset-path {corpus.name}=DIR (a suite: data.root or data.paths.{corpus.name})")
    synthetic = (
        synthetic_descriptor(request.synthetic_seed, request.synthetic_scale)
        if corpus_location.source == "synthetic" else None
    )
    plan = plan_for_run(registry, method, data_source=location.source, corpus_folder=corpus_location.folder,
                        synthetic=synthetic, image_encoder=encoder_name, max_epochs=request.pretrain_epochs,
                        options=request.method_options, num_nodes=request.pretrain_nodes,
                        devices=request.pretrain_devices)
    return {"pretrain_key": plan.key, "pretrain": plan.config}, plan


def check_protocol_options(protocol: ProtocolSpec, options: dict) -> None:
    """Refuse ``--option`` names the protocol does not declare (with the closest declared names) and values of the
    wrong type; ``protocol.options`` is a tuple of ``OptionSpec`` s, of plain names, or ``None``."""
    resolve_options(protocol.options, ("--option", options), owner=f"protocol {protocol.name!r}")


def _check_pretrain_epochs(request: RunRequest, method) -> None:
    """``--pretrain-epochs`` needs a positive count, a method that pretrains, and no ``--checkpoint``."""
    if request.pretrain_epochs < 1:
        raise MedvlpError(f"--pretrain-epochs must be at least 1, not {request.pretrain_epochs}")
    if method.pretrain is None:
        raise MedvlpError(f"--pretrain-epochs: method {method.name!r} has no pretraining")
    if request.checkpoint is not None:
        raise MedvlpError("--pretrain-epochs and --checkpoint exclude each other: the checkpoint's weights are used")


def _check_pretrain_world(request: RunRequest, method) -> None:
    """``--pretrain-nodes`` / ``--pretrain-devices`` need positive counts, a method that pretrains, and no
    ``--checkpoint`` (they only select which stored pretraining the run uses)."""
    if request.pretrain_nodes < 1 or request.pretrain_devices < 1:
        raise MedvlpError(f"--pretrain-nodes and --pretrain-devices must be at least 1, not "
                          f"{request.pretrain_nodes} and {request.pretrain_devices}")
    if method.pretrain is None:
        raise MedvlpError(f"--pretrain-nodes/--pretrain-devices: method {method.name!r} has no pretraining")
    if request.checkpoint is not None:
        raise MedvlpError("--pretrain-nodes/--pretrain-devices and --checkpoint exclude each other: the checkpoint's "
                          "weights are used")


def _load_imagenet(registry: Registry, name: str, encoder) -> None:
    spec = registry.get("encoder", name)
    if spec.load_imagenet is None:
        raise MedvlpError(f"encoder {name!r} has no ImageNet weights")
    spec.load_imagenet(encoder)
