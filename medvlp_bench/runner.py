"""The runner: one (method, task, pct, seed) run from names to a run record.

Steps: resolve the specs -> locate the data (real root or synthetic default) -> load the task's splits and
subsample the training split -> resolve the config and its key (skip if a record with that key exists, unless
forced) -> ask the method for the image encoder -> run the task's protocol -> write the record atomically.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch

from medvlp_bench.data.locations import configured_data_root, harness_home
from medvlp_bench.data.splits import SUBSAMPLE_SEED, split_hash, subsample_training, write_split_files
from medvlp_bench.data.synthetic_store import ensure_synthetic
from medvlp_bench.errors import MedvlpError
from medvlp_bench.image_text import needs_image_text_model, require_image_text_model
from medvlp_bench.pretraining.service import DEFAULT_CORPUS, execute, plan_for_run, synthetic_descriptor
from medvlp_bench.protocols.feature_cache import encoder_fingerprint, preferred_device
from medvlp_bench.records import RunRecord, collect_provenance, config_key, find_record, write_record
from medvlp_bench.registry import Registry
from medvlp_bench.specs import DatasetSpec, MethodContext, ProtocolInputs, SplitTables

#: encoder used when the user names none: the quick CPU profile on synthetic data, the paper's on real data
DEFAULT_ENCODER = {"synthetic": "resnet18_64", "real": "resnet50"}


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


@dataclass(frozen=True)
class RunOutcome:
    record: RunRecord
    path: Path
    skipped: bool


@dataclass(frozen=True)
class DataLocation:
    folder: Path
    source: str  # "synthetic" | "real"


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


def file_sha256(path: Path) -> str:
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
    """Run one request, or return the existing record with the same config key (see module docstring)."""
    method = registry.get("method", request.method)
    task = registry.get("task", request.task)
    protocol = registry.get("protocol", task.protocol)
    check_protocol_options(protocol, request.hparams)
    if needs_image_text_model(protocol):
        require_image_text_model(method, task.name, protocol.name, [
            name for name in registry.names("method") if registry.get("method", name).load_image_text_model])
    if request.pretrain_epochs is not None:
        _check_pretrain_epochs(request, method)
    dataset = registry.get("dataset", task.dataset)
    if not 0.0 < request.pct <= 1.0:
        raise MedvlpError(f"--pct must be a fraction in (0, 1], got {request.pct} (1% is 0.01)")
    unknown = sorted(set(request.dataset_paths) - set(registry.names("dataset")))
    if unknown:
        registry.get("dataset", unknown[0])
    location = locate_dataset(dataset, request)
    full = task.load_splits(location.folder)
    splits = SplitTables(subsample_training(full.train, request.pct), full.val, full.test)
    hash_of_splits = split_hash(splits)
    encoder_name = request.encoder or DEFAULT_ENCODER[location.source]
    registry.get("encoder", encoder_name)
    weights, plan = _weights_plan(registry, method, request, location, encoder_name)
    config = {
        "method": method.name,
        "task": task.name,
        "dataset": dataset.name,
        "protocol": protocol.name,
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
        "hparams": {**dict(task.hparams), **request.hparams},
    }
    key = config_key(config)
    existing = None if request.force else find_record(request.out_dir, key)
    if existing is not None:
        return RunOutcome(RunRecord.from_dict(_read_json(existing)), existing, skipped=True)

    write_split_files(splits, harness_home() / "splits" / task.name / hash_of_splits[:16])
    started = datetime.now(timezone.utc)
    checkpoint = request.checkpoint or (execute(registry, plan) if plan is not None else None)
    checkpoint_sha = weights.get("checkpoint_sha256") or (file_sha256(checkpoint) if checkpoint else None)
    load = method.load_image_text_model if needs_image_text_model(protocol) else method.load_image_encoder
    encoder = load(
        MethodContext(
            encoder=encoder_name,
            build_encoder=lambda name: registry.get("encoder", name).build(),
            load_imagenet=lambda name, module: _load_imagenet(registry, name, module),
            checkpoint=checkpoint,
            seed=request.seed,
            data_source=location.source,
            home=harness_home(),
            trust_checkpoint=request.trust_checkpoint,
        )
    )
    encoder_key = encoder_fingerprint(encoder)
    with tempfile.TemporaryDirectory(prefix="medvlp-run-") as work_dir:
        result = protocol.run(
            ProtocolInputs(
                task=task,
                encoder=encoder,
                encoder_key=encoder_key,
                splits=splits,
                seed=request.seed,
                hparams={"pct": request.pct, **request.hparams},
                cache_dir=harness_home() / "cache",
                work_dir=Path(work_dir),
            )
        )
    finished = datetime.now(timezone.utc)
    record = RunRecord(
        method=method.name,
        task=task.name,
        dataset=dataset.name,
        data_source=location.source,
        pct=request.pct,
        seed=request.seed,
        protocol=protocol.name,
        metrics=dict(result.metrics),
        primary_metric=task.primary_metric,
        higher_is_better=task.higher_is_better,
        n_train=result.n_train,
        n_val=result.n_val,
        n_test=result.n_test,
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_sha256=checkpoint_sha,
        encoder={**encoder.describe(), "name": encoder_name, "weights_sha256": encoder_key},
        config=config,
        config_key=key,
        split_hash=hash_of_splits,
        provenance=collect_provenance(started, finished, device_description()),
        details={**dict(result.details), "split_rule": task.split_rule, "data_folder": str(location.folder)},
    )
    return RunOutcome(record, write_record(record, request.out_dir), skipped=False)


def _weights_plan(registry: Registry, method, request: RunRequest, location: DataLocation, encoder_name: str):
    """What identifies the weights of a run (part of its config) and, for a method that pretrains and was given no
    ``--checkpoint``, the pretraining plan that provides them (from the model store, or trained on first use)."""
    if request.checkpoint is not None:
        if not Path(request.checkpoint).is_file():
            raise MedvlpError(f"checkpoint not found: {request.checkpoint}")
        return {"checkpoint_sha256": file_sha256(request.checkpoint)}, None
    if method.pretrain is None:
        return {}, None
    corpus = registry.get("dataset", DEFAULT_CORPUS)
    corpus_location = locate_dataset(corpus, request)
    synthetic = (
        synthetic_descriptor(request.synthetic_seed, request.synthetic_scale)
        if corpus_location.source == "synthetic" else None
    )
    plan = plan_for_run(registry, method, data_source=location.source, corpus_folder=corpus_location.folder,
                        synthetic=synthetic, image_encoder=encoder_name, max_epochs=request.pretrain_epochs)
    return {"pretrain_key": plan.key, "pretrain": plan.config}, plan


def check_protocol_options(protocol, options: dict) -> None:
    """Reject ``--option`` names the protocol does not declare, with the closest declared names."""
    if protocol.options is None:
        return
    declared = [getattr(option, "name", option) for option in protocol.options]
    for name in sorted(set(options) - set(declared)):
        close = difflib.get_close_matches(name, declared, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MedvlpError(f"--option {name}: unknown option of protocol {protocol.name!r}{hint}; its options: "
                          f"{', '.join(sorted(declared))}")


def _check_pretrain_epochs(request: RunRequest, method) -> None:
    """``--pretrain-epochs`` needs a positive count, a method that pretrains, and no ``--checkpoint``."""
    if request.pretrain_epochs < 1:
        raise MedvlpError(f"--pretrain-epochs must be at least 1, not {request.pretrain_epochs}")
    if method.pretrain is None:
        raise MedvlpError(f"--pretrain-epochs: method {method.name!r} has no pretraining")
    if request.checkpoint is not None:
        raise MedvlpError("--pretrain-epochs and --checkpoint exclude each other: the checkpoint's weights are used")


def _load_imagenet(registry: Registry, name: str, encoder) -> None:
    spec = registry.get("encoder", name)
    if spec.load_imagenet is None:
        raise MedvlpError(f"encoder {name!r} has no ImageNet weights")
    spec.load_imagenet(encoder)


def _read_json(path: Path) -> dict:
    import json

    return json.loads(Path(path).read_text())
