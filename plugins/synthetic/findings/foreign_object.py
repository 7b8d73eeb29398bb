"""Foreign objects: 1-3 radiopaque (metal) objects over the chest, recorded by shape and outline.

Count 1 / 2 / 3 with probabilities 0.6 / 0.3 / 0.1; shapes rectangle, ellipse, polygon equally likely.
Records: ``"foreign_object"`` -> list of ``(shape, points)``: shape one of :data:`SHAPES`, points in pixels
rounded to 0.1 — ``[x1, y1, x2, y2]`` (a rectangle, or an ellipse's bounding box) or ``[x1, y1, x2, y2, ...]``
(a polygon's vertices). The finding's laterality is the side of the image midline the objects lie on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import SUPPORT_DEVICES
from medvlp_bench_plugins.synthetic.phantom import Anatomy, FrontalCanvas, Lesion
from medvlp_bench_plugins.synthetic.raster import axes, window

NAME = "foreign_object"
RECTANGLE, ELLIPSE, POLYGON = "rectangle", "ellipse", "polygon"
#: the shapes, in the order of the random draw
SHAPES = (RECTANGLE, ELLIPSE, POLYGON)


@dataclass(frozen=True)
class ForeignObject(Lesion):
    """A radiopaque object (metal, attenuation ``+ amplitude``): ``shape`` rectangle ``(x1, y1, x2, y2)``,
    ellipse (its box ``x1, y1, x2, y2``) or polygon ``(x1, y1, x2, y2, ...)``; ``points`` in normalised image
    coordinates. On a lateral view a square of its width at depth ``0.3 + 0.4 x``."""

    shape: str
    points: tuple[float, ...]
    amplitude: float

    def draw(self, canvas: FrontalCanvas, density: np.ndarray, rng: np.random.Generator) -> None:
        size = canvas.size
        x, y = axes(size)
        px = [p * size for p in self.points]
        xs, ys = px[0::2], px[1::2]
        rows, cols = window(size, min(xs) / size, min(ys) / size, max(xs) / size, max(ys) / size)
        gx, gy = x[:, cols] * size, y[rows] * size
        if self.shape == RECTANGLE:
            inside = (gx >= xs[0]) & (gx <= xs[1]) & (gy >= ys[0]) & (gy <= ys[1])
        elif self.shape == ELLIPSE:
            cx, cy, rx, ry = (xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2, (xs[1] - xs[0]) / 2, (ys[1] - ys[0]) / 2
            inside = np.square((gx - cx) / rx) + np.square((gy - cy) / ry) <= 1.0
        else:
            inside = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
            for i in range(len(xs)):
                x0, y0, x1, y1 = xs[i - 1], ys[i - 1], xs[i], ys[i]
                if y0 == y1:
                    continue
                crosses = ((y0 > gy) != (y1 > gy)) & (gx < (x1 - x0) * (gy - y0) / (y1 - y0) + x0)
                inside ^= crosses
        density[rows, cols] += self.amplitude * inside
        canvas.record(NAME, (self.shape, [round(p, 1) for p in px]))

    def draw_lateral(self, density: np.ndarray, lung: np.ndarray, anatomy: Anatomy, size: int) -> None:
        xs, ys = self.points[0::2], self.points[1::2]
        cx, cy = 0.3 + 0.4 * (sum(xs) / len(xs)), sum(ys) / len(ys)
        half = max(max(xs) - min(xs), 0.01) / 2
        rows, cols = window(size, cx - half, cy - half, cx + half, cy + half)
        density[rows, cols] += self.amplitude


def foreign_object(rng: np.random.Generator, shape: str) -> ForeignObject:
    """One object: a rectangle or ellipse 2-8 % of the image side, or a star-shaped polygon with 3-7 vertices at
    radius 1.5-5 %, centred in x [0.15, 0.85], y [0.1, 0.88]."""
    cx, cy = sampling.uniform(rng, 0.15, 0.85), sampling.uniform(rng, 0.1, 0.88)
    amplitude = sampling.uniform(rng, 0.5, 0.9)
    if shape == POLYGON:
        count = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = sampling.uniform(rng, 0.015, 0.05) * rng.uniform(0.6, 1.0, count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1).ravel()
        return ForeignObject(POLYGON, tuple(float(p) for p in points), amplitude)
    half_w, half_h = sampling.uniform(rng, 0.01, 0.04), sampling.uniform(rng, 0.01, 0.04)
    return ForeignObject(shape, (cx - half_w, cy - half_h, cx + half_w, cy + half_h), amplitude)


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[ForeignObject]]:
    count = int(rng.choice((1, 2, 3), p=(0.6, 0.3, 0.1)))
    shapes = rng.choice(SHAPES, size=count)
    objects = [foreign_object(rng, str(shape)) for shape in shapes]
    sides = {"right" if sum(o.points[0::2]) / len(o.points[0::2]) < 0.5 else "left" for o in objects}
    return Finding(sides.pop() if len(sides) == 1 else "bilateral", "", severity), objects


FINDING = FindingSpec(
    name=NAME,
    draw_order=9,
    report_order=9,
    prevalence=0.12,
    sample=sample,
    records="list of (shape, points): rectangle / ellipse box [x1, y1, x2, y2] or polygon vertices, in pixels",
    describes="1-3 metal objects: rectangles, ellipses, star-shaped polygons",
    positive=(
        ("External monitoring leads and objects project over {hemithorax}.", "", {SUPPORT_DEVICES: 1}),
        ("Radiopaque foreign bodies project over {hemithorax}.", "Radiopaque foreign bodies.", {SUPPORT_DEVICES: 1}),
        ("Metallic external objects project over {hemithorax}.", "", {SUPPORT_DEVICES: 1}),
    ),
)
