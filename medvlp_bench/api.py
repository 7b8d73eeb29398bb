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

from medvlp_bench import synthetic
from medvlp_bench.data.dicom_writer import write_dicom
from medvlp_bench.data.image_io import read_image
from medvlp_bench.data.splits import partition
from medvlp_bench.encoder import ImageEncoder, TextEncoder, TextFeatures
from medvlp_bench.errors import DataError, MedvlpError, WeightsNotFoundError
from medvlp_bench.hookspecs import hookimpl
from medvlp_bench.specs import (
    SAMPLE_COLUMNS,
    DatasetSpec,
    ImageEncoderSpec,
    MethodContext,
    MethodSpec,
    PretrainContext,
    ProtocolInputs,
    ProtocolResult,
    ProtocolSpec,
    SplitTables,
    TaskSpec,
    TextEncoderSpec,
)

__all__ = [
    "SAMPLE_COLUMNS",
    "DataError",
    "DatasetSpec",
    "ImageEncoder",
    "ImageEncoderSpec",
    "MedvlpError",
    "MethodContext",
    "MethodSpec",
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
    "hookimpl",
    "partition",
    "read_image",
    "synthetic",
    "write_dicom",
]
