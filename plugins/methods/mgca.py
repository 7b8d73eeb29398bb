"""Method ``mgca``: Multi-Granularity Cross-modal Alignment (Wang et al., NeurIPS 2022), pretrained here or imported.

Reimplemented from the MGCA paper (Wang et al., NeurIPS 2022) and a reading of the authors' code release
(github.com/HKU-MedAI/MGCA, "Ref" below, which has no licence: no code of it is used). The training
module is :class:`medvlp_bench_plugins.methods.mgca_module.MGCAModule`, imported only
when pretraining (this module stays light for the registry).

Objective, with v, t the normalised global image / report embeddings (128-d), P the patch and W the word
embeddings::

    L = ita_weight * L_ita + local_weight * (L_patch + L_word) + prototype_weight * L_proto

Ref's command line uses weights 1, 1, 1 (its ``lambda_1``, ``lambda_2``, ``lambda_3``). Options
(:data:`OPTIONS`, declared on the method and recorded in the pretraining config):

* ``ita_weight``, ``local_weight``, ``prototype_weight``: the loss weights (1.0 each);
* ``ita_temperature`` 0.07, ``local_temperature`` 0.1, ``prototype_temperature`` 0.2: softmax temperatures;
* ``num_prototypes`` 500, ``sinkhorn_eps`` 0.05, ``sinkhorn_iterations`` 3: the prototype layer and its
  Sinkhorn-Knopp targets; ``freeze_prototypes_epochs`` 1: the prototypes get no update in the first epoch(s);
* ``importance_quantiles`` [0.1, 0.9]: per-report clipping of word importance;
* ``report_pooling`` ``"cls"``: the report feature is the last layer's [CLS] state, as Ref; ``"mean"`` averages
  all token states instead (see ``VisionLanguageModule.report_feature``; the synthetic CPU profile's choice for a
  text tower trained from scratch);
* ``embedding_dim`` 128, ``projection_hidden_dim`` 2048: the projection heads;
* ``normalise_patch_context`` True: L2-normalise the word context of each patch (Ref does so for ResNets only;
  False reproduces its ViT runs);
* ``gather_negatives`` False: with True, InfoNCE negatives come from every DDP rank (all_gather with gradients);
  Ref uses the local batch only;
* ``distributed_sinkhorn`` False: with True, Sinkhorn-Knopp balances prototypes over the global batch;
* reference quirks, all False by default (the harness implements the intent):
  ``reference_shifted_importance`` (word t takes the [CLS]-attention of token t + 1),
  ``reference_unmasked_word_candidates`` (padded words stay candidates of the word-side matching softmax),
  ``reference_position_quirk`` (every token gets position id 0, as Ref's text tower does),
  ``reference_resnet_upsample`` (ResNet input resized bilinearly by 299/224 before the encoder, as Ref does;
  downstream tasks then see the encoder at another resolution than it was trained on);
* the optimiser options of :data:`vlp_method.OPTIMISER_OPTIONS`.

Ref keeps the final [SEP] token as a word that patches attend to and pads every report to 111 word pieces with one
shared projected padding vector; here [SEP] ends the report (it is no word) and a batch is zero-padded to its longest
report, padded words masked out of the attention and (unless ``reference_unmasked_word_candidates``) the matching.
The token-level losses therefore differ from Ref's on the same batch: on 80 held-out synthetic pairs with the
harness's synthetic MGCA model, word loss 0.142 (ours) vs 0.309 (Ref's convention) and patch loss 0.017 vs 0.131
nats, nearly all from the unmasked padding (benchmarks/perf/mgca_sep_padding.py; downstream effect unmeasured;
docs/pretraining.md).

Ref computes patch importance for ViTs from the image encoder's last-block attention; the image-encoder interface
has no attention, so patches are weighted uniformly (Ref's ResNet setting) for every encoder.
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
    OptionSpec("ita_weight", 1.0, "weight of the instance-level image-text InfoNCE loss", float),
    OptionSpec("local_weight", 1.0, "weight of the token-level (word + patch) alignment loss", float),
    OptionSpec("prototype_weight", 1.0, "weight of the prototype (swapped-prediction) loss", float),
    OptionSpec("ita_temperature", 0.07, "softmax temperature of the instance-level loss", float),
    OptionSpec("local_temperature", 0.1, "softmax temperature of the token-level loss", float),
    OptionSpec("prototype_temperature", 0.2, "softmax temperature of the prototype loss", float),
    OptionSpec("num_prototypes", 500, "number of prototypes", int),
    OptionSpec("sinkhorn_eps", 0.05, "entropy weight of the Sinkhorn-Knopp targets", float),
    OptionSpec("sinkhorn_iterations", 3, "Sinkhorn-Knopp iterations", int),
    OptionSpec("freeze_prototypes_epochs", 1, "epochs at the start in which the prototypes get no update", int),
    OptionSpec("importance_quantiles", [0.1, 0.9], "per-report quantiles that clip word importance", list),
    OptionSpec("report_pooling", "cls", "report feature: the [CLS] state or the mean token state", str,
               choices=("cls", "mean")),
    OptionSpec("embedding_dim", 128, "width of the projected embeddings", int),
    OptionSpec("projection_hidden_dim", 2048, "hidden width of the projection heads", int),
    OptionSpec("normalise_patch_context", True, "L2-normalise the word context of each patch", bool),
    OptionSpec("gather_negatives", False, "InfoNCE negatives from every DDP rank (all_gather with gradients)", bool),
    OptionSpec("distributed_sinkhorn", False, "Sinkhorn-Knopp over the global batch", bool),
    OptionSpec("reference_shifted_importance", False, "Ref quirk: word t takes the importance of token t + 1", bool),
    OptionSpec("reference_unmasked_word_candidates", False,
               "Ref quirk: padded words stay candidates of the word-side matching softmax", bool),
    OptionSpec("reference_position_quirk", False, "Ref quirk: every token gets position id 0", bool),
    OptionSpec("reference_resnet_upsample", False, "Ref quirk: ResNet input resized by 299/224 first", bool),
    *OPTIMISER_OPTIONS,
)
DEFAULT_OPTIONS = defaults_of(OPTIONS)
#: the MGCA release keeps the image backbone where our own checkpoints do (``img_encoder_q.model.``)
RELEASE_LAYOUT = CheckpointLayout("mgca", HARNESS_LAYOUT.prefixes)
LAYOUTS = (PLAIN_LAYOUT, RELEASE_LAYOUT)


def pretrain_mgca(context: PretrainContext) -> Path:
    from medvlp_bench_plugins.methods.mgca_module import MGCAModule
    from medvlp_bench_plugins.methods.vlp_module import run_pretraining

    return run_pretraining(MGCAModule, context)


def load_mgca_encoder(context: MethodContext) -> ImageEncoder:
    return load_image_encoder(context, "mgca", LAYOUTS)


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="mgca",
            description="MGCA: instance, token and prototype-level image-report alignment (NeurIPS 2022)",
            load_image_encoder=load_mgca_encoder,
            pretrain=pretrain_mgca,
            default_encoder=DEFAULT_ENCODER,
            corpus=CORPUS,
            pretraining_profiles=pretraining_profiles(OPTIONS),
            options=OPTIONS,
            checkpoint_layouts=LAYOUTS,
            load_image_text_model=image_text_loader("mgca"),
        )
    ]
