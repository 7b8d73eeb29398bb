"""ResNet image encoders built from torchvision (parameter names are torchvision's, without ``fc``).

* ``resnet50``: the paper's profile, 224 px input. Global = average-pooled ``layer4`` (2048-d); maps = ``layer1``
  to ``layer4`` (256/512/1024/2048 channels at strides 4/8/16/32); local tokens = ``layer3`` flattened
  (1024-d, (input/16)^2 tokens), as MGCA uses.
* ``resnet18``: the CPU profile, 128 px input; 512-d global, maps 64/128/256/512 channels.
* ``resnet18_64``: the same network at 64 px, about 4x cheaper: the quick CPU profile for synthetic demos.

ImageNet weights are torchvision's ``IMAGENET1K_V1`` files, read from the local torch hub cache
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``); nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from medvlp_bench.api import ImageEncoder, ImageEncoderSpec, WeightsNotFoundError, hookimpl

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetEncoder(ImageEncoder):
    """A torchvision ResNet exposed through the encoder interface; ``self.model`` holds torchvision's modules."""

    def __init__(self, arch: str, input_size: int):
        super().__init__()
        architecture = arch.split("_")[0]
        model = getattr(torchvision.models, architecture)(weights=None)
        model.fc = nn.Identity()
        self.model = model
        self.arch = architecture
        self.input_size = input_size
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.map_channels = tuple(self._stage_channels())
        self.map_strides = (4, 8, 16, 32)
        self.global_dim = self.map_channels[-1]

    def _stage_channels(self) -> list[int]:
        with torch.no_grad():
            probe = torch.zeros(1, 3, 64, 64)
            return [fmap.shape[1] for fmap in self._stages(probe)]

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        maps = []
        for stage in (m.layer1, m.layer2, m.layer3, m.layer4):
            x = stage(x)
            maps.append(x)
        return maps

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self._stages(x)

    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_and_local(x)[0]

    def local_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_and_local(x)[1]

    def global_and_local(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both from one pass: average-pooled ``layer4`` and ``layer3`` flattened."""
        maps = self._stages(x)
        return torch.flatten(self.model.avgpool(maps[-1]), 1), maps[2].flatten(2).transpose(1, 2)


def _imagenet_loader(arch: str):
    weights_enum = {"resnet18": torchvision.models.ResNet18_Weights, "resnet50": torchvision.models.ResNet50_Weights}
    architecture = arch.split("_")[0]  # resnet18_64 is torchvision's resnet18 at 64 px
    url = weights_enum[architecture].IMAGENET1K_V1.url

    def load(encoder: ImageEncoder) -> None:
        path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        if not path.is_file():
            raise WeightsNotFoundError(
                f"ImageNet weights for {arch} are not in the local torch cache: expected {path}. "
                f"Download {url} and save it at that path (or run, once online: "
                f"python -c \"import torchvision; torchvision.models.{architecture}(weights='IMAGENET1K_V1')\"). "
                "medvlp-bench never downloads weights by itself."
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        encoder.model.load_state_dict(state, strict=True)

    return load


def _spec(arch: str, input_size: int, description: str) -> ImageEncoderSpec:
    return ImageEncoderSpec(
        name=arch,
        description=description,
        build=lambda: ResNetEncoder(arch, input_size),
        load_imagenet=_imagenet_loader(arch),
    )


@hookimpl
def medvlp_bench_image_encoders():
    return [
        _spec("resnet50", 224, "ResNet-50 (torchvision), 224 px: the paper's profile"),
        _spec("resnet18", 128, "ResNet-18 (torchvision), 128 px: the CPU profile"),
        _spec("resnet18_64", 64, "ResNet-18 (torchvision), 64 px: the quick CPU profile (synthetic demos)"),
    ]
