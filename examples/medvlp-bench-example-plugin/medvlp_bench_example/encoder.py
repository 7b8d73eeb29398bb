"""``tiny_cnn``: a four-stage CNN for 64 px inputs (16/32/64/128 channels at strides 2/4/8/16; global feature =
average-pooled last stage, 128-d). Its parameters are named ``stages.<i>.<layer>.<name>``."""

from __future__ import annotations

from torch import nn

from medvlp_bench.api import ImageEncoder


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
