"""COVID-19 pattern: bilateral peripheral ground-glass opacities in the lower zones.

2-4 opacities per lung at u in [0.72, 0.95], t in [0.45, 0.9], radius 4-6.5 %, aspect 1.2-1.8, amplitude
0.05 + 0.07 s. Off by default (prevalence 0); a writer asks for it. Nothing is recorded.
"""

from __future__ import annotations

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import LUNG_OPACITY, PNEUMONIA
from medvlp_bench_plugins.synthetic.opacity import Opacity


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Opacity]]:
    lesions = []
    for side in ("right", "left"):
        for _ in range(int(rng.integers(2, 5))):
            lesions.append(Opacity(side=side, u=sampling.uniform(rng, 0.72, 0.95), t=sampling.uniform(rng, 0.45, 0.9),
                                   radius=sampling.uniform(rng, 0.04, 0.065), aspect=sampling.uniform(rng, 1.2, 1.8),
                                   amplitude=0.05 + 0.07 * severity))
    return Finding("bilateral", "lower", severity), lesions


FINDING = FindingSpec(
    name="covid19",
    draw_order=7,
    report_order=2,
    prevalence=0.0,
    sample=sample,
    describes="bilateral peripheral lower-zone ground glass",
    positive=(
        ("Bilateral peripheral ground-glass opacities in the lower lungs.",
         "Findings compatible with viral pneumonia, including COVID-19.", {LUNG_OPACITY: 1, PNEUMONIA: 1}),
        ("Patchy bilateral peripheral opacities in both lower zones.",
         "Multifocal peripheral opacities may represent COVID-19 pneumonia.", {LUNG_OPACITY: 1, PNEUMONIA: -1}),
    ),
    hedged=(
        ("Subtle bilateral peripheral hazy opacities in the lower lungs, possibly ground-glass.",
         "Possible atypical or viral pneumonia.", {LUNG_OPACITY: -1, PNEUMONIA: -1}),
    ),
    contradicts=("lungs_clear", "no_consolidation", "no_focal_opacity"),
)
