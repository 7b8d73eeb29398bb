"""What a finding module declares: :class:`FindingSpec` (how a finding is sampled and drawn, what it records,
how reports describe it) and :class:`Finding` (what a report states about one present finding).

Report templates: ``(FINDINGS sentence, IMPRESSION sentence or "", {observation: value})`` with values 1 (stated),
-1 (hedged) or 0 (negated) for the observations of :mod:`.observations`; placeholders {where} (side + zone),
{side}, {zone_phrase}, {degree} (mild/moderate/severe), {amount} (small/moderate/large), {adverb}
(mildly/moderately/severely), {mm} (nodule size), {hemithorax} ("the right hemithorax", "both hemithoraces"),
{effusions}, {angles}, {is}, {a} (singular/plural forms); capitalised placeholders ({Where}) give capitalised values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from medvlp_bench_plugins.synthetic.phantom import Lesion

Template = tuple[str, str, Mapping[str, float]]


@dataclass(frozen=True)
class Finding:
    """A finding as a report states it: the patient's side ("right", "left", "bilateral", or ""), the lung zone
    ("upper", "mid", "lower", or "") and a severity in [0, 1]."""

    laterality: str
    zone: str
    severity: float


@dataclass(frozen=True)
class FindingSpec:
    """One finding of the phantom, declared once.

    * ``name``; ``draw_order`` places it among the findings for the random draws of a study (and the order its
      lesions are drawn); ``report_order`` among the sentences of a report. Both are integers unique to it.
    * ``prevalence``: its default per-study probability (independent draws).
    * ``sample(rng, severity) -> (Finding, lesions)``: what it draws, as :class:`~.phantom.Lesion` primitives.
    * ``anatomy(severity) -> overrides`` of the normal anatomy (see ``cases.sample_anatomy``), or None.
    * ``records``: what a frontal rendering records under ``name`` (documentation; "" when nothing).
    * ``positive`` / ``hedged``: report templates (module docstring); a finding without hedged templates is
      never hedged.
    * ``contradicts``: the normal statements (``reports.NORMAL_STATEMENTS`` keys) its presence rules out.
    * ``describes``: one line on how it is drawn (documentation).
    """

    name: str
    draw_order: int
    report_order: int
    prevalence: float
    sample: Callable[[np.random.Generator, float], tuple[Finding, Sequence[Lesion]]]
    positive: Sequence[Template]
    hedged: Sequence[Template] = ()
    contradicts: tuple[str, ...] = ()
    anatomy: Optional[Callable[[float], Mapping[str, float]]] = None
    records: str = ""
    describes: str = ""
