"""Pleural effusion: basal fluid with a meniscus that blunts the costophrenic angle.

Right / left / bilateral 0.4 / 0.4 / 0.2; fluid height 0.04 + 0.14 s x U(0.8, 1) of the image side at the
lateral wall. Nothing is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import PLEURAL_EFFUSION
from medvlp_bench_plugins.synthetic.phantom import LUNG_AIR, SIDE_SIGN, Anatomy, FrontalCanvas, Lesion
from medvlp_bench_plugins.synthetic.raster import axes


@dataclass(frozen=True)
class Effusion(Lesion):
    """Pleural effusion: fluid fills the lung base up to ``height`` above the costophrenic level at the lateral
    wall, with a meniscus sloping down medially (``height * (1 - 0.6 * (1 - u)^0.5)`` at position u), blunting
    the angle; inside the fluid (its surface a 0.02 ramp) the lung attenuation returns towards soft tissue
    (``+ amplitude * 0.38``). On a lateral view it fills the posterior costophrenic sulcus."""

    side: str
    height: float
    amplitude: float

    def draw(self, canvas: FrontalCanvas, density: np.ndarray, rng: np.random.Generator) -> None:
        a = canvas.anatomy
        x, y = axes(canvas.size)
        u = np.clip(SIDE_SIGN[self.side] * (x - a.center_x) / a.lung_width - a.mediastinum / a.lung_width, 0.0, 1.0)
        surface = a.base_y - self.height * (1.0 - 0.6 * np.sqrt(1.0 - u))
        fluid = np.clip((y - surface) / 0.02 + 0.5, 0.0, 1.0)
        density += (self.amplitude * LUNG_AIR) * fluid * canvas.lungs[self.side]

    def draw_lateral(self, density: np.ndarray, lung: np.ndarray, anatomy: Anatomy, size: int) -> None:
        x, y = axes(size)
        surface = anatomy.base_y - self.height * (0.4 + 0.6 * np.clip((x - 0.45) / 0.3, 0, 1))
        density += self.amplitude * LUNG_AIR * np.clip((y - surface) / 0.02 + 0.5, 0, 1) * lung


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Effusion]]:
    laterality = str(rng.choice(("right", "left", "bilateral"), p=(0.4, 0.4, 0.2)))
    sides = ("right", "left") if laterality == "bilateral" else (laterality,)
    lesions = [Effusion(side=side, height=0.04 + 0.14 * severity * sampling.uniform(rng, 0.8, 1.0),
                        amplitude=sampling.uniform(rng, 0.8, 1.0)) for side in sides]
    return Finding(laterality, "lower", severity), lesions


FINDING = FindingSpec(
    name="effusion",
    draw_order=4,
    report_order=6,
    prevalence=0.2,
    sample=sample,
    describes="basal fluid with a meniscus (blunted costophrenic angle)",
    positive=(
        ("{Amount} {side} pleural {effusions}.", "{Amount} {side} pleural {effusions}.", {PLEURAL_EFFUSION: 1}),
        ("Blunting of the {side} costophrenic {angles} consistent with {a}{amount} pleural {effusions}.",
         "{Side} pleural {effusions}.", {PLEURAL_EFFUSION: 1}),
        ("There {is} {a}{amount} {side} pleural {effusions} with a meniscus.", "{Amount} {side} {effusions}.",
         {PLEURAL_EFFUSION: 1}),
    ),
    hedged=(
        ("Blunting of the {side} costophrenic {angles} may reflect trace pleural fluid or effusion.",
         "Possible trace {side} pleural {effusions}.", {PLEURAL_EFFUSION: -1}),
        ("Possible {amount} {side} pleural {effusions}.", "{Side} pleural {effusions} cannot be excluded.",
         {PLEURAL_EFFUSION: -1}),
    ),
    contradicts=("no_effusion_or_pneumothorax", "no_effusion"),
)
