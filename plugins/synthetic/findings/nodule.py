"""Pulmonary nodule: a small sharp opacity.

Zone upper / mid / lower 0.4 / 0.4 / 0.2, u in [0.3, 0.8], radius 1.6-2.8 % of the image side, amplitude
0.15 + 0.12 s, sharpness 3. Nothing is recorded.
"""

from __future__ import annotations

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import LUNG_LESION
from medvlp_bench_plugins.synthetic.opacity import Opacity


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Opacity]]:
    side, zone = sampling.side(rng), sampling.zone(rng, (0.4, 0.4, 0.2))
    lesion = Opacity(side=side, u=sampling.uniform(rng, 0.3, 0.8), t=sampling.level(rng, zone),
                     radius=sampling.uniform(rng, 0.016, 0.028), aspect=sampling.uniform(rng, 0.9, 1.1),
                     amplitude=0.15 + 0.12 * severity, sharpness=3.0)
    return Finding(side, zone, severity), [lesion]


FINDING = FindingSpec(
    name="nodule",
    draw_order=8,
    report_order=4,
    prevalence=0.05,
    sample=sample,
    describes="a small sharp opacity",
    positive=(
        ("A {mm} mm nodule is seen in the {where}.", "{Where} nodule; chest CT is recommended.", {LUNG_LESION: 1}),
        ("There is a {mm} mm {side} pulmonary nodule in the {zone_phrase}.", "{Side} pulmonary nodule.",
         {LUNG_LESION: 1}),
    ),
    hedged=(
        ("Possible {mm} mm nodule in the {where}.", "A nodular density in the {where} could be a nipple shadow.",
         {LUNG_LESION: -1}),
    ),
    contradicts=("lungs_clear", "no_focal_opacity"),
)
