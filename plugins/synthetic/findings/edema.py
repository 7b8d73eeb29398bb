"""Pulmonary edema: bilateral perihilar haze (one broad three-lobed opacity beside each hilum).

Radius 0.08 + 0.04 s, aspect 1.3, amplitude 0.025 + 0.06 s, at u in [0.1, 0.2], t in [0.42, 0.5]. Nothing is
recorded.
"""

from __future__ import annotations

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import EDEMA
from medvlp_bench_plugins.synthetic.opacity import Opacity


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Opacity]]:
    lesions = [
        Opacity(side=side, u=sampling.uniform(rng, 0.1, 0.2), t=sampling.uniform(rng, 0.42, 0.5),
                radius=0.08 + 0.04 * severity, aspect=1.3, amplitude=0.025 + 0.06 * severity,
                lobes=sampling.lobes(rng, 3, 0.12))
        for side in ("right", "left")
    ]
    return Finding("bilateral", "mid", severity), lesions


FINDING = FindingSpec(
    name="edema",
    draw_order=3,
    report_order=5,
    prevalence=0.15,
    sample=sample,
    describes="bilateral perihilar haze",
    positive=(
        ("{Degree} pulmonary edema with bilateral perihilar haziness.", "{Degree} pulmonary edema.", {EDEMA: 1}),
        ("Bilateral perihilar haziness consistent with {degree} interstitial edema.",
         "{Degree} interstitial pulmonary edema.", {EDEMA: 1}),
        ("There is {degree} bilateral pulmonary edema.", "Pulmonary edema, {degree}.", {EDEMA: 1}),
    ),
    hedged=(
        ("Bilateral perihilar haziness may represent mild edema.", "Possible mild pulmonary edema.", {EDEMA: -1}),
        ("Possible mild interstitial edema in both lungs.", "Mild edema cannot be excluded.", {EDEMA: -1}),
    ),
    contradicts=("lungs_clear", "no_edema", "no_focal_opacity"),
)
