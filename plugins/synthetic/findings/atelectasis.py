"""Atelectasis: 1-2 plate-like bands in the mid or lower zone with the ipsilateral hemidiaphragm raised.

Zone mid / lower 0.3 / 0.7; bands 0.08 apart in t, length 10-20 %, thickness 1.6-2.8 % of the image side,
amplitude 0.18 + 0.15 s; the hemidiaphragm rises by 0.015 + 0.035 s. Nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import ATELECTASIS, LUNG_OPACITY
from medvlp_bench_plugins.synthetic.phantom import Anatomy, FrontalCanvas, Lesion
from medvlp_bench_plugins.synthetic.raster import axes, ramp, window


@dataclass(frozen=True)
class PlateAtelectasis(Lesion):
    """Plate-like (discoid) atelectasis: a thin band of length ``length`` and thickness ``thickness`` centred
    at (u, t), tilted by ``angle`` radians, adding ``amplitude``; the ipsilateral hemidiaphragm rises by
    ``elevation`` (volume loss). On a lateral view a horizontal band at its level, x in [0.4, 0.7]."""

    side: str
    u: float
    t: float
    length: float
    thickness: float
    angle: float
    amplitude: float
    elevation: float

    def diaphragm_lift(self) -> Optional[tuple[str, float]]:
        return self.side, self.elevation

    def draw(self, canvas: FrontalCanvas, density: np.ndarray, rng: np.random.Generator) -> None:
        a, size = canvas.anatomy, canvas.size
        x, y = axes(size)
        cx, cy = a.side_x(self.side, self.u), a.level_y(self.t)
        half = self.length / 2 + self.thickness
        rows, cols = window(size, cx - half, cy - half, cx + half, cy + half)
        dx, dy = x[:, cols] - cx, y[rows] - cy
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        along, across = dx * cos + dy * sin, -dx * sin + dy * cos
        taper = np.clip(1.0 - np.square(along / (self.length / 2)), 0, 1)
        band = ramp(self.thickness / 2 - np.abs(across), size) * taper
        density[rows, cols] += self.amplitude * band * canvas.lungs[self.side][rows, cols]

    def draw_lateral(self, density: np.ndarray, lung: np.ndarray, anatomy: Anatomy, size: int) -> None:
        _, y = axes(size)
        level = anatomy.level_y(self.t)
        rows, cols = window(size, 0.4, level - self.thickness, 0.7, level + self.thickness)
        band = ramp(self.thickness / 2 - np.abs(y[rows] - level), size)
        density[rows, cols] += self.amplitude * band * lung[rows, cols]


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[PlateAtelectasis]]:
    side, zone = sampling.side(rng), sampling.zone(rng, (0.0, 0.3, 0.7))
    t = sampling.level(rng, zone)
    lesions = [
        PlateAtelectasis(side=side, u=sampling.uniform(rng, 0.3, 0.65), t=t + 0.08 * k,
                         length=sampling.uniform(rng, 0.1, 0.2), thickness=sampling.uniform(rng, 0.016, 0.028),
                         angle=float(rng.normal(0.0, 0.2)), amplitude=0.18 + 0.15 * severity,
                         elevation=0.015 + 0.035 * severity)
        for k in range(int(rng.integers(1, 3)))
    ]
    return Finding(side, zone, severity), lesions


FINDING = FindingSpec(
    name="atelectasis",
    draw_order=2,
    report_order=3,
    prevalence=0.2,
    sample=sample,
    describes="1-2 plate-like bands, mid/lower zone, ipsilateral hemidiaphragm raised",
    positive=(
        ("Plate-like atelectasis in the {where}.", "{Where} atelectasis.", {ATELECTASIS: 1}),
        ("There is {degree} discoid atelectasis in the {where}.", "Atelectasis in the {where}.", {ATELECTASIS: 1}),
        ("Linear atelectasis is seen in the {where}.", "{Where} linear atelectasis.", {ATELECTASIS: 1}),
    ),
    hedged=(
        ("Linear opacity in the {where}, possibly atelectasis.", "Possible {where} atelectasis.",
         {LUNG_OPACITY: -1, ATELECTASIS: -1}),
        ("Streaky opacity in the {where} may reflect atelectasis.", "{Where} opacity, likely atelectasis.",
         {LUNG_OPACITY: -1, ATELECTASIS: -1}),
    ),
    contradicts=("lungs_clear", "no_focal_opacity"),
)
