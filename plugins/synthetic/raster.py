"""Pixel-grid helpers the phantom and its findings draw with.

An image is square, ``size`` pixels a side; geometry is in normalised image units ``x = (column + 0.5) / size``
(to the image right) and ``y = (row + 0.5) / size`` (downwards). Drawing is vectorised numpy on float32 grids,
restricted to local windows where a shape is small. Edges are anti-aliased with a linear ramp 1.5 px wide.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np
from PIL import Image


@lru_cache(maxsize=8)
def axes(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates: a (1, size) row of x and a (size, 1) column of y."""
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    centres.setflags(write=False)
    return centres[None, :], centres[:, None]


def ramp(distance: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased inside-indicator of a signed distance (normalised units, > 0 inside): 0..1 over 1.5 px."""
    result = np.multiply(distance, np.float32(size / 1.5))
    result += np.float32(0.5)
    np.maximum(result, 0.0, out=result)
    return np.minimum(result, 1.0, out=result)


def window(size: int, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
    """Row and column slices of the pixels whose centres may lie in the normalised box [x0, x1] x [y0, y1]."""
    c0, c1 = max(int(np.floor(x0 * size)), 0), min(int(np.ceil(x1 * size)) + 1, size)
    r0, r1 = max(int(np.floor(y0 * size)), 0), min(int(np.ceil(y1 * size)) + 1, size)
    return slice(r0, max(r1, r0)), slice(c0, max(c1, c0))


def local(size: int, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """The x row and y column of a window (see :func:`axes`)."""
    x, y = axes(size)
    return x[:, cols], y[rows]


def placed(size: int, rows: slice, cols: slice, values: np.ndarray) -> np.ndarray:
    """A (size, size) float32 array, zero except ``values`` in the window."""
    full = np.zeros((size, size), np.float32)
    full[rows, cols] = values
    return full


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Unit-variance random field, smooth over ``size / cells`` pixels (bilinear upsampling of white noise)."""
    coarse = rng.standard_normal((cells, cells), dtype=np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.BILINEAR))


def curves(noise: np.ndarray, width: float) -> np.ndarray:
    """Thin curvy lines: ``exp(-(noise / width)^2)``, 1 on the zero-level curves of a smooth field."""
    return np.exp(-np.square(noise * np.float32(1.0 / width)))


def gaussian_window(size: int, cx: float, cy: float, rx: float, ry: float, sharpness: float = 1.0):
    """``exp(-(r^2)^sharpness)`` with r the (rx, ry)-scaled distance from (cx, cy), in a 3-radius window;
    returns the window's (rows, cols) and the values."""
    x, y = axes(size)
    reach = 3.0 / sharpness ** 0.5
    rows, cols = window(size, cx - reach * rx, cy - reach * ry, cx + reach * rx, cy + reach * ry)
    r2 = np.square((x[:, cols] - cx) / rx) + np.square((y[rows] - cy) / ry)
    return rows, cols, np.exp(-(r2 ** sharpness if sharpness != 1.0 else r2))


def box_of(values: np.ndarray, rows: slice, cols: slice,
           threshold: float) -> Optional[tuple[float, float, float, float]]:
    """Pixel box (x, y, w, h) of the pixels of a windowed field above ``threshold``, or ``None``."""
    hit = values > threshold
    if not hit.any():
        return None
    rr = np.flatnonzero(hit.any(axis=1))
    cc = np.flatnonzero(hit.any(axis=0))
    x0, y0 = cols.start + cc[0], rows.start + rr[0]
    return float(x0), float(y0), float(cc[-1] - cc[0] + 1), float(rr[-1] - rr[0] + 1)
