"""Image reading: DICOM photometric handling, raster formats, clear errors for damaged files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medvlp_bench.data.dicom_writer import write_dicom
from medvlp_bench.data.image_io import read_image
from medvlp_bench.errors import DataError


def _gradient(height=32, width=48):
    return (np.arange(height * width) % 256).astype(np.uint8).reshape(height, width)


@pytest.mark.parametrize("monochrome1", [False, True])
def test_dicom_round_trip_inverts_monochrome1(tmp_path, monochrome1):
    image = _gradient()
    path = tmp_path / "x.dcm"
    write_dicom(path, image, patient_id="p", sop_instance_uid="1.2.3", monochrome1=monochrome1)
    assert np.array_equal(read_image(path), image)


def test_png_and_jpeg_read_as_grey(tmp_path):
    image = _gradient()
    Image.fromarray(image).convert("RGB").save(tmp_path / "x.png")
    assert np.array_equal(read_image(tmp_path / "x.png"), image)
    Image.fromarray(image).save(tmp_path / "x.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "x.jpg").astype(int) - image).mean() < 6


def test_damaged_and_missing_files_name_the_file(tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a dicom at all")
    with pytest.raises(DataError, match="broken.dcm: cannot decode DICOM"):
        read_image(broken)
    with pytest.raises(DataError, match="missing.png: image file not found"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(DataError, match="bad.jpg: cannot decode image"):
        read_image(tmp_path / "bad.jpg")
