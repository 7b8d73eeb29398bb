"""Baseline ``random``: the encoder architecture with random initialisation (torchvision's default init).

The initial weights are drawn from a generator seeded with the run seed, so seed ``s`` always yields the same
encoder and different seeds give different encoders (the spread over seeds includes the initialisation).
"""

from __future__ import annotations

import torch

from medvlp_bench.api import ImageEncoder, MethodContext, MethodSpec, hookimpl
from medvlp_bench_plugins.methods.image_text_loaders import load_random_image_text_model


def load_random_encoder(context: MethodContext) -> ImageEncoder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        return context.build_encoder(context.encoder)


#: the quick CPU encoder on synthetic data, the papers' ResNet-50 on real data (as the pretraining methods)
DEFAULT_ENCODER = {"synthetic": "resnet18_64", "real": "resnet50"}


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="random",
            description="Random initialisation (baseline); weights seeded by the run seed",
            default_encoder=DEFAULT_ENCODER,
            load_image_encoder=load_random_encoder,
            load_image_text_model=load_random_image_text_model,
        )
    ]
