"""Pretraining requests: resolve a method's pretraining config, find it in the model store, or train and store it.

Used by ``medvlp-bench pretrain`` and by the runner when a method needs weights that are not given with
``--checkpoint`` (see :func:`plan_for_run`).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from medvlp_bench.data.locations import SYNTHETIC_VERSION, harness_home
from medvlp_bench.data.splits import split_hash
from medvlp_bench.data.synthetic_store import exclusive_lock
from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.options import resolve_options
from medvlp_bench.pretraining.model_store import (
    LAST_CHECKPOINT,
    pretrain_key,
    store_folder,
    stored_checkpoint,
    write_config,
)
from medvlp_bench.pretraining.ranks import is_first_process
from medvlp_bench.registry import Registry
from medvlp_bench.specs import DatasetSpec, MethodSpec, PretrainContext, PretrainingProfile, SplitTables

@dataclass
class PretrainRequest:
    """A pretraining job (see ``medvlp-bench pretrain --help``); ``None`` fields take the method's defaults."""

    method: str
    corpus: Optional[str] = None
    data_source: str = "synthetic"
    corpus_folder: Optional[Path] = None
    synthetic: Optional[dict] = None
    image_encoder: Optional[str] = None
    text_encoder: Optional[str] = None
    max_epochs: Optional[int] = None
    batch_size: Optional[int] = None
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    accelerator: str = "auto"
    precision: str = "32-true"
    num_workers: int = 0
    seed: int = 42
    resume: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    out_dir: Optional[Path] = None

    @property
    def world_size(self) -> int:
        """Processes of the pretraining: ``devices x num_nodes`` (one per device)."""
        return self.devices * self.num_nodes


def profile_of(method: MethodSpec, data_source: str) -> PretrainingProfile:
    """The method's pretraining profile for ``data_source``; a clear error when it declares none."""
    profile = method.pretraining_profiles.get(data_source)
    if profile is None:
        declared = ", ".join(sorted(method.pretraining_profiles)) or "none"
        raise MedvlpError(
            f"method {method.name!r} declares no pretraining profile for {data_source} data (its profiles: "
            f"{declared}); name every setting: medvlp-bench pretrain --method {method.name} --image-encoder NAME "
            f"--text-encoder NAME --epochs N --batch-size N"
        )
    return profile


def _profile_or_request(method: MethodSpec, request: PretrainRequest) -> Optional[PretrainingProfile]:
    """The profile, or ``None`` when the request names every setting a profile would give."""
    named = request.image_encoder and request.max_epochs and request.batch_size
    if named and request.data_source not in method.pretraining_profiles:
        return None
    return profile_of(method, request.data_source)


def resolve_config(method: MethodSpec, dataset: DatasetSpec, request: PretrainRequest, corpus_hash: str) -> dict:
    """The pretraining config that identifies a model: everything that changes the learnt weights.

    Settings come from the request, else the method's profile for the data source; options are the method's
    declared defaults, then the profile's, then the request's (validated by :func:`resolve_options`).
    :func:`plan_pretraining` adds ``plugins`` (role -> provenance), so an upgraded plugin retrains.
    """
    profile = _profile_or_request(method, request)
    text_encoder = request.text_encoder or (profile.text_encoder if profile is not None else None)
    batch_size = request.batch_size or profile.batch_size
    options = resolve_options(
        method.options,
        ("profile", profile.options if profile is not None else {}),
        ("--option", request.options),
        owner=f"method {method.name!r}",
    )
    return {
        "method": method.name,
        "corpus": dataset.name,
        "data_source": request.data_source,
        "synthetic": request.synthetic if request.data_source == "synthetic" else None,
        "corpus_hash": corpus_hash,
        "image_encoder": request.image_encoder or profile.image_encoder,
        "text_encoder": text_encoder,
        "max_epochs": request.max_epochs or profile.max_epochs,
        "batch_size_per_device": batch_size,
        "global_batch_size": batch_size * request.devices * request.num_nodes,
        "precision": request.precision,
        "seed": request.seed,
        "options": options,
    }


@dataclass(frozen=True)
class PretrainPlan:
    """A resolved pretraining job: the specs, the corpus, the config and its key."""

    request: PretrainRequest
    method: MethodSpec
    corpus: SplitTables
    config: dict
    key: str

    @property
    def out_dir(self) -> Path:
        return Path(self.request.out_dir) if self.request.out_dir else store_folder(self.method.name, self.key)


#: (corpus name, its load_corpus, folder) -> (tables, their split hash); see :func:`corpus_tables`
_CORPORA: dict[tuple, tuple[SplitTables, str]] = {}


def corpus_tables(dataset: DatasetSpec, folder: Optional[Path]) -> tuple[SplitTables, str]:
    """``dataset.load_corpus(folder)`` and its :func:`split_hash`, memoised within the process per dataset and folder
    (planning many runs that rely on one pretraining reads the corpus once). The tables are shared: callers must
    not modify them."""
    memo_key = (dataset.name, dataset.load_corpus, str(Path(folder).resolve()) if folder is not None else None)
    if memo_key not in _CORPORA:
        tables = dataset.load_corpus(folder)
        _CORPORA[memo_key] = (tables, split_hash(tables))
    return _CORPORA[memo_key]


def plan_pretraining(registry: Registry, request: PretrainRequest) -> PretrainPlan:
    """Resolve specs, corpus and config of a pretraining request (cheap: reads the corpus tables only)."""
    method = registry.get("method", request.method)
    if method.pretrain is None:
        raise MedvlpError(f"method {method.name!r} does not pretrain (it has no pretraining stage)")
    corpus_name = request.corpus or method.corpus
    if corpus_name is None:
        raise MedvlpError(f"method {method.name!r} names no corpus; pass --corpus DATASET")
    dataset = registry.get("dataset", corpus_name)
    if dataset.load_corpus is None:
        raise MedvlpError(f"dataset {dataset.name!r} is not a pretraining corpus")
    check_options(method, request.options)
    corpus, corpus_hash = corpus_tables(dataset, request.corpus_folder)
    config = resolve_config(method, dataset, request, corpus_hash)
    config["plugins"] = pretraining_plugins(registry, config)
    return PretrainPlan(request, method, corpus, config, pretrain_key(config))


def pretraining_plugins(registry: Registry, config: Mapping[str, Any]) -> dict[str, dict]:
    """role -> provenance (name, distribution, version) of the plugins a pretraining config uses."""
    roles = {"method": ("method", config["method"]), "corpus": ("dataset", config["corpus"]),
             "image_encoder": ("encoder", config["image_encoder"])}
    if config["text_encoder"] is not None:
        roles["text_encoder"] = ("text_encoder", config["text_encoder"])
    return {role: registry.provenance(kind, name) for role, (kind, name) in roles.items()}


def check_options(method: MethodSpec, options: Mapping[str, Any]) -> None:
    """Refuse option names the method does not declare (closest names suggested) and values of the wrong type."""
    resolve_options(method.options, ("--option", options), owner=f"method {method.name!r}")


def execute(registry: Registry, plan: PretrainPlan) -> Path:
    """Train (or resume) a planned job and return its final checkpoint; a stored one is reused unless resuming.

    Runs under an exclusive lock on the output folder, so parallel runs that need the same model train it once.
    In a multi-process (DDP) pretraining only the first process (:func:`~medvlp_bench.pretraining.ranks.
    is_first_process`) takes the lock and writes ``config.json``: the others (started by Lightning's launcher, or
    by ``srun`` as SLURM tasks) go straight to training, where the first one waits for them at the DDP rendezvous
    (a lock taken by every rank would keep rank 1 waiting for rank 0, and rank 0 waiting for rank 1 in DDP).
    """
    out_dir = plan.out_dir
    if not is_first_process():
        return _train(registry, plan, out_dir, first=False)
    with exclusive_lock(out_dir.parent / f".{out_dir.name}.lock"):
        return _train(registry, plan, out_dir, first=True)


def _train(registry: Registry, plan: PretrainPlan, out_dir: Path, *, first: bool) -> Path:
    config, request = plan.config, plan.request
    stored = stored_checkpoint(plan.method.name, plan.key)
    if stored is not None and request.out_dir is None and not request.resume:
        return stored
    interrupted = request.out_dir is None and (out_dir / LAST_CHECKPOINT).is_file()
    if first:
        write_config(out_dir, {**config, "config_key": plan.key})
        encoders = " + ".join(name for name in (config["image_encoder"], config["text_encoder"]) if name)
        action = "resuming the interrupted pretraining of" if interrupted else "pretraining"
        processes = f", {request.world_size} processes" if request.world_size > 1 else ""
        print(f"medvlp-bench: {action} {plan.method.name} ({encoders}, {config['max_epochs']} epochs, "
              f"{len(plan.corpus.train)} pairs{processes}) into {out_dir}", file=sys.stderr)
    context = PretrainContext(
        method=plan.method.name,
        corpus=plan.corpus,
        image_encoder=config["image_encoder"],
        text_encoder=config["text_encoder"],
        build_image_encoder=lambda name: registry.get("encoder", name).build(),
        build_text_encoder=lambda name, vocabulary, texts: registry.get("text_encoder", name).build(vocabulary, texts),
        trainer={
            "max_epochs": config["max_epochs"], "batch_size": config["batch_size_per_device"],
            "devices": request.devices, "num_nodes": request.num_nodes, "strategy": request.strategy,
            "accelerator": request.accelerator, "precision": request.precision, "num_workers": request.num_workers,
        },
        options=config["options"],
        seed=request.seed,
        out_dir=out_dir,
        resume=request.resume or interrupted,
        image_cache_root=harness_home() / "cache" / "images",
    )
    return plan.method.pretrain(context)


def pretrain(registry: Registry, request: PretrainRequest) -> Path:
    """Plan and execute a pretraining request."""
    return execute(registry, plan_pretraining(registry, request))


def plan_for_run(
    registry: Registry, method: MethodSpec, *, data_source: str, corpus_folder: Optional[Path],
    synthetic: Optional[dict], image_encoder: str, max_epochs: Optional[int] = None,
    options: Optional[Mapping[str, Any]] = None, num_nodes: int = 1, devices: int = 1,
) -> PretrainPlan:
    """The pretraining a run of ``method`` without ``--checkpoint`` relies on: the method's profile for the data
    source with the run's image encoder. ``max_epochs`` replaces the profile's epochs; ``options`` (``run
    --method-option``) override the method's and the profile's option defaults; ``num_nodes`` x ``devices`` is the
    world size of the pretraining (its global batch, part of its key).

    On synthetic data any such pretraining can be planned; on real data only one whose epochs are named
    (``max_epochs``: a suite's ``pretrain: {epochs: N}``, ``run --pretrain-epochs N``), since pretraining on a real
    corpus takes days and must be asked for explicitly; without them a clear error says how to get weights.
    Whether a run may train the planned pretraining itself is :func:`checkpoint_for_run`'s question."""
    if data_source != "synthetic" and max_epochs is None:
        raise WeightsNotFoundError(
            f"no weights for method {method.name!r} on real data. Pass --checkpoint PATH (e.g. the authors' released "
            f"checkpoint), or pretrain first: medvlp-bench pretrain --method {method.name} --data-root DIR "
            f"(the real {method.corpus} corpus), then rerun with --checkpoint pointing at the printed model.ckpt "
            f"(or with --pretrain-epochs N naming the pretraining's epochs, which finds it in the model store)."
        )
    if data_source not in method.pretraining_profiles:
        raise WeightsNotFoundError(
            f"method {method.name!r} declares no {data_source} pretraining profile, so a run cannot plan its "
            f"pretraining: pass --checkpoint PATH, made with medvlp-bench pretrain --method {method.name} "
            f"--image-encoder NAME --text-encoder NAME --epochs N --batch-size N"
        )
    request = PretrainRequest(method=method.name, data_source=data_source, corpus_folder=corpus_folder,
                              synthetic=synthetic if data_source == "synthetic" else None,
                              image_encoder=image_encoder, max_epochs=max_epochs, options=dict(options or {}),
                              num_nodes=num_nodes, devices=devices)
    return plan_pretraining(registry, request)


def checkpoint_for_run(registry: Registry, plan: PretrainPlan) -> Path:
    """The final checkpoint of the pretraining a run relies on. A run trains it on first use only when it is a
    single-process pretraining on synthetic data; a pretraining on real data (days) or of several processes
    (DDP, under ``srun`` or Lightning's launcher) is only looked up in the model store, and when it is missing the
    error gives the ``medvlp-bench pretrain`` command that makes it (a sweep runs that command first)."""
    request = plan.request
    if request.data_source == "synthetic" and request.world_size == 1:
        return execute(registry, plan)
    stored = stored_checkpoint(plan.method.name, plan.key)
    if stored is not None:
        return stored
    why = "on real data" if request.data_source != "synthetic" else f"with {request.world_size} processes"
    launch = (f" (SLURM: under srun --nodes {request.num_nodes} --ntasks-per-node {request.devices})"
              if request.world_size > 1 else "")
    raise WeightsNotFoundError(
        f"the pretraining of method {plan.method.name!r} {why} (key {plan.key[:16]}) is not in the model store "
        f"({plan.out_dir}), and a run never trains it itself. Make it first{launch}: {pretrain_command_line(plan)}"
    )


def pretrain_command_line(plan: PretrainPlan) -> str:
    """The ``medvlp-bench pretrain`` command that trains exactly ``plan`` into the model store (its key)."""
    return shlex.join(["medvlp-bench", "pretrain", *pretrain_arguments(plan)])


def pretrain_arguments(plan: PretrainPlan) -> list[str]:
    """The arguments of ``medvlp-bench pretrain`` that plan exactly ``plan`` (same key), ending with ``--resume``
    (an interrupted pretraining continues from its last epoch); above one process, as Lightning DDP."""
    request, config = plan.request, plan.config
    words = ["--method", plan.method.name, "--image-encoder", config["image_encoder"]]
    if request.max_epochs is not None:
        words += ["--epochs", str(request.max_epochs)]
    for name, value in sorted(request.options.items()):
        words += ["--option", f"{name}={json.dumps(value)}"]
    if request.world_size > 1:
        words += ["--num-nodes", str(request.num_nodes), "--devices", str(request.devices), "--strategy", "ddp"]
    if request.data_source == "synthetic":
        synthetic = request.synthetic or {}
        words += ["--data", "synthetic", "--synthetic-seed", str(synthetic.get("seed", 0)),
                  "--synthetic-scale", repr(synthetic.get("scale", 1.0))]
    else:
        words += ["--dataset-path", f"{config['corpus']}={request.corpus_folder}"]
    return words + ["--resume"]


def synthetic_descriptor(seed: int, scale: float) -> dict:
    return {"version": SYNTHETIC_VERSION, "seed": seed, "scale": scale}
