"""What the synthetic dataset writers share: image counts, random identifiers, a progress bar and image files.

A writer also brackets its work with ``begin_synthetic_folder`` and ``finish_synthetic_folder`` from
``medvlp_bench.api`` (the completion marker the harness looks for).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: JPEG quality of written images
JPEG_QUALITY = 90


def scaled(default: int, scale: float, minimum: int = 8) -> int:
    """``max(minimum, round(default * scale))``: the number of images a writer produces at ``scale``."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return max(minimum, int(round(default * scale)))


def uuid_like(rng: np.random.Generator) -> str:
    """A random version-4 UUID string (8-4-4-4-12 lowercase hex) drawn from ``rng``."""
    digits = rng.bytes(16).hex()
    digits = digits[:12] + "4" + digits[13:16] + "89ab"[int(digits[16], 16) % 4] + digits[17:]
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def hex_groups(rng: np.random.Generator, groups: int = 5, width: int = 8) -> str:
    """``groups`` random lowercase hex groups of ``width`` digits joined by '-' (5 x 8 gives 44 characters)."""
    return "-".join(rng.bytes(width // 2).hex() for _ in range(groups))


def dicom_uid(rng: np.random.Generator) -> str:
    """A DICOM UID under the UUID-derived root ``2.25`` (at most 44 characters)."""
    return "2.25." + str(int.from_bytes(rng.bytes(16), "big") >> 1)


def progress(total: int, desc: str):
    """A tqdm progress bar on stderr counting ``total`` images (``with progress(n, "...") as bar: bar.update()``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", leave=False, dynamic_ncols=True, mininterval=0.5)


def save_image(path: Path, image: np.ndarray) -> None:
    """Save a (H, W) uint8 image as JPEG (quality :data:`JPEG_QUALITY`) or PNG (fast zlib level 1) by the suffix
    of ``path``."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {"compress_level": 1}
    Image.fromarray(image).save(path, **options)
