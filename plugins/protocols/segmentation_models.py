"""Segmentation networks on a method's image encoder: a U-Net for torchvision ResNets, a progressive-upsampling
decoder for any other encoder. Both output (B, 1, S, S) logits for (B, 3, S, S) normalised input, S = input size.

* :class:`UnetSegmenter` (the reference's ResNet path): ``smp.Unet(encoder_name=arch, encoder_weights=None,
  classes=1)``, smp's default decoder (256/128/64/32/16 channels, nearest x2 upsampling, skip connections from the
  stem (stride 2) and the four stages (strides 4/8/16/32)). smp's ResNet encoder is a torchvision ResNet, so the
  method's weights load key for key from ``encoder.model.state_dict()``.
* :class:`GenericSegmenter` (the reference's ViT path, for every other encoder): the encoder's deepest map
  (C channels at stride s) -> 1x1 projection C -> C (the reference's Linear on tokens) -> ``n = round(log2 s)``
  blocks [conv3x3 - BatchNorm - ReLU - bilinear x2 upsampling] whose widths end at 64 and double backwards, capped
  at 512 (s = 16: 512/256/128/64, the reference) -> conv3x3 -> 1 channel, resized bilinearly to S when
  ``2^n != s``.
* :class:`LinearSegmenter` (``decoder=linear``, not the reference's protocol): a linear read-out of the frozen
  maps, as in linear segmentation probes of self-supervised encoders. Every encoder map F_l (C_l channels at stride
  s_l) is resized bilinearly to the finest map's grid, the maps are concatenated (C = sum C_l channels),
  batch-normalised and mapped by a 1x1 convolution to one channel, then resized bilinearly to S:
  ``logits = up_S(w . BN(concat_l up(F_l)) + b)``, C + 1 trainable weights besides BatchNorm's 2C. With so small a
  read-out the Dice measures what the frozen maps already say about the mask, where a U-Net decoder trained on
  enough masks can learn the finding from random features.

Encoder modes: ``frozen`` (parameters without gradient, the encoder kept in eval mode so BatchNorm uses its stored
statistics, the default); ``bn_drift`` (parameters frozen, but the encoder follows ``train()``, so BatchNorm
normalises with batch statistics and updates its running statistics while training: what the reference code does);
``trainable`` (fine-tuning).

Feature caching: ``cacheable_maps(x)`` is what the frozen part computes (U-Net: the stage maps at strides 4/8/16/32;
generic: the deepest map) and ``decode(maps, x)`` finishes the forward pass from them. The U-Net recomputes its stem
(conv7x7 stride 2 - BN - ReLU) from ``x`` in ``decode``: the stem map is 64 x S/2 x S/2 values, larger than the four
stage maps together for a ResNet-18 and half their size for a ResNet-50, while computing it costs about 3 % of a
ResNet-50 forward pass.
"""

from __future__ import annotations

import copy
import math
from typing import Literal, Sequence

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from medvlp_bench.api import ImageEncoder
from medvlp_bench_plugins.protocols.segmentation import DECODER_PATHS

EncoderMode = Literal["frozen", "bn_drift", "trainable"]
ENCODER_MODES = ("frozen", "bn_drift", "trainable")

#: strides of the ResNet stage maps the U-Net path caches (layer1 .. layer4)
UNET_CACHED_STRIDES = (4, 8, 16, 32)


class Segmenter(nn.Module):
    """Base class: an encoder part (``encoder_part``) in one of the encoder modes, and a decoder."""

    path: str = ""

    def __init__(self, encoder_mode: EncoderMode):
        super().__init__()
        if encoder_mode not in ENCODER_MODES:
            raise ValueError(f"encoder mode must be one of {ENCODER_MODES}, got {encoder_mode!r}")
        self.encoder_mode = encoder_mode

    @property
    def encoder_part(self) -> nn.Module:
        raise NotImplementedError

    @property
    def cached_strides(self) -> tuple[int, ...]:
        """Strides of the maps :meth:`cacheable_maps` returns, finest first."""
        raise NotImplementedError

    @property
    def cached_channels(self) -> tuple[int, ...]:
        """Channels of the maps :meth:`cacheable_maps` returns."""
        raise NotImplementedError

    def apply_encoder_mode(self) -> None:
        """Freeze the encoder's parameters unless the mode is ``trainable``, and put it in eval mode if ``frozen``."""
        if self.encoder_mode != "trainable":
            self.encoder_part.requires_grad_(False)
        if self.encoder_mode == "frozen":
            self.encoder_part.eval()

    def train(self, mode: bool = True) -> "Segmenter":
        """Set the mode as usual, except that a ``frozen`` encoder always stays in eval mode."""
        super().train(mode)
        if self.encoder_mode == "frozen":
            self.encoder_part.eval()
        return self

    def cacheable_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def decode(self, maps: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        raise NotImplementedError


def unet_compatible(encoder: ImageEncoder) -> bool:
    """Whether ``encoder`` is a torchvision ResNet that smp builds a U-Net encoder for, at an input size divisible by
    the U-Net's output stride (32)."""
    return (
        isinstance(getattr(encoder, "model", None), torchvision.models.ResNet)
        and encoder.arch in smp.encoders.get_encoder_names()
        and encoder.input_size % 32 == 0
    )


def load_resnet_weights(target: nn.Module, resnet: nn.Module) -> int:
    """Copy a torchvision ResNet's parameters and buffers (``fc`` excluded) into smp's ResNet encoder ``target``.

    Every key must match both ways; raises ``ValueError`` listing the differences otherwise. Returns the number of
    tensors loaded.
    """
    state = {key: value for key, value in resnet.state_dict().items() if not key.startswith("fc.")}
    expected = set(target.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"encoder weights do not match smp's encoder: missing {missing}, unexpected {unexpected}")
    target.load_state_dict(state, strict=True)
    return len(state)


class UnetSegmenter(Segmenter):
    """smp U-Net whose encoder holds the method's ResNet weights (module docstring)."""

    path = "unet"

    def __init__(self, encoder: ImageEncoder, encoder_mode: EncoderMode):
        super().__init__(encoder_mode)
        if not unet_compatible(encoder):
            raise ValueError(
                f"the U-Net path needs a torchvision ResNet encoder with an input size divisible by 32; "
                f"got {encoder.arch!r} at {encoder.input_size} px"
            )
        self.unet = smp.Unet(encoder_name=encoder.arch, encoder_weights=None, classes=1)
        self.loaded_tensors = load_resnet_weights(self.unet.encoder, encoder.model)
        self.arch = encoder.arch
        self.apply_encoder_mode()

    @property
    def encoder_part(self) -> nn.Module:
        return self.unet.encoder

    @property
    def cached_strides(self) -> tuple[int, ...]:
        return UNET_CACHED_STRIDES

    @property
    def cached_channels(self) -> tuple[int, ...]:
        return tuple(self.unet.encoder.out_channels[2:])

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-2 stem map (B, 64, S/2, S/2): conv7x7 - BN - ReLU, as in smp's encoder."""
        encoder = self.unet.encoder
        return encoder.relu(encoder.bn1(encoder.conv1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)

    def cacheable_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.unet.encoder(x)[2:])

    def decode(self, maps: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.unet.segmentation_head(self.unet.decoder([x, self.stem(x), *maps]))

    def describe(self) -> dict:
        return {
            "path": self.path,
            "network": f"smp.Unet(encoder_name={self.arch!r}, encoder_weights=None, classes=1)",
            "encoder_tensors_loaded": self.loaded_tensors,
            "cached_maps": "ResNet stages at strides 4/8/16/32; the stride-2 stem is recomputed",
        }


def progressive_widths(blocks: int) -> list[int]:
    """Output widths of the upsampling blocks: ending at 64, doubling backwards, capped at 512."""
    return [min(512, 64 * 2 ** (blocks - 1 - index)) for index in range(blocks)]


class ProgressiveUpsamplingDecoder(nn.Module):
    """(B, C, S/s, S/s) map -> (B, 1, S, S) logits (module docstring: generic path)."""

    def __init__(self, in_channels: int, stride: int, output_size: int):
        super().__init__()
        self.output_size = output_size
        blocks = max(0, round(math.log2(stride)))
        self.project = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        layers: list[nn.Module] = []
        width = in_channels
        for out_width in progressive_widths(blocks):
            layers += [
                nn.Conv2d(width, out_width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_width),
                nn.ReLU(inplace=True),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            ]
            width = out_width
        self.blocks = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(width, 1, kernel_size=3, padding=1)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.blocks(self.project(feature_map)))
        if logits.shape[-2:] != (self.output_size, self.output_size):
            logits = F.interpolate(logits, size=(self.output_size, self.output_size), mode="bilinear",
                                   align_corners=False)
        return logits


class EncoderMapsSegmenter(Segmenter):
    """Base class of the decoders over any :class:`ImageEncoder`'s ``feature_maps``: holds a copy of the encoder, so
    the caller's encoder is never changed; subclasses build their decoder, then call ``apply_encoder_mode``."""

    def __init__(self, encoder: ImageEncoder, encoder_mode: EncoderMode):
        super().__init__(encoder_mode)
        if not encoder.map_channels or not encoder.map_strides:
            raise ValueError(f"encoder {encoder.arch!r} exposes no feature maps (map_channels / map_strides empty)")
        self.encoder = copy.deepcopy(encoder)

    @property
    def encoder_part(self) -> nn.Module:
        return self.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.cacheable_maps(x), x)


class GenericSegmenter(EncoderMapsSegmenter):
    """Any :class:`ImageEncoder` (a copy): its deepest feature map through a :class:`ProgressiveUpsamplingDecoder`."""

    path = "generic"

    def __init__(self, encoder: ImageEncoder, encoder_mode: EncoderMode):
        super().__init__(encoder, encoder_mode)
        self.in_channels, self.stride = int(encoder.map_channels[-1]), int(encoder.map_strides[-1])
        self.decoder = ProgressiveUpsamplingDecoder(self.in_channels, self.stride, encoder.input_size)
        self.apply_encoder_mode()

    @property
    def cached_strides(self) -> tuple[int, ...]:
        return (self.stride,)

    @property
    def cached_channels(self) -> tuple[int, ...]:
        return (self.in_channels,)

    def cacheable_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.encoder.feature_maps(x)[-1]]

    def decode(self, maps: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.decoder(maps[-1])

    def describe(self) -> dict:
        blocks = progressive_widths(max(0, round(math.log2(self.stride))))
        return {
            "path": self.path,
            "network": f"deepest map ({self.in_channels} ch, stride {self.stride}) -> 1x1 projection -> "
            f"[conv3x3-BN-ReLU-up x2] x {len(blocks)} with {blocks} channels -> conv3x3 -> 1",
            "cached_maps": f"the deepest encoder map (stride {self.stride})",
        }


class LinearSegmenter(EncoderMapsSegmenter):
    """Any :class:`ImageEncoder` (a copy): all its feature maps through a linear read-out (module docstring)."""

    path = "linear"

    def __init__(self, encoder: ImageEncoder, encoder_mode: EncoderMode):
        super().__init__(encoder, encoder_mode)
        self.output_size = int(encoder.input_size)
        self.normalise = nn.BatchNorm2d(sum(self.cached_channels))
        self.classifier = nn.Conv2d(sum(self.cached_channels), 1, kernel_size=1)
        self.apply_encoder_mode()

    @property
    def cached_strides(self) -> tuple[int, ...]:
        return tuple(int(stride) for stride in self.encoder.map_strides)

    @property
    def cached_channels(self) -> tuple[int, ...]:
        return tuple(int(channels) for channels in self.encoder.map_channels)

    def cacheable_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.encoder.feature_maps(x))

    def decode(self, maps: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        grid = maps[0].shape[-2:]
        stacked = torch.cat([F.interpolate(level.float(), size=grid, mode="bilinear", align_corners=False)
                             for level in maps], dim=1)
        logits = self.classifier(self.normalise(stacked))
        return F.interpolate(logits, size=(self.output_size, self.output_size), mode="bilinear", align_corners=False)

    def describe(self) -> dict:
        return {
            "path": self.path,
            "network": f"maps at strides {list(self.cached_strides)} ({list(self.cached_channels)} ch) -> bilinear "
            f"to stride {self.cached_strides[0]} -> concat -> BatchNorm -> 1x1 conv -> 1 -> bilinear to "
            f"{self.output_size} px",
            "cached_maps": f"every encoder map (strides {list(self.cached_strides)})",
        }


def build_segmenter(encoder: ImageEncoder, encoder_mode: EncoderMode, path: str = "auto") -> Segmenter:
    """The segmenter for ``encoder``: ``path="auto"`` picks the U-Net for compatible ResNets (:func:`unet_compatible`)
    and the generic decoder otherwise; ``"unet"``, ``"generic"`` or ``"linear"`` force one."""
    if path not in DECODER_PATHS:
        raise ValueError(f"decoder path must be one of {', '.join(map(repr, DECODER_PATHS))}, got {path!r}")
    if path == "linear":
        return LinearSegmenter(encoder, encoder_mode)
    if path == "unet" or (path == "auto" and unet_compatible(encoder)):
        return UnetSegmenter(encoder, encoder_mode)
    return GenericSegmenter(encoder, encoder_mode)
