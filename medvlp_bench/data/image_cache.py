"""A prepared-image cache: each sample table decoded once into a memory-mapped (N, side, side) uint8 array.

Preparation of one image: decode (DICOM/JPEG/PNG -> grey uint8), resize so that the longer side is ``side``
pixels (area interpolation, PIL ``BOX``), and zero-pad to ``side x side`` with the image centred.
The original (height, width) of each image is kept beside the cache (:func:`prepared_sizes`), so protocols can map
boxes and masks with :func:`letterbox_geometry`. The cache file is named by the sha256 of ``side`` and, per row, the image path, size in bytes and modification
time (ns), so a changed file or a different table yields a new cache. Files are written under a temporary
name and renamed when complete, the ``.json`` marker last; a killed preparation never leaves a cache that looks
complete, and concurrent processes prepare a table once, under its lock (:mod:`medvlp_bench.data.build_once`).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from medvlp_bench.data.build_once import atomic_write_text, exclusive_lock, lock_path, temporary_path
from medvlp_bench.data.image_io import read_image
from medvlp_bench.errors import DataError

#: at most this many unreadable images are listed in one error message
MAX_LISTED_FAILURES = 5


def prepared_side(input_size: int) -> int:
    """Side of the prepared images for an encoder input: the reference resizes to 256 then crops 224."""
    return round(input_size * 256 / 224)


def letterbox(image: np.ndarray, side: int) -> np.ndarray:
    """Resize ``image`` (H, W) so its longer side is ``side`` (area interpolation; nearest for a bool mask), then
    zero-pad to square (see :func:`letterbox_geometry`)."""
    height, width = image.shape
    scale, top, left = letterbox_geometry(height, width, side)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resample = Image.Resampling.NEAREST if image.dtype == bool else Image.Resampling.BOX
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), resample))
    out = np.zeros((side, side), dtype=image.dtype)
    out[top : top + new_h, left : left + new_w] = resized
    return out


def cache_key(table: pd.DataFrame, side: int) -> str:
    """sha256 of the side and each row's (image path, file size, mtime in ns)."""
    digest = hashlib.sha256(f"side={side}\n".encode())
    for path in table["image_path"]:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\tmissing\n".encode())
    return digest.hexdigest()


def _prepare_one(args: tuple[str, int]) -> tuple[np.ndarray | None, tuple[int, int], str | None]:
    path, side = args
    try:
        image = read_image(path)
        return letterbox(image, side), image.shape, None
    except DataError as error:
        return None, (0, 0), str(error)


def _failure_message(table: pd.DataFrame, failures: list[tuple[int, str]]) -> str:
    lines = []
    for index, reason in failures[:MAX_LISTED_FAILURES]:
        row = table.iloc[index]
        lines.append(f"  {row['source_file']}, row {row['source_row']}: {reason}")
    more = f"\n  ... and {len(failures) - MAX_LISTED_FAILURES} more" if len(failures) > MAX_LISTED_FAILURES else ""
    return f"{len(failures)} image(s) could not be read:\n" + "\n".join(lines) + more


def prepare_images(
    table: pd.DataFrame, side: int, cache_root: Path, *, workers: int | None = None, label: str = "images"
) -> tuple[np.ndarray, str]:
    """Return the (N, side, side) uint8 array of ``table``'s images (memory-mapped) and its cache key.

    The first call decodes every image in ``workers`` processes (default: the CPU count) with a progress bar;
    later calls map the finished file. Unreadable images raise one :class:`DataError` listing each failing
    image with the CSV file and row it came from.
    """
    key = cache_key(table, side)
    path = cache_root / f"{key}.u8"
    meta_path = cache_root / f"{key}.json"
    shape = (len(table), side, side)
    if not (path.is_file() and meta_path.is_file()):
        with exclusive_lock(lock_path(path)):
            if not (path.is_file() and meta_path.is_file()):
                _prepare(table, side, path, meta_path, workers, label)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=shape), key


def _prepare(table: pd.DataFrame, side: int, path: Path, meta_path: Path, workers: int | None, label: str) -> None:
    """Decode, letterbox and store every image of ``table`` at ``path`` (sizes beside it, ``meta_path`` last)."""
    shape = (len(table), side, side)
    temporary = temporary_path(path)
    array = np.memmap(temporary, dtype=np.uint8, mode="w+", shape=shape)
    failures: list[tuple[int, str]] = []
    sizes = np.zeros((len(table), 2), dtype=np.int32)
    jobs = [(str(p), side) for p in table["image_path"]]
    workers = workers or os.cpu_count() or 1
    progress = tqdm(total=len(jobs), desc=f"preparing {label} ({side}px)", unit="img", leave=False)
    try:
        results = _map(jobs, workers)
        for index, (image, size, reason) in enumerate(results):
            if image is None:
                failures.append((index, reason))
            else:
                array[index] = image
                sizes[index] = size
            progress.update()
    finally:
        progress.close()
    if failures:
        del array
        temporary.unlink(missing_ok=True)
        raise DataError(_failure_message(table, failures))
    array.flush()
    del array
    sizes_path = path.with_suffix(".sizes.npy")
    sizes_temporary = temporary_path(sizes_path, ".npy")
    np.save(sizes_temporary, sizes)
    os.replace(sizes_temporary, sizes_path)
    os.replace(temporary, path)
    atomic_write_text(meta_path, json.dumps({"side": side, "count": len(table)}))


def prepared_sizes(key: str, cache_root: Path) -> np.ndarray:
    """Original (height, width) in pixels of each image of a prepared cache, (N, 2) int32."""
    return np.load(Path(cache_root) / f"{key}.sizes.npy")


def letterbox_geometry(height: int, width: int, side: int) -> tuple[float, int, int]:
    """``(scale, top, left)`` of :func:`letterbox`: a point (x, y) of the original image lands at
    ``(x * scale + left, y * scale + top)`` in the prepared image."""
    scale = side / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return scale, (side - new_h) // 2, (side - new_w) // 2


def _map(jobs: list[tuple[str, int]], workers: int):
    """Yield ``_prepare_one`` results in order, in worker processes when the job is large enough."""
    if workers <= 1 or len(jobs) < 64:
        yield from map(_prepare_one, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as executor:
        yield from executor.map(_prepare_one, jobs, chunksize=32)
