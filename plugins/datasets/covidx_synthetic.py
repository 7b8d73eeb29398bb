"""Synthetic twin of COVIDx (CXR-2, v9A lists) in its raw layout.

Layout written into ``folder``::

    train_COVIDx9A.txt, test_COVIDx9A.txt   lines "patient_id filename class source" (space-separated)
    train/{filename}, test/{filename}        256 x 256 images (PNG for source rsna, JPEG otherwise)
    .medvlp_synthetic.json                   completion marker (written last)

Defaults: 1,200 train and 300 test images (times ``scale``); classes ``normal`` / ``pneumonia`` / ``COVID-19``
drawn per patient with probabilities 4/9 / 3/9 / 2/9, so that images are about 40 / 30 / 30 %.
``normal``: no finding (source rsna). ``pneumonia``: the phantom's focal ``lung_opacity`` (70 %) or lobar
``consolidation`` (30 %) (source rsna, or cohen one time in five). ``COVID-19``: bilateral peripheral lower-zone
ground glass (``covid19``), 1-3 images per patient (sources cohen, actmed, sirm, ricord, bimcv). Abnormal images
add a pleural effusion with probability 0.1. Train and test patients are disjoint. Identical output for
identical (seed, scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder
from medvlp_bench_plugins import synthetic

DEFAULT_TRAIN_IMAGES = 1200
DEFAULT_TEST_IMAGES = 300
IMAGE_SIZE = 256
CLASSES = ("normal", "pneumonia", "COVID-19")
#: per patient; COVID-19 patients have 1.5 images on average, so images split about 0.4 / 0.3 / 0.3
CLASS_PROBABILITIES = (4 / 9, 3 / 9, 2 / 9)
COVID_SOURCES = ("cohen", "actmed", "sirm", "ricord", "bimcv")
IMAGES_PER_COVID_PATIENT = ((1, 2, 3), (0.6, 0.3, 0.1))
#: the findings of each class: pneumonia is focal (the first, with probability FOCAL_RATE) or lobar (the second)
PNEUMONIA_FINDINGS = ("lung_opacity", "consolidation")
FOCAL_RATE = 0.7
COVID_FINDING = "covid19"
#: a finding abnormal images also carry, with its probability
EXTRA_FINDING = ("effusion", 0.1)
FINDINGS_DRAWN = (*PNEUMONIA_FINDINGS, COVID_FINDING, EXTRA_FINDING[0])


def _findings(rng: np.random.Generator, label: str) -> list[str]:
    """Phantom findings of one image of class ``label``."""
    extra = [EXTRA_FINDING[0]] if rng.random() < EXTRA_FINDING[1] else []
    if label == "normal":
        return []
    if label == "pneumonia":
        return [PNEUMONIA_FINDINGS[0] if rng.random() < FOCAL_RATE else PNEUMONIA_FINDINGS[1], *extra]
    return [COVID_FINDING, *extra]


def _patient(rng: np.random.Generator, label: str, number: int) -> tuple[str, str, list[str]]:
    """(source, patient_id, file stems) of a new patient of class ``label`` (``number`` makes ids unique)."""
    if label == "COVID-19":
        source = str(rng.choice(COVID_SOURCES))
        count = int(rng.choice(IMAGES_PER_COVID_PATIENT[0], p=IMAGES_PER_COVID_PATIENT[1]))
    else:
        source, count = ("cohen" if label == "pneumonia" and rng.random() < 0.2 else "rsna"), 1
    if source == "rsna":
        patient = synthetic.uuid_like(rng)
        return source, patient, [patient]
    patient = {"cohen": f"{number}", "actmed": f"COVID-{number:05d}", "sirm": f"sirm-{number}",
               "ricord": f"{419000 + number}-{int(rng.integers(1, 999999)):06d}", "bimcv": f"sub-S{number:05d}"}[source]
    stems = [f"{source}-{rng.bytes(6).hex()}" for _ in range(count)]
    return source, patient, stems


def _write_list(folder: Path, split: str, images: int, first_number: int, rng: np.random.Generator) -> int:
    """Write the images of one split and its list file; returns the next free patient number."""
    lines: list[str] = []
    number = first_number
    with synthetic.progress(images, f"synthetic covidx {split}") as bar:
        while len(lines) < images:
            number += 1
            label = str(rng.choice(CLASSES, p=CLASS_PROBABILITIES))
            source, patient, stems = _patient(rng, label, number)
            sex, age = ("M", "F")[int(rng.integers(2))], int(rng.integers(18, 91))
            for stem in stems[: images - len(lines)]:
                filename = f"{stem}.png" if source == "rsna" else f"{stem}.jpg"
                study = synthetic.sample_study(rng, findings=_findings(rng, label), sex=sex, age=age)
                synthetic.save_image(folder / split / filename, synthetic.render_study(study, size=IMAGE_SIZE).image)
                lines.append(f"{patient} {filename} {label} {source}")
                bar.update()
    (folder / f"{split}_COVIDx9A.txt").write_text("\n".join(lines) + "\n")
    return number


def write_covidx(folder: Path, seed: int, scale: float = 1.0) -> None:
    """Write the synthetic COVIDx download into ``folder`` (see the module docstring)."""
    folder = begin_synthetic_folder(Path(folder))
    rng = np.random.default_rng([seed, 0x434F56])
    train = synthetic.scaled(DEFAULT_TRAIN_IMAGES, scale)
    test = synthetic.scaled(DEFAULT_TEST_IMAGES, scale)
    following = _write_list(folder, "train", train, 0, rng)
    _write_list(folder, "test", test, following, rng)
    finish_synthetic_folder(folder, seed, scale, {"train_images": train, "test_images": test})
