"""Pneumothorax: one lung retracts from the chest wall, leaving a lucent rim bounded by a faint pleural line;
recorded as a boolean mask.

Rim 0.02 + 0.06 s laterally and 0.02 + 0.07 s at the apex (image-side fractions). Records: ``"pneumothorax"`` ->
(H, W) bool mask, the union over collapsed lungs. Not visible on a lateral view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medvlp_bench_plugins.synthetic import sampling
from medvlp_bench_plugins.synthetic.finding_spec import Finding, FindingSpec
from medvlp_bench_plugins.synthetic.observations import PNEUMOTHORAX
from medvlp_bench_plugins.synthetic.phantom import FrontalCanvas, Lesion

NAME = "pneumothorax"


@dataclass(frozen=True)
class Pneumothorax(Lesion):
    """The visceral pleura retracts from the chest wall by ``depth`` laterally and ``apex_depth`` at the apex
    (tapering to 30 % of ``depth`` at the base); the gap is lucent and without markings, and the pleural line
    is a faint 1-2 px bright curve (:meth:`FrontalCanvas.collapse`). Its pixels form the mask."""

    side: str
    depth: float
    apex_depth: float

    def reshape(self, canvas: FrontalCanvas) -> None:
        canvas.mark(NAME, canvas.collapse(self.side, self.depth, self.apex_depth))


def sample(rng: np.random.Generator, severity: float) -> tuple[Finding, list[Pneumothorax]]:
    side = sampling.side(rng)
    lesion = Pneumothorax(side=side, depth=0.02 + 0.06 * severity, apex_depth=0.02 + 0.07 * severity)
    return Finding(side, "upper", severity), [lesion]


FINDING = FindingSpec(
    name=NAME,
    draw_order=5,
    report_order=7,
    prevalence=0.08,
    sample=sample,
    records="(H, W) bool mask of the lucent gap",
    describes="apical/lateral lucent rim with a faint pleural line",
    positive=(
        ("{Amount} {side} apical pneumothorax.", "{Amount} {side} pneumothorax.", {PNEUMOTHORAX: 1}),
        ("There is a {amount} {side} pneumothorax with a visible pleural line at the apex.",
         "{Side} pneumothorax.", {PNEUMOTHORAX: 1}),
        ("A {amount} {side}-sided apicolateral pneumothorax is present.", "{Amount} {side} pneumothorax.",
         {PNEUMOTHORAX: 1}),
    ),
    hedged=(
        ("Possible tiny {side} apical pneumothorax.", "Questionable {side} apical pneumothorax.", {PNEUMOTHORAX: -1}),
        ("A small {side} apical pneumothorax cannot be excluded.", "Possible small {side} pneumothorax.",
         {PNEUMOTHORAX: -1}),
    ),
    contradicts=("no_effusion_or_pneumothorax", "no_pneumothorax"),
)
