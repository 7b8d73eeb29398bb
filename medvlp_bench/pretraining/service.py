"""Pretraining requests: resolve a method's pretraining config, find it in the model store, or train and store it.

Used by ``medvlp-bench pretrain`` and by the runner when a method needs weights that are not given with
``--checkpoint`` (see :func:`plan_for_run`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from medvlp_bench.data.locations import SYNTHETIC_VERSION, harness_home
from medvlp_bench.data.splits import split_hash
from medvlp_bench.data.synthetic_store import exclusive_lock
from medvlp_bench.errors import MedvlpError, WeightsNotFoundError
from medvlp_bench.pretraining.model_store import pretrain_key, store_folder, stored_checkpoint, write_config
from medvlp_bench.registry import Registry
from medvlp_bench.specs import DatasetSpec, MethodSpec, PretrainContext, SplitTables

#: the CPU profile used on the synthetic corpus (see the README's "Synthetic pretraining profile"): randomly
#: initialised encoders need a higher learning rate than the reference's (lr 2e-5 from pretrained weights) and,
#: with a few hundred steps, a short warm-up; a text tower trained from scratch gathers a report into [CLS] only
#: slowly, so the report feature is the mean token state. Each option applies to the methods that have it.
SYNTHETIC_PRETRAINING = {
    "max_epochs": 4,
    "batch_size": 64,
    "options": {"learning_rate": 1e-3, "warmup_fraction": 0.05, "report_pooling": "mean", "projection_hidden_dim": 512},
}
REAL_PRETRAINING = {"max_epochs": 50, "batch_size": 72, "options": {}}
DEFAULT_CORPUS = "mimic_cxr"


@dataclass
class PretrainRequest:
    """A pretraining job (see ``medvlp-bench pretrain --help``); ``None`` fields take the method's defaults."""

    method: str
    corpus: str = DEFAULT_CORPUS
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


def _defaults(request: PretrainRequest) -> dict:
    return SYNTHETIC_PRETRAINING if request.data_source == "synthetic" else REAL_PRETRAINING


def resolve_config(method: MethodSpec, dataset: DatasetSpec, request: PretrainRequest, corpus_hash: str) -> dict:
    """The pretraining config that identifies a model: everything that changes the learnt weights."""
    defaults = _defaults(request)
    image_encoder = request.image_encoder or ("resnet18_64" if request.data_source == "synthetic" else "resnet50")
    text_encoder = request.text_encoder or method.default_text_encoder.get(request.data_source)
    if text_encoder is None:
        raise MedvlpError(f"method {method.name!r} names no default text encoder; pass --text-encoder")
    batch_size = request.batch_size or defaults["batch_size"]
    return {
        "method": method.name,
        "corpus": dataset.name,
        "data_source": request.data_source,
        "synthetic": request.synthetic if request.data_source == "synthetic" else None,
        "corpus_hash": corpus_hash,
        "image_encoder": image_encoder,
        "text_encoder": text_encoder,
        "max_epochs": request.max_epochs or defaults["max_epochs"],
        "batch_size_per_device": batch_size,
        "global_batch_size": batch_size * request.devices * request.num_nodes,
        "precision": request.precision,
        "seed": request.seed,
        "options": {
            **dict(method.default_options),
            **{name: value for name, value in defaults["options"].items() if name in method.default_options},
            **request.options,
        },
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


#: (corpus name, its load_corpus, folder) -> tables; see :func:`corpus_tables`
_CORPORA: dict[tuple, SplitTables] = {}


def corpus_tables(dataset: DatasetSpec, folder: Optional[Path]) -> SplitTables:
    """``dataset.load_corpus(folder)``, memoised within the process per dataset and folder (planning many runs that
    rely on one pretraining reads the corpus tables once). The tables are shared: callers must not modify them."""
    memo_key = (dataset.name, dataset.load_corpus, str(Path(folder).resolve()) if folder is not None else None)
    if memo_key not in _CORPORA:
        _CORPORA[memo_key] = dataset.load_corpus(folder)
    return _CORPORA[memo_key]


def plan_pretraining(registry: Registry, request: PretrainRequest) -> PretrainPlan:
    """Resolve specs, corpus and config of a pretraining request (cheap: reads the corpus tables only)."""
    method = registry.get("method", request.method)
    if method.pretrain is None:
        raise MedvlpError(f"method {method.name!r} does not pretrain (it has no pretraining stage)")
    dataset = registry.get("dataset", request.corpus)
    if dataset.load_corpus is None:
        raise MedvlpError(f"dataset {dataset.name!r} is not a pretraining corpus")
    corpus = corpus_tables(dataset, request.corpus_folder)
    config = resolve_config(method, dataset, request, split_hash(corpus))
    return PretrainPlan(request, method, corpus, config, pretrain_key(config))


def execute(registry: Registry, plan: PretrainPlan) -> Path:
    """Train (or resume) a planned job and return its final checkpoint; a stored one is reused unless resuming.

    Runs under an exclusive lock on the output folder, so parallel runs that need the same model train it once.
    The worker processes that Lightning's DDP launcher starts (``LOCAL_RANK`` > 0) re-enter here while the main
    process holds the lock; they train without taking it.
    """
    out_dir = plan.out_dir
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return _train(registry, plan, out_dir)
    with exclusive_lock(out_dir.parent / f".{out_dir.name}.lock"):
        return _train(registry, plan, out_dir)


def _train(registry: Registry, plan: PretrainPlan, out_dir: Path) -> Path:
    config, request = plan.config, plan.request
    stored = stored_checkpoint(plan.method.name, plan.key)
    if stored is not None and request.out_dir is None and not request.resume:
        return stored
    write_config(out_dir, {**config, "config_key": plan.key})
    print(f"medvlp-bench: pretraining {plan.method.name} ({config['image_encoder']} + {config['text_encoder']}, "
          f"{config['max_epochs']} epochs, {len(plan.corpus.train)} pairs) into {out_dir}", file=sys.stderr)
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
        resume=request.resume,
        image_cache_root=harness_home() / "cache" / "images",
    )
    return plan.method.pretrain(context)


def pretrain(registry: Registry, request: PretrainRequest) -> Path:
    """Plan and execute a pretraining request."""
    return execute(registry, plan_pretraining(registry, request))


def plan_for_run(
    registry: Registry, method: MethodSpec, *, data_source: str, corpus_folder: Optional[Path],
    synthetic: Optional[dict], image_encoder: str, max_epochs: Optional[int] = None,
) -> PretrainPlan:
    """The pretraining a run of ``method`` without ``--checkpoint`` relies on: the default profile on synthetic data
    (found in the model store, or trained and stored); on real data a clear error, since pretraining MIMIC-CXR
    takes days and must be asked for explicitly. ``max_epochs`` replaces the profile's epochs."""
    if data_source != "synthetic":
        raise WeightsNotFoundError(
            f"no weights for method {method.name!r} on real data. Pass --checkpoint PATH (e.g. the authors' released "
            f"checkpoint), or pretrain first: medvlp-bench pretrain --method {method.name} --data-root DIR "
            f"(MIMIC-CXR-JPG + reports), then rerun with --checkpoint pointing at the printed model.ckpt."
        )
    request = PretrainRequest(method=method.name, data_source="synthetic", corpus_folder=corpus_folder,
                              synthetic=synthetic, image_encoder=image_encoder, max_epochs=max_epochs)
    return plan_pretraining(registry, request)


def synthetic_descriptor(seed: int, scale: float) -> dict:
    return {"version": SYNTHETIC_VERSION, "seed": seed, "scale": scale}
