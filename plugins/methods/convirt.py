"""Method ``convirt``: ConVIRT (Zhang et al., MLHC 2022, "Contrastive Learning of Medical Visual Representations
from Paired Images and Text"), as the MGCA reference code trains it (reference/mgca-reference.md, section 2).

Global embeddings only: the image's global feature and the report's [CLS] state go through MGCA's global
projection heads to 128-d, are L2-normalised, and enter a symmetric InfoNCE with temperature 0.07, the two
directions summed. The training module is :class:`medvlp_bench_plugins.methods.convirt_module.ConVIRTModule`,
imported only when pretraining.

Options (:data:`DEFAULT_OPTIONS`): ``temperature`` 0.07; ``report_pooling`` ``"cls"`` (the report feature is the
[CLS] state; ``"mean"`` averages all token states, see ``VisionLanguageModule.report_feature``);
``embedding_dim`` 128, ``projection_hidden_dim`` 2048; ``gather_negatives`` False (True: negatives from every DDP
rank, all_gather with gradients); the optimiser options of :data:`vlp_method.OPTIMISER_OPTIONS` (AdamW lr 2e-5,
weight decay 0.05, as Ref).

The original paper projects with Linear-ReLU-Linear to 512-d and uses temperature 0.1 with unequal direction
weights; the reported ConVIRT numbers beside MGCA's come from re-implementations like this one.
"""

from __future__ import annotations

from pathlib import Path

from medvlp_bench.api import ImageEncoder, MethodContext, MethodSpec, PretrainContext, hookimpl
from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader
from medvlp_bench_plugins.methods.vlp_method import OPTIMISER_OPTIONS, load_image_encoder

DEFAULT_OPTIONS = {
    "temperature": 0.07,
    "report_pooling": "cls",
    "embedding_dim": 128,
    "projection_hidden_dim": 2048,
    "gather_negatives": False,
    **OPTIMISER_OPTIONS,
}


def pretrain_convirt(context: PretrainContext) -> Path:
    from medvlp_bench_plugins.methods.convirt_module import ConVIRTModule
    from medvlp_bench_plugins.methods.vlp_module import run_pretraining

    return run_pretraining(ConVIRTModule, context)


def load_convirt_encoder(context: MethodContext) -> ImageEncoder:
    return load_image_encoder(context, "convirt")


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="convirt",
            description="ConVIRT: global image-report contrastive learning (InfoNCE, temperature 0.07)",
            load_image_encoder=load_convirt_encoder,
            pretrain=pretrain_convirt,
            default_text_encoder={"synthetic": "tiny_bert", "real": "bio_clinicalbert"},
            default_options=DEFAULT_OPTIONS,
            load_image_text_model=image_text_loader("convirt"),
        )
    ]
