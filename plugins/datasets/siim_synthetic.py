"""Synthetic twin of the SIIM-ACR Pneumothorax Segmentation (stage 1) download in its raw layout.

Layout written into ``folder``::

    train-rle.csv     header "ImageId, EncodedPixels"; one row per pneumothorax instance, values preceded by a
                      blank as in the real file (" 387 5 250 7 ..."); negatives " -1" or "-1" (half each)
    dicom-images-train/<study uid>/<series uid>/<ImageId>.dcm     256 x 256 8-bit DICOMs (MONOCHROME2)
    .medvlp_synthetic.json       completion marker (written last)

Images (default 1,200, times ``scale``) are phantom frontal radiographs. With probability 0.35 an image has a
pneumothorax (bilateral in 15 % of those: the phantom's one-sided collapse mirrored to the other lung); the other
findings occur at the phantom's default prevalence, so negatives are not all normal. The mask is split at the
midline into one instance per collapsed lung: one CSV row each, relative run-length encoded (column-major, see
:mod:`medvlp_bench_plugins.datasets.rle`). UIDs imitate the real ones (``1.2.276.0.7230010.3.1.4.8323329.<n>.<t>.<m>``
for an ImageId, ``...3.1.2...`` for its study, ``...3.1.3...`` for its series). The output is identical for
identical (seed, scale).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder, write_dicom
from medvlp_bench_plugins import synthetic
from medvlp_bench_plugins.datasets.rle import EMPTY, encode_relative_rle
from medvlp_bench_plugins.synthetic.findings.pneumothorax import Pneumothorax

DEFAULT_IMAGES = 1200
IMAGE_SIZE = 256
#: the finding whose recorded mask becomes the EncodedPixels rows; the others at the phantom's default prevalence
MASK_FINDING = "pneumothorax"
FINDINGS_DRAWN = tuple(name for name, rate in synthetic.DEFAULT_PREVALENCE.items() if rate > 0)
PNEUMOTHORAX_RATE = 0.35
BILATERAL_RATE = 0.15
#: share of negative rows written with the real file's leading blank (" -1")
SPACED_NEGATIVE_RATE = 0.5
UID_ROOT = "1.2.276.0.7230010.3.1"
UID_ORG = "8323329"
HEADER = "ImageId, EncodedPixels"


def _uids(number: int, rng: np.random.Generator) -> tuple[str, str, str]:
    """(study, series, ImageId) UIDs of image ``number``, shaped like the real ones."""
    stamp, micro = 1517875000 + int(rng.integers(0, 300000)), int(rng.integers(100000, 999997))
    return tuple(f"{UID_ROOT}.{level}.{UID_ORG}.{number}.{stamp}.{micro + offset}"
                 for level, offset in ((2, 0), (3, 1), (4, 2)))


def _bilateral(study):
    """The study with its pneumothorax mirrored to the other lung as well."""
    collapse = next(lesion for lesion in study.lesions if isinstance(lesion, Pneumothorax))
    other = "left" if collapse.side == "right" else "right"
    return dataclasses.replace(study, lesions=study.lesions + (dataclasses.replace(collapse, side=other),))


def _render(rng: np.random.Generator, positive: bool):
    """A frontal case with (non-empty mask) or without a pneumothorax."""
    prevalence = dict(synthetic.DEFAULT_PREVALENCE, **{MASK_FINDING: float(positive)})
    while True:
        study = synthetic.sample_study(rng, prevalence)
        if positive and rng.random() < BILATERAL_RATE:
            study = _bilateral(study)
        case = synthetic.render_study(study, size=IMAGE_SIZE)
        mask = case.records.get(MASK_FINDING)
        if not positive or (mask is not None and mask.any()):
            return case


def instance_masks(mask: np.ndarray, center_x: float) -> list[np.ndarray]:
    """The non-empty parts of ``mask`` on either side of the column at normalised x ``center_x`` (one per lung)."""
    split = int(round(center_x * mask.shape[1]))
    columns = np.arange(mask.shape[1])[None, :]
    parts = (mask & (columns < split), mask & (columns >= split))
    return [part for part in parts if part.any()]


def _values(case, rng: np.random.Generator) -> list[str]:
    """The EncodedPixels values of one image: one per instance, or a negative."""
    mask = case.records.get(MASK_FINDING)
    if mask is None:
        return [(" " if rng.random() < SPACED_NEGATIVE_RATE else "") + EMPTY]
    return [" " + encode_relative_rle(part) for part in instance_masks(mask, case.study.anatomy.center_x)]


def write_siim(folder: Path, seed: int, scale: float = 1.0) -> None:
    """Write the synthetic SIIM-ACR stage-1 download into ``folder`` (see the module docstring)."""
    folder = begin_synthetic_folder(Path(folder))
    rng = np.random.default_rng([seed, 0x5349494D])
    count = synthetic.scaled(DEFAULT_IMAGES, scale)
    numbers = 1000 + rng.permutation(max(20 * count, 10000))[:count]
    lines, positives = [HEADER], 0
    with synthetic.progress(count, "synthetic siim") as bar:
        for number in numbers:
            study_uid, series_uid, image_id = _uids(int(number), rng)
            positive = bool(rng.random() < PNEUMOTHORAX_RATE)
            case = _render(rng, positive)
            write_dicom(folder / "dicom-images-train" / study_uid / series_uid / f"{image_id}.dcm", case.image,
                        patient_id=synthetic.uuid_like(rng), sop_instance_uid=image_id, view_position=case.view,
                        sex=case.sex, age=case.age)
            positives += positive
            lines += [f"{image_id},{value}" for value in _values(case, rng)]
            bar.update()
    (folder / "train-rle.csv").write_text("\n".join(lines) + "\n")
    finish_synthetic_folder(folder, seed, scale, {"images": count, "positive": positives, "rows": len(lines) - 1})
