"""Relative run-length encoding of binary masks, as in the SIIM-ACR Pneumothorax ``train-rle.csv``.

Pixels are numbered column-major (Fortran order) from 0: pixel (row r, column c) of an H x W image is number
``c * H + r``. A mask is a space-separated list of integer pairs ``(offset_k, length_k)``; run k covers the pixels
``s_k, ..., s_k + length_k - 1`` with ``s_k = e_{k-1} + offset_k`` and ``e_k = s_k + length_k`` (``e_0 = 0``): each
start is counted from the end of the previous run, so ``s_k = sum(offset_1..k) + sum(length_1..k-1)``.
``"-1"`` stands for an empty mask (no pneumothorax). Offsets are >= 0 (0 only joins a run to the previous one),
lengths >= 1 and every run must end inside the image (``e_k <= H * W``).

Example: on a 4 x 4 image ``"1 2 3 4"`` covers pixels 1-2 (rows 1-2 of column 0) and 6-9 (rows 2-3 of column 1,
rows 0-1 of column 2).
"""

from __future__ import annotations

import re

import numpy as np

INTEGER = re.compile(r"-?[0-9]+")
#: the encoding of an empty mask
EMPTY = "-1"


class RLEError(ValueError):
    """A run-length string that is not a valid relative RLE for the given image size."""


def parse_runs(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The (offsets, lengths) int64 arrays of an RLE string (both empty for ``"-1"`` or a blank string).

    Raises :class:`RLEError` for a non-integer token, an odd token count, a negative offset or a length < 1.
    """
    tokens = text.split()
    if tokens == [EMPTY]:
        tokens = []
    bad = next((token for token in tokens if not INTEGER.fullmatch(token)), None)
    if bad is not None:
        raise RLEError(f"non-integer token {bad!r} in run-length encoding")
    values = np.array(tokens, dtype=str).astype(np.int64)
    if values.size % 2:
        raise RLEError(f"odd number of tokens ({values.size}); expected (offset, length) pairs")
    offsets, lengths = values[0::2], values[1::2]
    if (offsets < 0).any():
        raise RLEError(f"negative offset {int(offsets[offsets < 0][0])}")
    if (lengths < 1).any():
        raise RLEError(f"run length {int(lengths[lengths < 1][0])} < 1")
    return offsets, lengths


def run_end(text: str) -> int:
    """One past the last pixel number an RLE string covers (0 for an empty mask); validates like
    :func:`parse_runs`."""
    offsets, lengths = parse_runs(text)
    return int(offsets.sum() + lengths.sum())


def decode_relative_rle(text: str, height: int, width: int) -> np.ndarray:
    """The (height, width) bool mask of a relative RLE string (see the module docstring).

    Raises :class:`RLEError` for a malformed string or a run that ends past the image's ``height * width`` pixels.
    """
    offsets, lengths = parse_runs(text)
    size = height * width
    ends = np.cumsum(offsets + lengths)
    if ends.size and ends[-1] > size:
        raise RLEError(f"runs end at pixel {int(ends[-1])}, past the {height} x {width} image ({size} pixels)")
    starts = ends - lengths
    steps = np.zeros(size + 1, dtype=np.int32)
    np.add.at(steps, starts, 1)
    np.add.at(steps, ends, -1)
    return (np.cumsum(steps[:-1]) > 0).reshape((height, width), order="F")


def encode_relative_rle(mask: np.ndarray) -> str:
    """The relative RLE string of a 2-D bool mask (``"-1"`` if it is empty); inverse of
    :func:`decode_relative_rle`."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    edges = np.flatnonzero(np.diff(np.concatenate(([False], flat, [False])).astype(np.int8)))
    if edges.size == 0:
        return EMPTY
    starts, ends = edges[0::2], edges[1::2]
    offsets = starts - np.concatenate(([0], ends[:-1]))
    return " ".join(map(str, np.column_stack((offsets, ends - starts)).ravel()))
