"""Frozen-encoder global features, computed once per (encoder weights, images, transform) and cached on disk.

Model input from a prepared image (side x side uint8, see :mod:`medvlp_bench.data.image_cache`): centre crop to
``encoder.input_size``, scale to [0, 1], repeat the grey channel three times, normalise per channel:
``x = (v / 255 - mean_c) / std_c``. The cache file is ``sha256(encoder key, image key, transform).npy``
(float32, (N, global_dim)), written under a temporary name and renamed when complete, once across concurrent
processes (under the entry's lock, :mod:`medvlp_bench.data.build_once`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from medvlp_bench.data.build_once import exclusive_lock, lock_path, temporary_path
from medvlp_bench.encoder import ImageEncoder

EXTRACTION_BATCH_SIZE = 64


def encoder_fingerprint(encoder: ImageEncoder) -> str:
    """sha256 over the encoder's description and every parameter/buffer (name, dtype, shape, bytes)."""
    digest = hashlib.sha256(repr(sorted(encoder.describe().items())).encode())
    for name, tensor in encoder.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def normalise(crops: torch.Tensor, mean, std) -> torch.Tensor:
    """(B, s, s) uint8 -> (B, 3, s, s) float: ``(v / 255 - mean_c) / std_c`` on three identical channels."""
    scaled = crops.float().div_(255.0)
    mean = torch.tensor(mean, dtype=scaled.dtype, device=scaled.device).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=scaled.dtype, device=scaled.device).view(1, 3, 1, 1)
    return (scaled.unsqueeze(1).expand(-1, 3, -1, -1) - mean) / std


def model_input(images: torch.Tensor, encoder: ImageEncoder) -> torch.Tensor:
    """(B, side, side) uint8 -> (B, 3, s, s) float, centre-cropped to s = encoder.input_size and normalised."""
    side, size = images.shape[-1], encoder.input_size
    if size > side:
        raise ValueError(f"prepared images ({side}px) are smaller than the encoder input ({size}px)")
    top = (side - size) // 2
    return normalise(images[:, top : top + size, top : top + size], encoder.mean, encoder.std)


def transform_descriptor(encoder: ImageEncoder) -> str:
    return f"centre_crop={encoder.input_size};mean={tuple(encoder.mean)};std={tuple(encoder.std)}"


def preferred_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def extract_global_features(encoder: ImageEncoder, images: np.ndarray, *, label: str = "features") -> np.ndarray:
    """Run the frozen encoder (eval mode) over all images; return (N, global_dim) float32 features."""
    device = preferred_device()
    encoder = encoder.to(device).eval()
    out = np.empty((len(images), encoder.global_dim), dtype=np.float32)
    for start in tqdm(range(0, len(images), EXTRACTION_BATCH_SIZE), desc=f"encoding {label}", leave=False):
        batch = torch.from_numpy(np.array(images[start : start + EXTRACTION_BATCH_SIZE])).to(device)
        out[start : start + len(batch)] = encoder.global_features(model_input(batch, encoder)).float().cpu().numpy()
    return out


def cached_global_features(
    encoder: ImageEncoder, encoder_key: str, images: np.ndarray, image_key: str, cache_root: Path, *, label: str
) -> np.ndarray:
    """Global features of ``images`` from the cache, computing and storing them on a miss."""
    key = hashlib.sha256(f"{encoder_key}|{image_key}|{transform_descriptor(encoder)}|global".encode()).hexdigest()
    path = cache_root / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    with exclusive_lock(lock_path(path)):
        if path.is_file():
            return np.load(path)
        features = extract_global_features(encoder, images, label=label)
        temporary = temporary_path(path, ".npy")
        np.save(temporary, features)
        os.replace(temporary, path)
    return features
