"""Method ``convirt``: ConVIRT (Zhang et al., MLHC 2022, "Contrastive Learning of Medical Visual Representations
from Paired Images and Text"), as the MGCA code release (github.com/HKU-MedAI/MGCA) trains it as a baseline.

Global embeddings only: the image's global feature and the report's [CLS] state go through MGCA's global
projection heads to 128-d, are L2-normalised, and enter a symmetric InfoNCE with temperature 0.07, the two
directions summed. The training module is :class:`medvlp_bench_plugins.methods.convirt_module.ConVIRTModule`,
imported only when pretraining.

Options (:data:`OPTIONS`): ``temperature`` 0.07; ``report_pooling`` ``"cls"`` (the report feature is the
[CLS] state; ``"mean"`` averages all token states, see ``VisionLanguageModule.report_feature``);
``embedding_dim`` 128, ``projection_hidden_dim`` 2048; ``gather_negatives`` False (True: negatives from every DDP
rank, all_gather with gradients); the optimiser options of :data:`vlp_method.OPTIMISER_OPTIONS` (AdamW lr 2e-5,
weight decay 0.05, as the MGCA release).

The original paper projects with Linear-ReLU-Linear to 512-d and uses temperature 0.1 with unequal direction
weights; the reported ConVIRT numbers beside MGCA's come from re-implementations like this one.
"""

from __future__ import annotations

from pathlib import Path

from medvlp_bench.api import (
    PLAIN_LAYOUT,
    CheckpointLayout,
    ImageEncoder,
    MethodContext,
    MethodSpec,
    OptionSpec,
    PretrainContext,
    hookimpl,
)
from medvlp_bench_plugins.methods.vlp_method import (
    CORPUS,
    DEFAULT_ENCODER,
    HARNESS_LAYOUT,
    OPTIMISER_OPTIONS,
    defaults_of,
    load_image_encoder,
    pretraining_profiles,
)
from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader

OPTIONS = (
    OptionSpec("temperature", 0.07, "softmax temperature of the symmetric InfoNCE", float),
    OptionSpec("report_pooling", "cls", "report feature: the [CLS] state or the mean token state", str,
               choices=("cls", "mean")),
    OptionSpec("embedding_dim", 128, "width of the projected embeddings", int),
    OptionSpec("projection_hidden_dim", 2048, "hidden width of the projection heads", int),
    OptionSpec("gather_negatives", False, "InfoNCE negatives from every DDP rank (all_gather with gradients)", bool),
    *OPTIMISER_OPTIONS,
)
DEFAULT_OPTIONS = defaults_of(OPTIONS)
#: the ConVIRT re-implementation's release keeps the backbone under ``img_encoder.model.`` (or bare)
RELEASE_LAYOUT = CheckpointLayout("convirt", ("img_encoder.model.", ""))
LAYOUTS = (PLAIN_LAYOUT, HARNESS_LAYOUT, RELEASE_LAYOUT)


def pretrain_convirt(context: PretrainContext) -> Path:
    from medvlp_bench_plugins.methods.convirt_module import ConVIRTModule
    from medvlp_bench_plugins.methods.vlp_module import run_pretraining

    return run_pretraining(ConVIRTModule, context)


def load_convirt_encoder(context: MethodContext) -> ImageEncoder:
    return load_image_encoder(context, "convirt", LAYOUTS)


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="convirt",
            description="ConVIRT: global image-report contrastive learning (InfoNCE, temperature 0.07)",
            load_image_encoder=load_convirt_encoder,
            pretrain=pretrain_convirt,
            default_encoder=DEFAULT_ENCODER,
            corpus=CORPUS,
            pretraining_profiles=pretraining_profiles(OPTIONS),
            options=OPTIONS,
            checkpoint_layouts=LAYOUTS,
            load_image_text_model=image_text_loader("convirt"),
        )
    ]
