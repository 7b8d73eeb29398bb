"""The spec types that plugins return from their hooks (see :mod:`medvlp_bench.hookspecs`).

A plugin describes what it offers with these frozen dataclasses; the core only ever calls the callables they
carry, so a plugin never needs to subclass anything of the core except :class:`~medvlp_bench.encoder.ImageEncoder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Sequence

import pandas as pd

from medvlp_bench.encoder import ImageEncoder, TextEncoder

#: columns every sample table has; tasks add their target columns (see :class:`TaskSpec`)
SAMPLE_COLUMNS = ("sample_id", "image_path", "source_file", "source_row")


@dataclass(frozen=True)
class ImageEncoderSpec:
    """An image-encoder architecture.

    ``build()`` returns a freshly (randomly) initialised encoder; ``load_imagenet(encoder)`` loads ImageNet
    weights from a local cache into it, or raises :class:`~medvlp_bench.errors.WeightsNotFoundError` saying where
    to put them (nothing is downloaded). ``None`` means the architecture has no ImageNet weights.
    """

    name: str
    description: str
    build: Callable[[], ImageEncoder]
    load_imagenet: Optional[Callable[[ImageEncoder], None]] = None


@dataclass(frozen=True)
class TextEncoderSpec:
    """A text-encoder architecture.

    ``build(vocabulary, corpus)`` returns a text encoder. Encoders with a fixed pretrained vocabulary ignore both.
    Encoders that learn their WordPiece vocabulary train it on ``corpus`` (an iterable of report texts) when
    ``vocabulary`` is ``None``, and otherwise rebuild exactly from ``vocabulary`` (the token list saved with a
    checkpoint, index = token id), so a stored model reloads without its corpus.
    """

    name: str
    description: str
    build: Callable[[Optional[Sequence[str]], Optional[Iterable[str]]], TextEncoder]


@dataclass(frozen=True)
class OptionSpec:
    """A declared option of a method or a protocol: its name, default, type and help.

    ``type`` is the Python type a value must have, or a tuple of accepted types (``None``: the default's type;
    ``float`` options accept ints); ``choices`` limits the values. Unknown names are refused before any work, with
    the closest declared names (validation: :func:`medvlp_bench.options.resolve_options`).
    """

    name: str
    default: Any
    help: str
    type: Optional[type] = None
    choices: Optional[tuple] = None


@dataclass(frozen=True)
class CheckpointLayout:
    """Where a method's checkpoints (its own, or the authors' release) keep the image backbone.

    ``prefixes``: key prefixes tried in order; stripping one leaves the encoder's backbone parameter names
    (torchvision / timm names, under the encoder's ``model.``). ``filter(state_dict) -> state_dict`` instead maps a
    checkpoint's tensors to backbone names itself (as timm keeps ``checkpoint_filter_fn`` beside each model family).
    """

    name: str
    prefixes: tuple[str, ...] = ()
    filter: Optional[Callable[[Mapping[str, Any]], Mapping[str, Any]]] = None


@dataclass(frozen=True)
class PretrainingProfile:
    """A method's default pretraining on one data source (``"synthetic"`` or ``"real"``).

    ``text_encoder`` is ``None`` for an image-only method. ``options`` override the method's option defaults.
    """

    image_encoder: str
    text_encoder: Optional[str]
    max_epochs: int
    batch_size: int
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodContext:
    """What the runner hands a method when it asks for an image encoder."""

    encoder: str
    build_encoder: Callable[[str], ImageEncoder]
    load_imagenet: Callable[[str, ImageEncoder], None]
    checkpoint: Optional[Path]
    seed: int
    data_source: Literal["synthetic", "real"]
    home: Path
    trust_checkpoint: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PretrainContext:
    """Everything a method's ``pretrain`` needs.

    ``corpus``: train / val (/ test) tables of image-report pairs (SAMPLE_COLUMNS + ``text``).
    ``trainer``: Lightning settings (``max_epochs``, ``batch_size``, ``devices``, ``strategy``, ``num_nodes``,
    ``precision``, ``accelerator``, ``num_workers``). ``options``: method options (recorded in the config).
    ``out_dir``: where checkpoints (``checkpoints/last.ckpt``), logs and ``config.json`` go; ``resume``: continue
    from ``checkpoints/last.ckpt`` when present (set by ``pretrain --resume`` and when the model store holds an
    interrupted run of the same config). ``text_encoder`` is ``None`` for an image-only method.
    ``pretrain`` returns the path of the final checkpoint.
    """

    method: str
    corpus: "SplitTables"
    image_encoder: str
    text_encoder: Optional[str]
    build_image_encoder: Callable[[str], ImageEncoder]
    build_text_encoder: Callable[[str, Optional[Sequence[str]], Optional[Iterable[str]]], TextEncoder]
    trainer: Mapping[str, Any]
    options: Mapping[str, Any]
    seed: int
    out_dir: Path
    resume: bool
    image_cache_root: Path


@dataclass(frozen=True)
class MethodSpec:
    """A pretraining method (or baseline) that yields image encoders, described completely.

    ``load_image_encoder(context)`` returns the encoder, with the weights of ``context.checkpoint`` when given.
    ``default_encoder``: image encoder per data source when the user names none. Methods that pretrain set
    ``pretrain(context) -> checkpoint path``, ``corpus`` (the dataset they pretrain on) and
    ``pretraining_profiles`` (data source -> :class:`PretrainingProfile`). ``options`` declares the method's
    options (names, defaults, types, help). ``checkpoint_layouts`` are the layouts its checkpoints use, for import.
    ``load_image_text_model(context)`` (optional) returns the image-text model (zero-shot, retrieval).
    """

    name: str
    description: str
    load_image_encoder: Callable[[MethodContext], ImageEncoder]
    pretrain: Optional[Callable[[PretrainContext], Path]] = None
    default_encoder: Mapping[str, str] = field(default_factory=dict)
    corpus: Optional[str] = None
    pretraining_profiles: Mapping[str, PretrainingProfile] = field(default_factory=dict)
    options: tuple[OptionSpec, ...] = ()
    checkpoint_layouts: tuple[CheckpointLayout, ...] = ()
    load_image_text_model: Optional[Callable[[MethodContext], Any]] = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset in its original raw layout.

    ``folder`` is the folder name under a data root (``--data-root``) that holds the raw download.
    ``check(folder)`` returns the problems found in a raw download (empty list = valid).
    ``write_synthetic(folder, seed, scale)`` writes a synthetic twin in the same raw layout (``None`` if it has
    none); ``scale`` multiplies the default number of images (tests use small scales).
    ``load_corpus(folder)`` returns image-report pairs for pretraining (``None`` if the dataset is no corpus):
    tables with SAMPLE_COLUMNS + ``text``.
    """

    name: str
    title: str
    citation: str
    url: str
    folder: str
    check: Callable[[Path], list[str]]
    write_synthetic: Optional[Callable[[Path, int, float], None]] = None
    load_corpus: Optional[Callable[[Path], "SplitTables"]] = None


@dataclass(frozen=True)
class SplitTables:
    """The train / val / test sample tables of a task (columns: SAMPLE_COLUMNS + the task's targets)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def items(self):
        return (("train", self.train), ("val", self.val), ("test", self.test))


@dataclass(frozen=True)
class TaskSpec:
    """A downstream task: a dataset, its splits and targets, and the protocol that evaluates it.

    Targets: ``target="binary"`` or ``"multilabel"``: one 0/1 column per name in ``label_names``;
    ``target="multiclass"``: one integer column ``label`` indexing ``label_names``;
    ``target="boxes"`` (detection): a column ``boxes``, per row a list of ``[x, y, w, h]`` in original image pixels
    (top-left corner, width, height; empty list = no object), one class per task (``label_names``);
    ``target="mask"`` (segmentation): ``load_mask(row)`` returns the row's (H, W) bool mask at the original image size.
    ``target="report"`` (image-report retrieval): a column ``text``, the row's report; ``label_names`` is empty.
    Tasks of protocols that train nothing (zero-shot, retrieval) may have empty train and val tables.
    ``load_splits(folder)`` reads the raw download in ``folder`` and returns the derived splits;
    ``split_rule`` says in words how (seeds included), and is recorded with every run.
    ``hparams`` are this task's overrides of its protocol's option defaults (only what differs).
    """

    name: str
    dataset: str
    protocol: str
    description: str
    load_splits: Callable[[Path], SplitTables]
    label_names: tuple[str, ...]
    target: Literal["binary", "multilabel", "multiclass", "boxes", "mask", "report"]
    primary_metric: str
    higher_is_better: bool = True
    split_rule: str = ""
    hparams: Mapping[str, Any] = field(default_factory=dict)
    load_mask: Optional[Callable[[pd.Series], Any]] = None


@dataclass(frozen=True)
class ProtocolInputs:
    """Everything a protocol needs for one run."""

    task: TaskSpec
    encoder: ImageEncoder
    encoder_key: str
    splits: SplitTables
    seed: int
    hparams: Mapping[str, Any]
    cache_dir: Path
    work_dir: Path
    pct: float = 1.0


@dataclass(frozen=True)
class ProtocolResult:
    """Metrics of one run (name -> value, fractions in [0, 1]) and the sizes of the splits used.

    ``outputs``: the per-sample test outputs (name -> numpy array) in the layout of
    :mod:`medvlp_bench.sample_outputs`, saved beside the record; ``None`` when the protocol keeps none.
    """

    metrics: Mapping[str, float]
    n_train: int
    n_val: int
    n_test: int
    details: Mapping[str, Any] = field(default_factory=dict)
    outputs: Optional[Mapping[str, Any]] = None


@dataclass(frozen=True)
class ProtocolSpec:
    """A downstream evaluation protocol (linear probe, detection, segmentation, ...).

    ``options``: the declared options with their defaults; a task overrides some (``TaskSpec.hparams``) and
    ``run --option`` others; any other name is refused before data is read. ``version``: bump it when a change
    alters results, so records made by the old code are not reused. ``targets``: the task target kinds it
    accepts; ``metrics``: the metric names it returns (a per-label value is named ``{metric}_{label}`` after one of
    them, e.g. ``auroc_Edema``)."""

    name: str
    description: str
    run: Callable[[ProtocolInputs], ProtocolResult]
    options: Optional[tuple] = None
    version: str = "1"
    targets: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
