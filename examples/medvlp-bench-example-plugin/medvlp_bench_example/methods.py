"""The example methods: each describes itself completely in its ``MethodSpec``.

* ``example_method``: loads a plain PyTorch state dict from ``--checkpoint`` into whichever encoder the user picks
  (safely: ``weights_only=True``); no pretraining.
* ``example_clip``: image-report contrastive pretraining (:class:`training.ContrastiveModule`) with its own
  checkpoint layout (image encoder under ``visual.``), options ``temperature``, ``embedding_dim``,
  ``learning_rate`` and a synthetic profile (``tiny_cnn`` + ``tiny_bert``, 1 epoch of batch 16).
* ``example_rotation``: image-only pretraining (:class:`training.RotationModule`, no text encoder), whose layout is
  a filter function (image encoder under ``net.trunk.``, head under ``net.head.`` dropped).

Both pretraining methods pretrain on ``mimic_cxr`` (image-report pairs; the image-only method ignores the reports)
and default to ``tiny_cnn`` on synthetic data. A run without ``--checkpoint`` pretrains them once into the model
store (``medvlp-bench run --method example_rotation --task example_rsna_quick``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from medvlp_bench.api import (
    CheckpointLayout,
    ImageEncoder,
    MedvlpError,
    MethodContext,
    MethodSpec,
    OptionSpec,
    PretrainContext,
    PretrainingProfile,
    load_encoder_checkpoint,
)

DEFAULT_ENCODER = {"synthetic": "tiny_cnn"}


def load_state_dict(context: MethodContext) -> ImageEncoder:
    """The encoder with ``--checkpoint``'s state dict; without one, its initialisation seeded by the run seed, so a
    run is reproducible either way."""
    torch.manual_seed(context.seed)
    encoder = context.build_encoder(context.encoder)
    if context.checkpoint is not None:
        state = torch.load(context.checkpoint, map_location="cpu", weights_only=True)
        encoder.load_state_dict(state)
    return encoder


def _rotation_backbone(state):
    """The rotation checkpoint's image-encoder tensors, named as in the encoder (``net.trunk.`` removed)."""
    return {key[len("net.trunk."):]: value for key, value in state.items() if key.startswith("net.trunk.")}


CLIP_LAYOUTS = (CheckpointLayout("example_clip", prefixes=("visual.",)),)
ROTATION_LAYOUTS = (CheckpointLayout("example_rotation", filter=_rotation_backbone),)


def _loader(method: str, layouts):
    def load(context: MethodContext) -> ImageEncoder:
        if context.checkpoint is None:
            raise MedvlpError(f"method {method!r} needs weights: pass --checkpoint PATH or run on synthetic data")
        encoder = context.build_encoder(context.encoder)
        target_prefix = "model." if any(key.startswith("model.") for key in encoder.state_dict()) else ""
        report = load_encoder_checkpoint(encoder, context.checkpoint, layouts=layouts, target_prefix=target_prefix,
                                         trust=context.trust_checkpoint)
        print(f"{method}: {report.summary()}", file=sys.stderr)
        encoder.weights_report = report.counts()
        return encoder

    return load


def pretrain_clip(context: PretrainContext) -> Path:
    from medvlp_bench_example.training import pretrain_contrastive

    return pretrain_contrastive(context)


def pretrain_rotation(context: PretrainContext) -> Path:
    from medvlp_bench_example.training import pretrain_rotation as run

    return run(context)


METHODS = [
    MethodSpec(
        name="example_method",
        description="Loads a plain state dict from --checkpoint into any encoder (example plugin)",
        load_image_encoder=load_state_dict,
        default_encoder=DEFAULT_ENCODER,
    ),
    MethodSpec(
        name="example_clip",
        description="Image-report InfoNCE on global features (example plugin)",
        load_image_encoder=_loader("example_clip", CLIP_LAYOUTS),
        pretrain=pretrain_clip,
        default_encoder=DEFAULT_ENCODER,
        corpus="mimic_cxr",
        pretraining_profiles={
            "synthetic": PretrainingProfile("tiny_cnn", "tiny_bert", max_epochs=1, batch_size=16,
                                            options={"learning_rate": 1e-3}),
        },
        options=(
            OptionSpec("temperature", 0.1, "softmax temperature of the InfoNCE", float),
            OptionSpec("embedding_dim", 32, "width of the joint embedding", int),
            OptionSpec("learning_rate", 1e-4, "AdamW learning rate", float),
        ),
        checkpoint_layouts=CLIP_LAYOUTS,
    ),
    MethodSpec(
        name="example_rotation",
        description="Image-only rotation prediction (example plugin; no text encoder)",
        load_image_encoder=_loader("example_rotation", ROTATION_LAYOUTS),
        pretrain=pretrain_rotation,
        default_encoder=DEFAULT_ENCODER,
        corpus="mimic_cxr",
        pretraining_profiles={
            "synthetic": PretrainingProfile("tiny_cnn", None, max_epochs=1, batch_size=16),
        },
        options=(OptionSpec("learning_rate", 1e-3, "AdamW learning rate", float),),
        checkpoint_layouts=ROTATION_LAYOUTS,
    ),
]
