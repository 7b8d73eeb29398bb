"""The public API for plugins. A plugin imports from here and nowhere else in the core.

Example (a method plugin)::

    from medvlp_bench.api import hookimpl, MethodSpec

    def _load(context):
        encoder = context.build_encoder(context.encoder)
        ...  # load your weights into it
        return encoder

    @hookimpl
    def medvlp_bench_methods():
        return [MethodSpec(name="mymethod", description="...", load_image_encoder=_load)]
"""

import importlib

from medvlp_bench.checkpoints import PLAIN_LAYOUT, LoadReport, load_encoder_checkpoint, safe_load
from medvlp_bench.data.array_cache import cached_array
from medvlp_bench.data.dicom_writer import write_dicom
from medvlp_bench.data.image_cache import (
    letterbox,
    letterbox_geometry,
    prepare_images,
    prepared_side,
    prepared_sizes,
)
from medvlp_bench.data.image_io import read_image
from medvlp_bench.data.splits import partition
from medvlp_bench.data.synthetic_store import begin_synthetic_folder, finish_synthetic_folder, read_synthetic_marker
from medvlp_bench.protocols.feature_cache import model_input, normalise, preferred_device
from medvlp_bench.protocols.head_training import HeadFitSettings, fit_head, seed_head_training
from medvlp_bench.protocols.hparams import resolved_hparams
from medvlp_bench.protocols.sample_arrays import classification_arrays, identity_arrays
from medvlp_bench.encoder import ImageEncoder, ImageTextModel, TextEncoder, TextFeatures
from medvlp_bench.image_text import ImageTextProtocolSpec
from medvlp_bench.errors import DataError, MedvlpError, WeightsNotFoundError
from medvlp_bench.hookspecs import hookimpl
from medvlp_bench.lightning_logging import epoch_progress, quiet_lightning
from medvlp_bench.options import OptionError, option_defaults, resolve_options
from medvlp_bench.specs import (
    SAMPLE_COLUMNS,
    CheckpointLayout,
    DatasetSpec,
    ImageEncoderSpec,
    MethodContext,
    MethodSpec,
    OptionSpec,
    PretrainContext,
    PretrainingProfile,
    ProtocolInputs,
    ProtocolResult,
    ProtocolSpec,
    SplitTables,
    TaskSpec,
    TextEncoderSpec,
)

#: Pretraining machinery, imported on first access: it needs Lightning, which plugins that never pretrain skip.
_LAZY_EXPORTS = {
    "ImageTextDataModule": "medvlp_bench.pretraining.image_text_data",
    "fit_pretraining": "medvlp_bench.pretraining.fit",
}


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "cached_array",
    "classification_arrays",
    "identity_arrays",
    "resolved_hparams",
    "HeadFitSettings",
    "fit_head",
    "seed_head_training",
    "OptionSpec",
    "letterbox",
    "letterbox_geometry",
    "model_input",
    "normalise",
    "preferred_device",
    "quiet_lightning",
    "epoch_progress",
    "prepare_images",
    "prepared_side",
    "prepared_sizes",
    "PLAIN_LAYOUT",
    "SAMPLE_COLUMNS",
    "CheckpointLayout",
    "OptionSpec",
    "PretrainingProfile",
    "DataError",
    "DatasetSpec",
    "ImageEncoder",
    "ImageEncoderSpec",
    "ImageTextDataModule",
    "ImageTextModel",
    "ImageTextProtocolSpec",
    "LoadReport",
    "OptionError",
    "MedvlpError",
    "MethodContext",
    "MethodSpec",
    "OptionSpec",
    "PretrainContext",
    "ProtocolInputs",
    "ProtocolResult",
    "ProtocolSpec",
    "SplitTables",
    "TaskSpec",
    "TextEncoder",
    "TextEncoderSpec",
    "TextFeatures",
    "WeightsNotFoundError",
    "fit_pretraining",
    "hookimpl",
    "load_encoder_checkpoint",
    "option_defaults",
    "resolve_options",
    "partition",
    "read_image",
    "safe_load",
    "begin_synthetic_folder",
    "finish_synthetic_folder",
    "read_synthetic_marker",
    "write_dicom",
]
