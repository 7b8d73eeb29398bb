"""Cardiomegaly: an enlarged heart, part of the anatomy rather than a lesion.

The cardiothoracic ratio becomes 0.5 + 0.16 s (0.52-0.66) instead of the normal U(0.38, 0.52): the ranges
overlap as readers disagree near the 0.5 threshold; AP views magnify either by 6 %. Nothing is recorded.
"""

from __future__ import annotations

import numpy as np

from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import CARDIOMEGALY, ENLARGED_CARDIOMEDIASTINUM


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list]:
    return Finding("", "", severity), []


def enlarged_heart(severity: float) -> dict[str, float]:
    return {"ctr": 0.5 + 0.16 * severity}


FINDING = FindingSpec(
    name="cardiomegaly",
    draw_order=6,
    report_order=8,
    prevalence=0.18,
    sample=sample,
    anatomy=enlarged_heart,
    describes="cardiothoracic ratio 0.5 + 0.16 s",
    positive=(
        ("The heart is {adverb} enlarged.", "{Degree} cardiomegaly.", {CARDIOMEGALY: 1}),
        ("{Degree} cardiomegaly.", "Cardiomegaly.", {CARDIOMEGALY: 1}),
        ("The cardiac silhouette is {adverb} enlarged. The cardiomediastinal silhouette is widened.",
         "{Degree} cardiomegaly.", {CARDIOMEGALY: 1, ENLARGED_CARDIOMEDIASTINUM: 1}),
    ),
    hedged=(
        ("The heart size is borderline enlarged.", "Borderline heart size.", {CARDIOMEGALY: -1}),
        ("Possible mild cardiomegaly.", "The heart size may be mildly enlarged.", {CARDIOMEGALY: -1}),
    ),
    contradicts=("normal_heart", "normal_mediastinum"),
)
