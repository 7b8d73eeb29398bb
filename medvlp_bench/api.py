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

from medvlp_bench import synthetic
from medvlp_bench.checkpoints import LoadReport, load_encoder_checkpoint, safe_load
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
from medvlp_bench.protocols.feature_cache import model_input, normalise, preferred_device
from medvlp_bench.encoder import ImageEncoder, ImageTextModel, TextEncoder, TextFeatures
from medvlp_bench.image_text import ImageTextProtocolSpec
from medvlp_bench.errors import DataError, MedvlpError, WeightsNotFoundError
from medvlp_bench.hookspecs import hookimpl
from medvlp_bench.lightning_logging import epoch_progress, quiet_lightning
from medvlp_bench.specs import (
    SAMPLE_COLUMNS,
    DatasetSpec,
    ImageEncoderSpec,
    MethodContext,
    MethodSpec,
    OptionSpec,
    PretrainContext,
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
    "SAMPLE_COLUMNS",
    "DataError",
    "DatasetSpec",
    "ImageEncoder",
    "ImageEncoderSpec",
    "ImageTextDataModule",
    "ImageTextModel",
    "ImageTextProtocolSpec",
    "LoadReport",
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
    "partition",
    "read_image",
    "safe_load",
    "synthetic",
    "write_dicom",
]
