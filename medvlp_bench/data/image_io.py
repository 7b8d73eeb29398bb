"""Read chest X-rays from DICOM, JPEG or PNG into 8-bit grey-scale arrays.

DICOM pixel data are rescaled with the modality LUT (``RescaleSlope``/``RescaleIntercept``), then linearly
mapped from [min, max] of the image to [0, 255]; ``PhotometricInterpretation == MONOCHROME1`` (where higher
values are darker) is inverted so that bone is always bright. JPEG/PNG images are converted to luminance ("L").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medvlp_bench.errors import DataError

DICOM_SUFFIXES = (".dcm", ".dicom")


def read_dicom(path: Path) -> np.ndarray:
    """Return the DICOM image at ``path`` as a (H, W) uint8 array (MONOCHROME1 inverted)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(str(path))
        pixels = dataset.pixel_array.astype(np.float32)
    except Exception as error:  # pydicom raises many types for damaged files
        raise DataError(f"cannot decode DICOM ({type(error).__name__}: {error})", file=str(path)) from None
    if pixels.ndim != 2:
        raise DataError(f"expected a single-frame grey-scale DICOM, got pixel array {pixels.shape}", file=str(path))
    slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
    intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    if str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper() == "MONOCHROME1":
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8)


def read_raster(path: Path) -> np.ndarray:
    """Return a JPEG/PNG image at ``path`` as a (H, W) uint8 luminance array."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"cannot decode image ({type(error).__name__}: {error})", file=str(path)) from None


def read_image(path: str | Path) -> np.ndarray:
    """Read a chest X-ray (DICOM by suffix, otherwise a raster format) as a (H, W) uint8 array."""
    path = Path(path)
    if not path.is_file():
        raise DataError("image file not found", file=str(path))
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom(path)
    return read_raster(path)
