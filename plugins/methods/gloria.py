"""Method ``gloria``: GLoRIA (Huang et al., ICCV 2021, "GLoRIA: A Multimodal Global-Local Representation Learning
Framework for Label-efficient Medical Image Recognition"), reimplemented from a reading of the authors' code
(github.com/marshuang80/gloria); the losses are :mod:`medvlp_bench_plugins.methods.gloria_losses`. The training
module is :class:`medvlp_bench_plugins.methods.gloria_module.GloriaModule`, imported only when pretraining.

Model: the image side is projected to the text encoder's width D (GLoRIA: 768, BERT's); the text side is used as
the encoder gives it. Global image embedding = Linear(global feature) (B, D); regions = the local tokens (ResNet:
layer3, the 19x19 map at 299 px) through a bias-free linear map (GLoRIA's 1x1 convolution) (B, N, D); words =
word pieces summed into words (B, W, D); report = mean of the report's token states, [CLS] to [SEP] (GLoRIA's
sentence embedding up to a per-report scale, which its cosine-based global loss ignores). Objective::

    L = global_weight * (L_global,i->t + L_global,t->i) + local_weight * (L_local,i->t + L_local,t->i)

Options (:data:`OPTIONS`): ``global_weight`` 1.0, ``local_weight`` 1.0; GLoRIA's temp1, temp2, temp3 as
``region_attention_scale`` 4.0, ``word_match_scale`` 5.0, ``logit_scale`` 10.0 (all multiply similarities);
``word_aggregation`` "sum" (log-sum-exp of word matches per report; "mean" subtracts log(word count));
``embedding_batch_norm`` False (True in the synthetic profile: g, s, regions and words pass a BatchNorm1d
without affine parameters, as MGCA's and ConVIRT's projection heads end; see
:class:`~medvlp_bench_plugins.methods.vlp_heads.GloriaEmbeddingNorms`); reference quirks, False by default:
``reference_cls_as_word`` ([CLS] joins the words of the local loss, as the authors' caption lengths make it) and ``reference_resnet_upsample`` (ResNet input resized by 299/224 first); the
optimiser options of :data:`vlp_method.OPTIMISER_OPTIONS` (the harness trains every method alike; the authors
used Adam lr 5e-5, weight decay 1e-6, gradient clipping 0.25 and a plateau schedule).

Differences from the authors' code: their words and report embedding sum BERT's last 4 layers, here the text
encoder's last layer is used (the text-encoder interface gives that layer only).
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
    OptionSpec("global_weight", 1.0, "weight of the global image-report loss", float),
    OptionSpec("local_weight", 1.0, "weight of the word-region loss", float),
    OptionSpec("region_attention_scale", 4.0, "GLoRIA's temp1: scale of word-to-region attention", float),
    OptionSpec("word_match_scale", 5.0, "GLoRIA's temp2: scale of word matches aggregated per report", float),
    OptionSpec("logit_scale", 10.0, "GLoRIA's temp3: scale of the similarities entering the softmax", float),
    OptionSpec("word_aggregation", "sum", "log-sum-exp of word matches ('sum') or minus log(word count) ('mean')",
               str, choices=("sum", "mean")),
    OptionSpec("embedding_batch_norm", False, "batch-normalise the four embeddings (synthetic profile: a random "
               "text tower's report embeddings are nearly collinear)", bool),
    OptionSpec("reference_cls_as_word", False, "authors' quirk: [CLS] joins the words of the local loss", bool),
    OptionSpec("reference_resnet_upsample", False, "authors' quirk: ResNet input resized by 299/224 first", bool),
    *OPTIMISER_OPTIONS,
)
DEFAULT_OPTIONS = defaults_of(OPTIONS)
#: the authors' release keeps the image backbone under ``gloria.img_encoder.model.``
RELEASE_LAYOUT = CheckpointLayout("gloria", ("gloria.img_encoder.model.",))
LAYOUTS = (PLAIN_LAYOUT, HARNESS_LAYOUT, RELEASE_LAYOUT)


def pretrain_gloria(context: PretrainContext) -> Path:
    from medvlp_bench_plugins.methods.gloria_module import GloriaModule
    from medvlp_bench_plugins.methods.vlp_module import run_pretraining

    return run_pretraining(GloriaModule, context)


def load_gloria_encoder(context: MethodContext) -> ImageEncoder:
    return load_image_encoder(context, "gloria", LAYOUTS)


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="gloria",
            description="GLoRIA: global and attention-weighted word-region contrastive learning (ICCV 2021)",
            load_image_encoder=load_gloria_encoder,
            pretrain=pretrain_gloria,
            default_encoder=DEFAULT_ENCODER,
            corpus=CORPUS,
            pretraining_profiles=pretraining_profiles(OPTIONS),
            options=OPTIONS,
            checkpoint_layouts=LAYOUTS,
            load_image_text_model=image_text_loader("gloria"),
        )
    ]
