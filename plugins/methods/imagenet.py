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


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="imagenet",
            description="Supervised ImageNet initialisation (baseline), from the local torch cache",
            load_image_encoder=load_imagenet_encoder,
        )
    ]
