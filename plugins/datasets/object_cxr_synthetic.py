"""Synthetic twin of the Object-CXR download in its raw layout.

Layout written into ``folder``::

    train.csv, dev.csv          image_name,annotation   ("TYPE x1 y1 x2 y2 ..." objects joined by ';', empty
                                                         for an image without objects)
    train/{image_name}, dev/{image_name}     JPEGs of varied, mostly non-square sizes (200-320 px a side)
    .medvlp_synthetic.json      completion marker (written last)

Images (default 1,000 train and 250 dev, times ``scale``; names ``00001.jpg``, ... numbered across both) are
phantom frontal radiographs rendered square at the longer side and resized to their drawn width x height (each
uniform in 200..320). With probability 0.5 an image carries 1-3 radiopaque foreign objects (the phantom's
rectangles, ellipses and polygons, recorded in Object-CXR's types 0 / 1 / 2); the other findings occur at the
phantom's default prevalence. Object points are scaled with the image and rounded to whole pixels, as in the
real annotations; a case whose rounded object would enclose no area is redrawn. The output is identical for
identical (seed, scale).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from medvlp_bench.api import begin_synthetic_folder, finish_synthetic_folder
from medvlp_bench_plugins import synthetic

DEFAULT_TRAIN = 1000
DEFAULT_DEV = 250
SIDE_RANGE = (200, 320)
OBJECT_RATE = 0.5
#: the finding whose recorded objects become the annotations; the others at the phantom's default prevalence
OBJECT_FINDING = "foreign_object"
FINDINGS_DRAWN = tuple(name for name, rate in synthetic.DEFAULT_PREVALENCE.items() if rate > 0)
#: Object-CXR's annotation TYPE of each phantom object shape
ANNOTATION_TYPES = {"rectangle": 0, "ellipse": 1, "polygon": 2}
HEADER = ("image_name", "annotation")


def _annotation(objects, scale_x: float, scale_y: float, width: int, height: int) -> str | None:
    """The annotation string of the phantom's objects scaled to the written image (``None`` if a rounded object
    would enclose no area)."""
    pieces = []
    for shape, points in objects:
        xy = np.asarray(points, dtype=np.float64).reshape(-1, 2) * (scale_x, scale_y)
        xy = np.clip(np.rint(xy), 0, (width, height)).astype(np.int64)
        if (xy.max(axis=0) <= xy.min(axis=0)).any():
            return None
        pieces.append(" ".join(map(str, [ANNOTATION_TYPES[shape], *xy.ravel()])))
    return ";".join(pieces)


def _draw(rng: np.random.Generator, with_objects: bool) -> tuple[np.ndarray, str]:
    """One image of a drawn size and its annotation (objects present or not)."""
    prevalence = dict(synthetic.DEFAULT_PREVALENCE, **{OBJECT_FINDING: float(with_objects)})
    while True:
        width, height = (int(side) for side in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1, size=2))
        side = max(width, height)
        case = synthetic.render_study(synthetic.sample_study(rng, prevalence), size=side)
        annotation = _annotation(case.records.get(OBJECT_FINDING, []), width / side, height / side, width, height)
        if annotation is not None and bool(annotation) == with_objects:
            image = np.asarray(Image.fromarray(case.image).resize((width, height), Image.BILINEAR))
            return image, annotation


def _write_part(folder: Path, csv_name: str, names: list[str], rng: np.random.Generator, bar) -> int:
    """Write the images of one part and its CSV; returns how many carry objects."""
    rows, with_objects = [], 0
    for name in names:
        has_objects = bool(rng.random() < OBJECT_RATE)
        image, annotation = _draw(rng, has_objects)
        synthetic.save_image(folder / Path(csv_name).stem / name, image)
        rows.append((name, annotation))
        with_objects += has_objects
        bar.update()
    with open(folder / csv_name, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return with_objects


def write_object_cxr(folder: Path, seed: int, scale: float = 1.0) -> None:
    """Write the synthetic Object-CXR download into ``folder`` (see the module docstring)."""
    folder = begin_synthetic_folder(Path(folder))
    rng = np.random.default_rng([seed, 0x4F435852])
    train, dev = synthetic.scaled(DEFAULT_TRAIN, scale), synthetic.scaled(DEFAULT_DEV, scale)
    names = [f"{number:05d}.jpg" for number in range(1, train + dev + 1)]
    with synthetic.progress(train + dev, "synthetic object-cxr") as bar:
        train_objects = _write_part(folder, "train.csv", names[:train], rng, bar)
        dev_objects = _write_part(folder, "dev.csv", names[train:], rng, bar)
    finish_synthetic_folder(folder, seed, scale, {"train": train, "dev": dev, "train_with_objects": train_objects,
                                           "dev_with_objects": dev_objects})
