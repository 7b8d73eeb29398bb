"""Lung opacity (pneumonia): 1-3 fluffy airspace opacities, each recorded as a pixel box.

Count 1 / 2 / 3 with probabilities 0.6 / 0.3 / 0.1, each in a random lung and zone (upper / mid / lower 0.15 /
0.35 / 0.5) at u in [0.3, 0.72], radius 3.5-6.5 % of the image side, the union of 2-4 Gaussian lobes, amplitude
0.05 + 0.1 s (synthetic v1: 0.1 + 0.16 s). Records: ``"lung_opacity"`` -> list of boxes (x, y, w, h) in pixels.
"""

from __future__ import annotations

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import LUNG_OPACITY, PNEUMONIA
from medvlp_bench_plugins.synthetic.opacity import Opacity

NAME = "lung_opacity"


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Opacity]]:
    count = int(rng.choice((1, 2, 3), p=(0.6, 0.3, 0.1)))
    sides = [sampling.side(rng) for _ in range(count)]
    zones = [sampling.zone(rng) for _ in range(count)]
    lesions = [
        Opacity(side=side, u=sampling.uniform(rng, 0.3, 0.72), t=sampling.level(rng, zone),
                radius=sampling.uniform(rng, 0.035, 0.065), aspect=sampling.uniform(rng, 0.9, 1.5),
                amplitude=0.05 + 0.1 * severity, lobes=sampling.lobes(rng, int(rng.integers(2, 5)), 0.1),
                recorded_as=NAME)
        for side, zone in zip(sides, zones)
    ]
    laterality = sides[0] if len(set(sides)) == 1 else "bilateral"
    return Finding(laterality, zones[0], severity), lesions


FINDING = FindingSpec(
    name=NAME,
    draw_order=0,
    report_order=0,
    prevalence=0.2,
    sample=sample,
    records="list of opacity boxes (x, y, w, h) in pixels",
    describes="1-3 fluffy airspace opacities (2-4 Gaussian lobes each)",
    positive=(
        ("There is a patchy opacity in the {where}.", "{Where} pneumonia.", {LUNG_OPACITY: 1, PNEUMONIA: 1}),
        ("Focal airspace opacity in the {where}, consistent with pneumonia.", "Pneumonia in the {where}.",
         {LUNG_OPACITY: 1, PNEUMONIA: 1}),
        ("Airspace opacity is present in the {where}.", "{Where} opacity.", {LUNG_OPACITY: 1}),
        ("Ill-defined opacities in the {where}.", "{Where} opacities concerning for pneumonia.",
         {LUNG_OPACITY: 1, PNEUMONIA: -1}),
    ),
    hedged=(
        ("Subtle opacity in the {where} may represent early pneumonia.", "Possible {where} pneumonia.",
         {LUNG_OPACITY: -1, PNEUMONIA: -1}),
        ("Hazy opacity in the {where}, possibly infectious.", "Pneumonia in the {where} cannot be excluded.",
         {LUNG_OPACITY: -1, PNEUMONIA: -1}),
    ),
    contradicts=("lungs_clear", "no_consolidation", "no_focal_opacity"),
)
