"""What the vision-language method plugins (MGCA, ConVIRT, GLoRIA) share outside training.

This module stays light (no Lightning, no transformers): it is imported whenever the registry loads the plugins,
and by every downstream run that only needs an image encoder.

* :data:`OPTIMISER_OPTIONS`: the optimisation options every method declares (the settings of the MGCA code release,
  github.com/HKU-MedAI/MGCA): AdamW lr 2e-5, betas (0.9, 0.999), weight decay 0.05; cosine schedule with a
  linear warm-up over the first 40 % of optimiser steps, from and down to 1e-8.
* :func:`pretraining_profiles`: the synthetic CPU profile and the paper's profile on real data, per method;
  :data:`HARNESS_LAYOUT`: the layout of our own checkpoints, which every method reads.
* :func:`load_image_encoder`: the image encoder with a checkpoint's backbone weights, for the runner;
  :func:`vlp_image_encoder`: a fresh encoder with the methods' input normalisation (mean = std = 0.5).
"""

from __future__ import annotations

import sys
from typing import Sequence

from medvlp_bench.api import (
    CheckpointLayout,
    ImageEncoder,
    MedvlpError,
    MethodContext,
    OptionSpec,
    PretrainingProfile,
    load_encoder_checkpoint,
)

#: per-channel input normalisation of the vision-language methods' image encoders (reference: mean = std = 0.5)
VLP_NORMALISATION = (0.5, 0.5, 0.5)

OPTIMISER_OPTIONS = (
    OptionSpec("learning_rate", 2e-5, "peak AdamW learning rate", float),
    OptionSpec("weight_decay", 0.05, "AdamW weight decay", float),
    OptionSpec("warmup_fraction", 0.4, "fraction of optimiser steps of linear warm-up before the cosine decay", float),
    OptionSpec("min_learning_rate", 1e-8, "learning rate at the start of warm-up and the end of the decay", float),
)

#: the image encoders of the methods' quick CPU profile (synthetic data) and of the papers (real data)
DEFAULT_ENCODER = {"synthetic": "resnet18_64", "real": "resnet50"}
#: the dataset the vision-language methods pretrain on
CORPUS = "mimic_cxr"

#: our own checkpoints keep the image encoder as ``img_encoder_q`` (the MGCA release's layout too)
HARNESS_LAYOUT = CheckpointLayout("harness", ("img_encoder_q.model.",))

#: the synthetic CPU profile (see the README's "Synthetic pretraining profile"): randomly initialised encoders need a
#: higher learning rate than the papers' (lr 2e-5 from pretrained weights) and, with a few hundred steps, a short
#: warm-up; a text tower trained from scratch gathers a report into [CLS] only slowly, so the report feature is the
#: mean token state. Each option applies to the methods that declare it.
SYNTHETIC_PROFILE_OPTIONS = {
    "learning_rate": 1e-3, "warmup_fraction": 0.05, "report_pooling": "mean", "projection_hidden_dim": 512,
    "embedding_batch_norm": True,
}


def defaults_of(options: Sequence[OptionSpec]) -> dict:
    """name -> default of declared options (what the training modules complete their options from)."""
    return {option.name: option.default for option in options}


def pretraining_profiles(options: Sequence[OptionSpec]) -> dict[str, PretrainingProfile]:
    """The profiles of a vision-language method with ``options``: the synthetic CPU profile (ResNet-18 at 64 px,
    tiny BERT, 4 epochs of batch 64, :data:`SYNTHETIC_PROFILE_OPTIONS` it declares) and the papers' profile on
    MIMIC-CXR (ResNet-50, Bio_ClinicalBERT, 50 epochs of batch 72, the method's defaults)."""
    declared = {option.name for option in options}
    synthetic = {name: value for name, value in SYNTHETIC_PROFILE_OPTIONS.items() if name in declared}
    return {
        "synthetic": PretrainingProfile("resnet18_64", "tiny_bert", max_epochs=4, batch_size=64, options=synthetic),
        "real": PretrainingProfile("resnet50", "bio_clinicalbert", max_epochs=50, batch_size=72),
    }


def vlp_image_encoder(build, name: str) -> ImageEncoder:
    """A fresh encoder ``name`` with the vision-language methods' normalisation, ``(v / 255 - 0.5) / 0.5``, used
    in pretraining and when loading their checkpoints (ours and the authors' releases alike)."""
    encoder = build(name)
    encoder.mean = encoder.std = VLP_NORMALISATION
    return encoder


def load_image_encoder(context: MethodContext, method: str, layouts: Sequence[CheckpointLayout]) -> ImageEncoder:
    """Build ``context.encoder`` and import the backbone of ``context.checkpoint`` into it.

    ``layouts``: the method's checkpoint layouts (its ``MethodSpec.checkpoint_layouts``: our own checkpoints, the
    authors' release, a bare backbone), tried by :func:`medvlp_bench.api.load_encoder_checkpoint`.
    The import report is printed to stderr. Raises :class:`MedvlpError` when no checkpoint is given (the runner
    resolves one for every method that pretrains) or when nothing in it fits the encoder.
    """
    if context.checkpoint is None:
        raise MedvlpError(
            f"method {method!r} needs weights: pass --checkpoint PATH or pretrain first "
            f"(medvlp-bench pretrain --method {method})"
        )
    encoder = vlp_image_encoder(context.build_encoder, context.encoder)
    report = load_encoder_checkpoint(encoder, context.checkpoint, layouts=layouts, trust=context.trust_checkpoint)
    print(f"medvlp-bench: {method}: {report.summary()}", file=sys.stderr)
    encoder.weights_report = report.counts()
    return encoder
