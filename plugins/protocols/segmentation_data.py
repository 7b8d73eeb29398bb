"""Segmentation samples: prepared images, letterboxed masks, optional cached frozen maps, optional augmentation.

* Images: ``prepare_images(table, side=encoder.input_size)`` (letterboxed squares, resize only; uint8).
* Masks: ``task.load_mask(row)`` (H, W) bool at the original image size, letterboxed like the image with
  ``letterbox(mask, side)`` (nearest) and cached once per (image cache key, task) as an (N, side, side) bool array
  under ``<cache_dir>/masks``.
* Frozen maps (frozen encoder, no augmentation): what the segmenter's frozen part computes
  (:meth:`Segmenter.cacheable_maps`), stored float16 by :mod:`~medvlp_bench_plugins.protocols.feature_map_cache`
  under ``<cache_dir>/segmentation_maps``; after the first pass training needs no encoder forward.
* Augmentation (``augment=True``, training split only, no map cache): the reference's albumentations
  ``ShiftScaleRotate(shift_limit=0.0625, scale_limit=0.1, rotate_limit=10, p=0.5)`` as torchvision v2
  ``RandomApply([RandomAffine(degrees=10, translate=(0.0625, 0.0625), scale=(0.9, 1.1))], p=0.5)`` on image
  (bilinear) and mask (nearest) jointly. Uncovered border pixels are filled with 0 (the letterbox's padding value)
  where albumentations reflects the border by default.

A sample is ``(image (1, side, side) uint8, mask (1, side, side) float32 0/1, *maps (C_l, H_l, W_l) float16)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from medvlp_bench.api import (
    DataError,
    ImageEncoder,
    ProtocolInputs,
    TaskSpec,
    cached_array,
    letterbox,
    prepare_images,
    prepared_sizes,
)
from medvlp_bench_plugins.protocols.feature_map_cache import cached_feature_maps
from medvlp_bench_plugins.protocols.segmentation_models import Segmenter

AUGMENTATION = (
    "RandomApply([RandomAffine(degrees=10, translate=(0.0625, 0.0625), scale=(0.9, 1.1), bilinear; "
    "masks nearest; fill 0)], p=0.5) on image and mask jointly (reference: ShiftScaleRotate scale 0.1, rotate 10, "
    "p 0.5)"
)


def reference_augmentation() -> v2.Transform:
    """The training augmentation (module docstring), applied to an (Image, Mask) pair."""
    affine = v2.RandomAffine(
        degrees=10, translate=(0.0625, 0.0625), scale=(0.9, 1.1), interpolation=v2.InterpolationMode.BILINEAR
    )
    return v2.RandomApply([affine], p=0.5)


def letterboxed_masks(
    task: TaskSpec, table: pd.DataFrame, image_key: str, image_root: Path, side: int, cache_root: Path
) -> np.ndarray:
    """(N, side, side) bool masks of ``table`` letterboxed like its prepared images (cached on disk).

    Raises :class:`DataError` when a mask's shape is not its image's original (height, width).
    """
    if task.load_mask is None:
        raise DataError(f"task {task.name} has target 'mask' but no load_mask")
    sizes = prepared_sizes(image_key, image_root)
    key = hashlib.sha256(f"{image_key}|{task.name}|mask|side={side}".encode()).hexdigest()

    def fill(array: np.ndarray) -> None:
        for index, (_, row) in enumerate(table.iterrows()):
            mask = np.asarray(task.load_mask(row), dtype=bool)
            if mask.shape != tuple(sizes[index]):
                raise DataError(
                    f"{task.name}: the mask of {row['source_file']}, row {row['source_row']} is {mask.shape}, "
                    f"its image is {tuple(sizes[index])}"
                )
            array[index] = letterbox(mask, side)

    return cached_array(cache_root, key, (len(table), side, side), bool, fill)


class CacheableMapsEncoder(ImageEncoder):
    """The frozen part of a :class:`Segmenter` seen as an :class:`ImageEncoder`, so the generic feature-map cache
    stores exactly what the segmenter's decoder consumes (``feature_maps`` = ``segmenter.cacheable_maps``)."""

    def __init__(self, segmenter: Segmenter, encoder: ImageEncoder):
        super().__init__()
        self.segmenter = segmenter
        self.input_size, self.mean, self.std = encoder.input_size, encoder.mean, encoder.std
        self.arch = f"{segmenter.path}:{encoder.arch}"
        self.map_strides, self.map_channels = segmenter.cached_strides, segmenter.cached_channels

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.segmenter.cacheable_maps(x)


def frozen_maps(
    segmenter: Segmenter, encoder: ImageEncoder, encoder_key: str, images: np.ndarray, image_key: str,
    cache_root: Path, label: str,
) -> list[np.ndarray]:
    """Per cached level, the (N, C_l, H_l, W_l) float16 maps of ``images`` (computed once, then read from disk)."""
    frozen_part = CacheableMapsEncoder(segmenter, encoder)
    return cached_feature_maps(
        frozen_part, f"{encoder_key}|segmenter={segmenter.path}", images, image_key, cache_root,
        levels=frozen_part.map_strides, label=label,
    )


def bytes_per_image(maps: Sequence[np.ndarray]) -> int:
    """Disk bytes one image's cached maps take (float16: 2 bytes per value)."""
    return int(sum(level[0].nbytes for level in maps))


class SegmentationSamples(Dataset):
    """Samples of one split (module docstring); ``maps`` when cached, ``augment`` for on-the-fly augmentation."""

    def __init__(
        self, images: np.ndarray, masks: np.ndarray, maps: Optional[Sequence[np.ndarray]] = None,
        augment: Optional[v2.Transform] = None,
    ):
        if maps and augment is not None:
            raise ValueError("cached maps cannot be augmented: disable the cache to augment")
        self.images, self.masks, self.maps, self.augment = images, masks, list(maps or ()), augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = torch.from_numpy(np.array(self.images[index]))[None]
        mask = torch.from_numpy(np.array(self.masks[index], dtype=np.uint8))[None]
        if self.augment is not None:
            image, mask = self.augment(tv_tensors.Image(image), tv_tensors.Mask(mask))
            image, mask = image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
        maps = [torch.from_numpy(np.array(level[index])) for level in self.maps]
        return (image, mask.float(), *maps)


def split_samples(
    inputs: ProtocolInputs, segmenter: Segmenter, split: str, table: pd.DataFrame, use_cache: bool, augment: bool
) -> SegmentationSamples:
    """The samples of one split: prepared images and masks under ``inputs.cache_dir``, plus the frozen maps when
    ``use_cache`` and the reference augmentation when ``augment``."""
    cache_dir, side, label = Path(inputs.cache_dir), inputs.encoder.input_size, f"{inputs.task.dataset} {split}"
    images, image_key = prepare_images(table, side, cache_dir / "images", label=label)
    masks = letterboxed_masks(inputs.task, table, image_key, cache_dir / "images", side, cache_dir / "masks")
    maps = None
    if use_cache:
        maps = frozen_maps(segmenter, inputs.encoder, inputs.encoder_key, images, image_key,
                           cache_dir / "segmentation_maps", label)
    return SegmentationSamples(images, masks, maps, reference_augmentation() if augment else None)
