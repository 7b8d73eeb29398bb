"""A third-party medvlp-bench plugin: an image encoder (``tiny_cnn``) and a method (``example_method``).

``tiny_cnn`` is a four-stage CNN (64 px input; 16/32/64/128 channels at strides 2/4/8/16; global = average-pooled
last stage, 128-d). ``example_method`` builds whichever encoder the user picks (``--encoder``) and loads a plain
PyTorch state dict from ``--checkpoint`` into it when one is given (safely: ``weights_only=True``).
"""

from __future__ import annotations

import torch
from torch import nn

from medvlp_bench.api import ImageEncoder, ImageEncoderSpec, MethodContext, MethodSpec, hookimpl


class TinyCNN(ImageEncoder):
    arch = "tiny_cnn"
    input_size = 64
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    map_channels = (16, 32, 64, 128)
    map_strides = (2, 4, 8, 16)
    global_dim = 128

    def __init__(self):
        super().__init__()
        channels = (3, *self.map_channels)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())
            for c_in, c_out in zip(channels[:-1], channels[1:])
        )

    def feature_maps(self, x):
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def global_features(self, x):
        return self.feature_maps(x)[-1].mean(dim=(2, 3))

    def local_tokens(self, x):
        return self.feature_maps(x)[-1].flatten(2).transpose(1, 2)


def load_encoder(context: MethodContext) -> ImageEncoder:
    encoder = context.build_encoder(context.encoder)
    if context.checkpoint is not None:
        state = torch.load(context.checkpoint, map_location="cpu", weights_only=True)
        encoder.load_state_dict(state)
    return encoder


@hookimpl
def medvlp_bench_image_encoders():
    return [ImageEncoderSpec(name="tiny_cnn", description="Tiny 4-stage CNN, 64 px (example plugin)", build=TinyCNN)]


@hookimpl
def medvlp_bench_methods():
    return [
        MethodSpec(
            name="example_method",
            description="Loads a plain state dict from --checkpoint into any encoder (example plugin)",
            load_image_encoder=load_encoder,
        )
    ]
