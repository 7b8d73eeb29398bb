"""Write 8-bit grey-scale images as minimal, valid DICOM files (used by the synthetic dataset writers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom(
    path: Path,
    image: np.ndarray,
    *,
    patient_id: str,
    sop_instance_uid: str,
    view_position: str = "PA",
    sex: str = "O",
    age: int | None = None,
    monochrome1: bool = False,
) -> None:
    """Write ``image`` ((H, W) uint8) to ``path`` as a Secondary Capture DICOM.

    With ``monochrome1=True`` the stored values are inverted (255 - v) and tagged MONOCHROME1, as some
    scanners do; readers must invert them back.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a (H, W) uint8 image, got {image.dtype} {image.shape}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.PatientID = patient_id
    dataset.PatientName = patient_id
    dataset.PatientSex = sex
    if age is not None:
        dataset.PatientAge = f"{int(age):03d}Y"
    dataset.Modality = "CR"
    dataset.ViewPosition = view_position
    dataset.BodyPartExamined = "CHEST"
    dataset.Rows, dataset.Columns = image.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    pixels = (255 - image) if monochrome1 else image
    dataset.PixelData = np.ascontiguousarray(pixels).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(str(path), enforce_file_format=True)
