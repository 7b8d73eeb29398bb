"""Baseline ``imagenet``: the encoder architecture initialised with supervised ImageNet weights.

Weights come from the local cache that the encoder plugin names (torchvision's files in the torch hub cache);
when they are absent the run stops with a message saying where to put them. Nothing is downloaded.
"""

from __future__ import annotations

from medvlp_bench.api import ImageEncoder, MethodContext, MethodSpec, hookimpl


def load_imagenet_encoder(context: MethodContext) -> ImageEncoder:
    encoder = context.build_encoder(context.encoder)
    context.load_imagenet(context.encoder, encoder)
    return encoder


#: the quick CPU encoder on synthetic data, the papers' ResNet-50 on real data (as the pretraining methods)
DEFAULT_ENCODER = {"synthetic": "resnet18_64", "real": "resnet50"}


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="imagenet",
            description="Supervised ImageNet initialisation (baseline), from the local torch cache",
            default_encoder=DEFAULT_ENCODER,
            load_image_encoder=load_imagenet_encoder,
        )
    ]
