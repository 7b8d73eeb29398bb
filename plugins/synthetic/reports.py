"""Template radiology reports for synthetic studies, and the observations (CheXpert's 14) they state.

:func:`write_report` turns the findings of a study (:class:`~.finding_spec.Finding` by name) into a report with
FINDINGS: and IMPRESSION: sections (optionally a MIMIC-style header: FINAL REPORT, EXAMINATION:, INDICATION:,
COMPARISON:). Each present finding contributes one sentence from its module's templates (and usually an
impression sentence), in ``report_order``; each sentence carries the observations it states: 1.0 (positive),
0.0 (negated: "No pneumothorax."), -1.0 (hedged: "possible", "may represent", "cannot exclude"). Present findings
name the patient's side ("right", "left", "bilateral") and a zone ("upper lobe", "lung base", ...); a present
finding is hedged with probability ``hedge_rate * 2 * (1.2 - severity)`` (subtle findings are hedged more often),
in both sections. Normal statements (:data:`NORMAL_STATEMENTS`, e.g. "No pneumothorax.") are added with their
probabilities unless a present finding contradicts them (``FindingSpec.contradicts``); "The lungs are clear." is
written whenever no present finding contradicts ``lungs_clear``.

Labels (:data:`~.observations.OBSERVATIONS`) aggregate the sentences of the FINDINGS and IMPRESSION sections the
way the CheXpert labeller does: positive if any sentence is positive, else uncertain (-1) if any is hedged, else
negative (0) if any negates it, else NaN (not mentioned). "No Finding" is 1.0 when no pathology (all labels but
"No Finding" and "Support Devices") is 1 or -1, else NaN.

:func:`label_report` is an independent rule-based labeller of report text (keywords per observation;
a sentence's hedge or negation cue applies to every observation it mentions); the templates are written
so that it reproduces :attr:`Report.labels` exactly (the tests check this).
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from medvlp_bench_plugins.synthetic.finding_spec import Finding
from medvlp_bench_plugins.synthetic.observations import (
    CARDIOMEGALY,
    CONSOLIDATION,
    EDEMA,
    ENLARGED_CARDIOMEDIASTINUM,
    FRACTURE,
    LUNG_OPACITY,
    OBSERVATIONS,
    PATHOLOGIES,
    PLEURAL_EFFUSION,
    PNEUMONIA,
    PNEUMOTHORAX,
)
from medvlp_bench_plugins.synthetic.registry import REGISTRY, REPORT_ORDER

NEGATION = re.compile(r"\b(no|without|negative for|free of|normal|unremarkable|resolved)\b")
HEDGE = re.compile(
    r"\b(possible|possibly|may|might|could|cannot (be )?exclude[d]?|concerning for|suspicious for|questionable|"
    r"borderline|likely|probable|suggestive of)\b"
)
KEYWORDS = {
    "Enlarged Cardiomediastinum": re.compile(r"cardiomediastinal|mediastin"),
    "Cardiomegaly": re.compile(r"cardiomegaly|heart size|heart is (\w+ )?enlarged|enlarged heart|cardiac silhouette"),
    "Lung Opacity": re.compile(r"opacit|opacification|ground-glass|airspace disease|infiltrat"),
    "Lung Lesion": re.compile(r"\bnodul|\bmass\b"),
    "Edema": re.compile(r"\bedema"),
    "Consolidation": re.compile(r"consolidat"),
    "Pneumonia": re.compile(r"pneumonia"),
    "Atelectasis": re.compile(r"atelecta"),
    "Pneumothorax": re.compile(r"pneumothora"),
    "Pleural Effusion": re.compile(r"effusion"),
    "Pleural Other": re.compile(r"pleural thickening|fibrothorax"),
    "Fracture": re.compile(r"fracture|osseous abnormalit"),
    "Support Devices": re.compile(r"\bleads?\b|device|foreign bod|\bwires?\b|\bobjects?\b"),
}
#: normal statements: key -> (sentences, observations, probability), in the order they are considered; one is
#: written with its probability unless a present finding contradicts its key or an earlier sentence already stated
#: any of its observations
NORMAL_STATEMENTS: dict[str, tuple[tuple[str, ...], dict[str, float], float]] = {
    "no_effusion_or_pneumothorax": (("No pleural effusion or pneumothorax.",), {PLEURAL_EFFUSION: 0, PNEUMOTHORAX: 0},
                                    0.35),
    "no_pneumothorax": (("No pneumothorax.", "There is no pneumothorax."), {PNEUMOTHORAX: 0}, 0.45),
    "no_effusion": (("No pleural effusion.", "There is no pleural effusion."), {PLEURAL_EFFUSION: 0}, 0.45),
    "no_edema": (("No pulmonary edema.", "There is no evidence of pulmonary edema."), {EDEMA: 0}, 0.35),
    "no_consolidation": (("No focal consolidation.", "There is no focal consolidation."), {CONSOLIDATION: 0}, 0.4),
    "no_focal_opacity": (("No focal opacity to suggest pneumonia.",), {LUNG_OPACITY: 0, PNEUMONIA: 0}, 0.3),
    "normal_heart": (("Heart size is normal.", "The cardiac silhouette is within normal limits."),
                     {CARDIOMEGALY: 0}, 0.5),
    "normal_mediastinum": (("The cardiomediastinal silhouette is normal.", "Mediastinal contours are unremarkable."),
                           {ENLARGED_CARDIOMEDIASTINUM: 0}, 0.4),
    "no_fracture": (("No acute osseous abnormality.", "No displaced rib fractures are seen."), {FRACTURE: 0}, 0.3),
}
#: the statement written when no present finding contradicts it (the lungs hold no finding)
LUNGS_CLEAR = "lungs_clear"

NORMAL_LUNGS = ("The lungs are clear.", "The lungs are well expanded and clear.", "Lungs are clear bilaterally.")
NORMAL_IMPRESSION = ("No acute cardiopulmonary process.", "No acute cardiopulmonary abnormality.",
                     "No acute intrathoracic process.", "Normal chest radiograph.")
VIEW_SENTENCES = {
    ("PA", True): ("PA and lateral views of the chest were obtained.", "PA and lateral chest radiographs."),
    ("PA", False): ("A single PA view of the chest was obtained.", "PA chest radiograph."),
    ("AP", True): ("AP and lateral views of the chest were obtained.", "AP and lateral chest radiographs."),
    ("AP", False): ("Portable AP upright view of the chest.", "Single frontal AP view of the chest was obtained."),
}
EXAMINATIONS = {"PA": "CHEST (PA AND LAT)", "AP": "CHEST (PORTABLE AP)"}
INDICATIONS = ("cough and fever, evaluate for pneumonia", "shortness of breath", "chest pain",
               "preoperative evaluation", "fever, rule out infection", "dyspnea, assess for edema",
               "status post fall, evaluate for injury")
ZONE_PHRASES = {
    "upper": ("upper lobe", "upper zone", "upper lung"),
    "mid": ("mid lung", "mid zone", "perihilar region"),
    "lower": ("lower lobe", "lung base", "lower zone"),
}


@dataclass(frozen=True)
class Report:
    """A report: its full text, its two sections and the observations it states (NaN = not mentioned)."""

    text: str
    findings: str
    impression: str
    labels: dict[str, float]


def _degree(severity: float) -> int:
    return 0 if severity < 0.4 else (1 if severity < 0.7 else 2)


def _fill(template: str, finding: Finding, zone_phrase: str, mm: int) -> str:
    """Fill the placeholders of one template (capitalised variants for {Where}, {Degree}, ...)."""
    bilateral = finding.laterality == "bilateral"
    side = finding.laterality or "right"
    where = f"{side} {zone_phrase}" + ("s" if bilateral and zone_phrase.endswith(("lobe", "zone", "base")) else "")
    degree = _degree(finding.severity)
    values = {
        "where": where,
        "side": side,
        "zone_phrase": zone_phrase,
        "degree": ("mild", "moderate", "severe")[degree],
        "amount": ("small", "moderate", "large")[degree],
        "adverb": ("mildly", "moderately", "severely")[degree],
        "mm": str(mm),
        "effusions": "effusions" if bilateral else "effusion",
        "angles": "angles" if bilateral else "angle",
        "is": "are" if bilateral else "is",
        "a": "" if bilateral else "a ",
        "hemithorax": "both hemithoraces" if bilateral else f"the {side} hemithorax",
    }
    values.update({key.capitalize(): value[:1].upper() + value[1:] for key, value in values.items()})
    text = template.format(**values)
    return text[:1].upper() + text[1:]


def _merge(labels: dict[str, float], stated: Mapping[str, float]) -> None:
    """Aggregate one sentence's labels: positive beats uncertain beats negative."""
    rank = {1.0: 3, -1.0: 2, 0.0: 1}
    for name, value in stated.items():
        current = labels.get(name)
        if current is None or rank[float(value)] > rank[current]:
            labels[name] = float(value)


def _finalise(stated: Mapping[str, float]) -> dict[str, float]:
    """The 14 labels in :data:`~.observations.OBSERVATIONS` order, with NaN for unmentioned and "No Finding"
    derived."""
    labels = {name: float(stated.get(name, math.nan)) for name in OBSERVATIONS}
    pathological = any(labels[name] in (1.0, -1.0) for name in PATHOLOGIES)
    labels["No Finding"] = math.nan if pathological else 1.0
    return labels


def _wrap(text: str) -> str:
    return "\n".join(" " + line for line in textwrap.wrap(text, 77))


def write_report(findings: Mapping[str, Finding], rng: np.random.Generator, *, view: str = "PA",
                 hedge_rate: float = 0.15, header: bool = True, sex: str = "M", age: Optional[int] = None,
                 lateral: bool = True) -> Report:
    """Write a report for a study with ``findings`` (name -> Finding, names as in ``registry.FINDINGS``).

    ``hedge_rate`` scales how often present findings are hedged; 0 also avoids the positive wordings that
    hedge a secondary label ("opacity concerning for pneumonia"), so labels are 0/1/NaN only.
    With ``header`` the text starts like a MIMIC-CXR report (FINAL REPORT, EXAMINATION:, INDICATION:,
    COMPARISON:); the sections FINDINGS: and IMPRESSION: are always present. ``view`` ("PA" | "AP") and
    ``lateral`` (a lateral view was taken too) choose the wording of the examination.
    """
    stated: dict[str, float] = {}
    body: list[str] = []
    impression: list[str] = []
    if rng.random() < 0.5:
        body.append(str(rng.choice(VIEW_SENTENCES[("AP" if view == "AP" else "PA", lateral)])))
    present = [name for name in REPORT_ORDER if name in findings]
    for name in present:
        finding, spec = findings[name], REGISTRY[name]
        hedged = bool(spec.hedged) and rng.random() < min(1.0, hedge_rate * 2 * (1.2 - finding.severity))
        choices = spec.hedged if hedged else spec.positive
        if hedge_rate == 0:
            choices = [choice for choice in choices if -1 not in choice[2].values()]
        sentence, summary, labels = choices[int(rng.integers(len(choices)))]
        zone_phrase = str(rng.choice(ZONE_PHRASES[finding.zone or "lower"]))
        mm = int(rng.integers(6, 19))
        body.append(_fill(sentence, finding, zone_phrase, mm))
        if summary:
            impression.append(_fill(summary, finding, zone_phrase, mm))
        _merge(stated, labels)
    contradicted = {key for name in present for key in REGISTRY[name].contradicts}
    if LUNGS_CLEAR not in contradicted:
        body.insert(len(body) - len(present), str(rng.choice(NORMAL_LUNGS)))
    for key, (sentences, labels, probability) in NORMAL_STATEMENTS.items():
        if rng.random() < probability and key not in contradicted and not set(labels) & set(stated):
            body.append(str(rng.choice(sentences)))
            _merge(stated, labels)
    if not impression:
        impression.append(str(rng.choice(NORMAL_IMPRESSION)))
    elif len(impression) > 1 and rng.random() < 0.5:
        impression = [f"{k}. {sentence}" for k, sentence in enumerate(impression, start=1)]
    findings_text, impression_text = " ".join(body), " ".join(impression)
    parts = []
    if header:
        who = f"___-year-old {'woman' if sex == 'F' else 'man'}" if age is None else \
            f"{age}-year-old {'woman' if sex == 'F' else 'man'}"
        exam = EXAMINATIONS["AP" if view == "AP" else "PA"] if lateral or view == "AP" else "CHEST (PA)"
        parts += [" " * 33 + "FINAL REPORT", f" EXAMINATION:  {exam}", "",
                  _wrap(f"INDICATION:  {who} with {rng.choice(INDICATIONS)}."), "",
                  f" COMPARISON:  {rng.choice(('None.', '___.', 'Prior chest radiograph from ___.'))}", ""]
    parts += [" FINDINGS:", "", _wrap(findings_text), "", " IMPRESSION:", "", _wrap(impression_text), ""]
    return Report(text="\n".join(parts), findings=findings_text, impression=impression_text,
                  labels=_finalise(stated))


def sections(text: str) -> tuple[str, str]:
    """The FINDINGS and IMPRESSION sections of a report (whitespace collapsed; "" when absent)."""
    flat = " ".join(text.split())
    findings = re.search(r"FINDINGS:(.*?)(IMPRESSION:|$)", flat)
    impression = re.search(r"IMPRESSION:(.*)$", flat)
    return (findings.group(1).strip() if findings else "", impression.group(1).strip() if impression else "")


def split_sentences(text: str) -> list[str]:
    """Sentences of a section: split at numbered-list markers ("1. ") and at '.' or ';' followed by space."""
    pieces = re.split(r"(?:^|\s)\d+\.\s|(?<=[.;])\s+", " ".join(text.split()))
    return [piece.strip() for piece in pieces if piece and piece.strip()]


def label_sentence(sentence: str) -> dict[str, float]:
    """Labels one sentence states: every observation whose keyword occurs gets -1 if the sentence has a hedge
    cue, else 0 if it has a negation cue, else 1."""
    lowered = sentence.lower()
    value = -1.0 if HEDGE.search(lowered) else (0.0 if NEGATION.search(lowered) else 1.0)
    return {name: value for name, pattern in KEYWORDS.items() if pattern.search(lowered)}


def label_report(text: str, sections_only: bool = True) -> dict[str, float]:
    """CheXpert-style labels of a report's text (rules in the module docstring). With ``sections_only``
    only the FINDINGS and IMPRESSION sections are read (an indication such as "evaluate for pneumonia"
    states nothing)."""
    chosen: Sequence[str] = sections(text) if sections_only else (text,)
    stated: dict[str, float] = {}
    for section in chosen:
        for sentence in split_sentences(section):
            _merge(stated, label_sentence(sentence))
    return _finalise(stated)
