"""What the vision-language method plugins (MGCA, ConVIRT, GLoRIA) share outside training.

This module stays light (no Lightning, no transformers): it is imported whenever the registry loads the plugins,
and by every downstream run that only needs an image encoder.

* :data:`OPTIMISER_OPTIONS`: the optimisation options every method records (MGCA's Ref settings, section 1 of
  reference/mgca-reference.md): AdamW lr 2e-5, betas (0.9, 0.999), weight decay 0.05; cosine schedule with a
  linear warm-up over the first 40 % of optimiser steps, from and down to 1e-8.
* :func:`load_image_encoder`: the image encoder with a checkpoint's backbone weights, for the runner;
  :func:`vlp_image_encoder`: a fresh encoder with the methods' input normalisation (mean = std = 0.5).
"""

from __future__ import annotations

import sys
from typing import Optional

from medvlp_bench.api import ImageEncoder, MedvlpError, MethodContext, load_encoder_checkpoint

#: per-channel input normalisation of the vision-language methods' image encoders (reference: mean = std = 0.5)
VLP_NORMALISATION = (0.5, 0.5, 0.5)

OPTIMISER_OPTIONS = {
    "learning_rate": 2e-5,
    "weight_decay": 0.05,
    "warmup_fraction": 0.4,
    "min_learning_rate": 1e-8,
}


def vlp_image_encoder(build, name: str) -> ImageEncoder:
    """A fresh encoder ``name`` with the vision-language methods' normalisation, ``(v / 255 - 0.5) / 0.5``, used
    in pretraining and when loading their checkpoints (ours and the authors' releases alike)."""
    encoder = build(name)
    encoder.mean = encoder.std = VLP_NORMALISATION
    return encoder


def load_image_encoder(context: MethodContext, method: str, layout: Optional[str] = None) -> ImageEncoder:
    """Build ``context.encoder`` and import the backbone of ``context.checkpoint`` into it.

    ``layout`` names a checkpoint layout of :func:`medvlp_bench.api.load_encoder_checkpoint`; ``None`` detects it,
    which reads our own checkpoints (``img_encoder_q.model.*``, MGCA's release layout) as well as the GLoRIA
    (``gloria.img_encoder.model.*``), ConVIRT (``img_encoder.model.*``) and plain torchvision layouts.
    The import report is printed to stderr. Raises :class:`MedvlpError` when no checkpoint is given (the runner
    resolves one for every method that pretrains) or when nothing in it fits the encoder.
    """
    if context.checkpoint is None:
        raise MedvlpError(
            f"method {method!r} needs weights: pass --checkpoint PATH or pretrain first "
            f"(medvlp-bench pretrain --method {method})"
        )
    encoder = vlp_image_encoder(context.build_encoder, context.encoder)
    report = load_encoder_checkpoint(encoder, context.checkpoint, layout=layout, trust=context.trust_checkpoint)
    print(f"medvlp-bench: {method}: {report.summary()}", file=sys.stderr)
    encoder.weights_report = report.counts()
    return encoder
