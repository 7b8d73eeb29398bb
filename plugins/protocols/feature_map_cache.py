"""Frozen multi-scale feature maps, computed once per (encoder weights, images, transform, levels) and cached on disk.

Levels: a protocol asks for maps at output strides ``levels`` (input pixels per map cell, e.g. ``(8, 16, 32)``).
A level the encoder provides (``stride in encoder.map_strides``) is taken as is. Any other level is resampled from
the encoder map whose stride is nearest in log scale (ties: the deeper map) by the integer factor
``r = level / source stride``: ``r > 1`` -> ``r x r`` average pooling, ``r < 1`` -> nearest upsampling by ``1 / r``.
Example: a ViT (one map at stride 16) asked for ``(8, 16, 32)`` gives a 2x nearest upsample, the map as is, and a
2x2 average pool.

Model input: the prepared (N, side, side) uint8 images through ``model_input`` (centre crop to the encoder input,
``(v / 255 - mean_c) / std_c``), with the encoder in eval mode (BatchNorm uses its stored statistics).

Storage: one :func:`cached_array` per ``sha256(encoder key, image key, transform descriptor)``: a float16 (N, D)
array with ``D = sum_l C_l H_l W_l``, row n holding image n's maps flattened level after level; callers get
per-level views (N, C_l, H_l, W_l) of the memory map. The level shapes are kept beside it in
``<key>.levels.json``, so a cache hit costs no encoder forward. float16 halves the disk: a ResNet-50 at 224 px
stores 512x28x28 + 1024x14x14 + 2048x7x7 = 702,464 values, 1.4 MB per image.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from medvlp_bench.api import ImageEncoder, cached_array, model_input, preferred_device

EXTRACTION_BATCH_SIZE = 32


def level_sources(strides: Sequence[int], levels: Sequence[int]) -> list[tuple[int, float]]:
    """For each level: (index of the encoder map it comes from, resampling factor ``level / source stride``)."""
    if not strides:
        raise ValueError("the encoder exposes no feature maps (map_strides is empty)")
    sources = []
    for level in levels:
        distances = [(abs(math.log(level / stride)), -index) for index, stride in enumerate(strides)]
        index = -min(distances)[1]
        factor = level / strides[index]
        if not (factor.is_integer() or (1 / factor).is_integer()):
            raise ValueError(f"level stride {level} is not an integer multiple or fraction of stride {strides[index]}")
        sources.append((index, factor))
    return sources


def resample_to_levels(
    maps: Sequence[torch.Tensor], strides: Sequence[int], levels: Sequence[int]
) -> list[torch.Tensor]:
    """The encoder's ``maps`` (strides ``strides``) turned into one map per requested level (module docstring)."""
    out = []
    for index, factor in level_sources(strides, levels):
        source = maps[index]
        if factor > 1:
            out.append(F.avg_pool2d(source, kernel_size=int(factor)))
        elif factor < 1:
            out.append(F.interpolate(source, scale_factor=int(round(1 / factor)), mode="nearest"))
        else:
            out.append(source)
    return out


def level_maps(encoder: ImageEncoder, images: torch.Tensor, levels: Sequence[int]) -> list[torch.Tensor]:
    """(B, side, side) uint8 prepared images -> one (B, C_l, H_l, W_l) float map per level (no gradient)."""
    with torch.no_grad():
        maps = encoder.feature_maps(model_input(images, encoder))
        return resample_to_levels(maps, encoder.map_strides, levels)


def maps_transform_descriptor(encoder: ImageEncoder, levels: Sequence[int]) -> str:
    """What, besides weights and images, determines the cached maps (part of the cache key)."""
    return (
        f"maps;centre_crop={encoder.input_size};mean={tuple(encoder.mean)};std={tuple(encoder.std)};"
        f"encoder_strides={tuple(encoder.map_strides)};levels={tuple(levels)};"
        "resample=avgpool-down/nearest-up;mode=eval;dtype=float16"
    )


def _write_json(path: Path, payload) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    temporary.write_text(json.dumps(payload))
    os.replace(temporary, path)


def _level_shapes(encoder: ImageEncoder, images: np.ndarray, levels: Sequence[int], path: Path) -> list[tuple]:
    """(C_l, H_l, W_l) per level: read from ``path``, or measured with one forward over one image and stored."""
    if path.is_file():
        return [tuple(shape) for shape in json.loads(path.read_text())]
    device = preferred_device()
    encoder.to(device).eval()
    probe = torch.from_numpy(np.array(images[:1])).to(device)
    shapes = [tuple(level.shape[1:]) for level in level_maps(encoder, probe, levels)]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, [list(shape) for shape in shapes])
    return shapes


def cached_feature_maps(
    encoder: ImageEncoder,
    encoder_key: str,
    images_uint8: np.ndarray,
    image_key: str,
    cache_root: Path,
    *,
    levels: Sequence[int],
    label: str,
) -> list[np.ndarray]:
    """Per level, the memory-mapped (N, C_l, H_l, W_l) float16 maps of ``images_uint8`` (computed on a miss).

    ``images_uint8``: (N, side, side) prepared images (side >= encoder.input_size); ``image_key`` identifies them
    (e.g. the key from ``prepare_images``); ``encoder_key`` identifies the weights.
    """
    cache_root = Path(cache_root)
    descriptor = maps_transform_descriptor(encoder, levels)
    key = hashlib.sha256(f"{encoder_key}|{image_key}|{descriptor}".encode()).hexdigest()
    shapes = _level_shapes(encoder, images_uint8, levels, cache_root / f"{key}.levels.json")
    sizes = [int(np.prod(shape)) for shape in shapes]
    count = len(images_uint8)

    def fill(array: np.ndarray) -> None:
        device = preferred_device()
        encoder.to(device).eval()
        for start in tqdm(range(0, count, EXTRACTION_BATCH_SIZE), desc=f"encoding maps {label}", leave=False):
            batch = torch.from_numpy(np.array(images_uint8[start : start + EXTRACTION_BATCH_SIZE])).to(device)
            maps = level_maps(encoder, batch, levels)
            flat = torch.cat([level.flatten(1) for level in maps], dim=1)
            array[start : start + len(batch)] = flat.to(torch.float16).cpu().numpy()

    flat = cached_array(cache_root, key, (count, sum(sizes)), np.float16, fill)
    offsets = np.cumsum([0, *sizes])
    return [flat[:, offsets[i] : offsets[i + 1]].reshape(count, *shape) for i, shape in enumerate(shapes)]
