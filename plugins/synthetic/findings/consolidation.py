"""Consolidation: a dense lobar opacity bounded by a fissure, with air bronchograms in half of them.

Lower lobe with probability 0.7 (fissure at t in [0.45, 0.6], slope 0.1-0.4), else upper (t in [0.3, 0.42],
slope within +-0.05); amplitude 0.16 + 0.14 s. Nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import CONSOLIDATION, PNEUMONIA
from medvlp_bench_plugins.synthetic.phantom import SIDE_SIGN, Anatomy, FrontalCanvas, Lesion
from medvlp_bench_plugins.synthetic.raster import axes, curves, ramp, smooth_noise


@dataclass(frozen=True)
class Consolidation(Lesion):
    """Dense lobar opacity bounded by a fissure, with optional air bronchograms.

    The lobe is the part of the lung below (``lower=True``) or above the fissure line through
    (u=0, t=fissure_t) tilted by ``fissure_slope`` (dt per du); at distance s beyond the fissure the
    attenuation rises by ``amplitude * min(1, 1.2 - s / (0.9 H))`` (H the lung height: sharp at the fissure,
    fading far from it); air bronchograms (dark branching curves, zero-levels of smooth noise) subtract
    ``0.35 * amplitude`` inside it. On a lateral view the lobe is the lung beyond the fissure's level, behind
    x = 0.35.
    """

    side: str
    fissure_t: float
    fissure_slope: float
    lower: bool
    amplitude: float
    bronchograms: bool

    def draw(self, canvas: FrontalCanvas, density: np.ndarray, rng: np.random.Generator) -> None:
        a, size = canvas.anatomy, canvas.size
        x, y = axes(size)
        span = a.base_y - a.apex_y
        u = SIDE_SIGN[self.side] * (x - a.center_x) / a.lung_width - a.mediastinum / a.lung_width
        fissure = a.level_y(self.fissure_t) + self.fissure_slope * span * u
        signed = (y - fissure) if self.lower else (fissure - y)
        lobe = ramp(signed, size) * np.clip(1.2 - np.abs(signed) / (0.9 * span), 0.0, 1.0)
        if self.bronchograms:
            lobe = lobe * (1.0 - 0.35 * curves(smooth_noise(rng, size, max(size // 10, 6)), 0.12))
        density += self.amplitude * lobe * canvas.aerated[self.side]

    def draw_lateral(self, density: np.ndarray, lung: np.ndarray, anatomy: Anatomy, size: int) -> None:
        x, y = axes(size)
        level = anatomy.level_y(self.fissure_t)
        signed = (y - level) if self.lower else (level - y)
        density += self.amplitude * ramp(signed, size) * lung * ramp(x - 0.35, size)


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Consolidation]]:
    side, lower = sampling.side(rng), bool(rng.random() < 0.7)
    fissure = sampling.uniform(rng, 0.45, 0.6) if lower else sampling.uniform(rng, 0.3, 0.42)
    slope = sampling.uniform(rng, 0.1, 0.4) if lower else sampling.uniform(rng, -0.05, 0.05)
    lesion = Consolidation(side=side, fissure_t=fissure, fissure_slope=slope, lower=lower,
                           amplitude=0.16 + 0.14 * severity, bronchograms=bool(rng.random() < 0.5))
    return Finding(side, "lower" if lower else "upper", severity), [lesion]


FINDING = FindingSpec(
    name="consolidation",
    draw_order=1,
    report_order=1,
    prevalence=0.12,
    sample=sample,
    describes="a dense lobar opacity bounded by a fissure, air bronchograms in half",
    positive=(
        ("Dense consolidation in the {where}.", "{Where} consolidation.", {CONSOLIDATION: 1}),
        ("There is lobar consolidation of the {where} with air bronchograms.",
         "Consolidation of the {where}, likely pneumonia.", {CONSOLIDATION: 1, PNEUMONIA: -1}),
        ("{Where} consolidation is present.", "{Where} consolidation.", {CONSOLIDATION: 1}),
    ),
    hedged=(
        ("Increased density in the {where} may reflect consolidation.", "Possible {where} consolidation.",
         {CONSOLIDATION: -1}),
        ("Possible consolidation in the {where}.", "Consolidation in the {where} is not excluded and could "
         "reflect pneumonia.", {CONSOLIDATION: -1, PNEUMONIA: -1}),
    ),
    contradicts=("lungs_clear", "no_consolidation", "no_focal_opacity"),
)
