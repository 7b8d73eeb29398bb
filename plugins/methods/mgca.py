"""Method ``mgca``: Multi-Granularity Cross-modal Alignment (Wang et al., NeurIPS 2022), pretrained here or imported.

Reimplemented from the facts in reference/mgca-reference.md, section 1 (no code of the reference, "Ref", which has
no licence). The training module is :class:`medvlp_bench_plugins.methods.mgca_module.MGCAModule`, imported only
when pretraining (this module stays light for the registry).

Objective, with v, t the normalised global image / report embeddings (128-d), P the patch and W the word
embeddings::

    L = ita_weight * L_ita + local_weight * (L_patch + L_word) + prototype_weight * L_proto

Ref's command line uses weights 1, 1, 1 (its ``lambda_1``, ``lambda_2``, ``lambda_3``). Options
(:data:`DEFAULT_OPTIONS`, recorded in the pretraining config):

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

Ref computes patch importance for ViTs from the image encoder's last-block attention; the image-encoder interface
has no attention, so patches are weighted uniformly (Ref's ResNet setting) for every encoder.
"""

from __future__ import annotations

from pathlib import Path

from medvlp_bench.api import ImageEncoder, MethodContext, MethodSpec, PretrainContext, hookimpl
from medvlp_bench_plugins.methods.image_text_loaders import image_text_loader
from medvlp_bench_plugins.methods.vlp_method import OPTIMISER_OPTIONS, load_image_encoder

DEFAULT_OPTIONS = {
    "ita_weight": 1.0,
    "local_weight": 1.0,
    "prototype_weight": 1.0,
    "ita_temperature": 0.07,
    "local_temperature": 0.1,
    "prototype_temperature": 0.2,
    "num_prototypes": 500,
    "sinkhorn_eps": 0.05,
    "sinkhorn_iterations": 3,
    "freeze_prototypes_epochs": 1,
    "importance_quantiles": [0.1, 0.9],
    "report_pooling": "cls",
    "embedding_dim": 128,
    "projection_hidden_dim": 2048,
    "normalise_patch_context": True,
    "gather_negatives": False,
    "distributed_sinkhorn": False,
    "reference_shifted_importance": False,
    "reference_unmasked_word_candidates": False,
    "reference_position_quirk": False,
    "reference_resnet_upsample": False,
    **OPTIMISER_OPTIONS,
}


def pretrain_mgca(context: PretrainContext) -> Path:
    from medvlp_bench_plugins.methods.mgca_module import MGCAModule
    from medvlp_bench_plugins.methods.vlp_module import run_pretraining

    return run_pretraining(MGCAModule, context)


def load_mgca_encoder(context: MethodContext) -> ImageEncoder:
    return load_image_encoder(context, "mgca")


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="mgca",
            description="MGCA: instance, token and prototype-level image-report alignment (NeurIPS 2022)",
            load_image_encoder=load_mgca_encoder,
            pretrain=pretrain_mgca,
            default_text_encoder={"synthetic": "tiny_bert", "real": "bio_clinicalbert"},
            default_options=DEFAULT_OPTIONS,
            load_image_text_model=image_text_loader("mgca"),
        )
    ]
