"""Template radiology reports for synthetic studies, and the CheXpert-style labels they imply.

:func:`write_report` turns the findings of a study (:class:`~medvlp_bench.synthetic.cases.Finding` by name)
into a report with FINDINGS: and IMPRESSION: sections (optionally a MIMIC-style header: FINAL REPORT,
EXAMINATION:, INDICATION:, COMPARISON:). Each sentence comes from one of several templates and carries the
labels it states: 1.0 (positive), 0.0 (negated: "No pneumothorax."), -1.0 (hedged: "possible",
"may represent", "cannot exclude"). Present findings name the patient's side ("right", "left",
"bilateral") and a zone ("upper lobe", "lung base", ...); a present finding is hedged with probability
``hedge_rate * 2 * (1.2 - severity)`` (subtle findings are hedged more often), in both sections.

Labels (:data:`CHEXPERT_LABELS`, CheXpert's 14 observations) aggregate the sentences of the FINDINGS and
IMPRESSION sections the way the CheXpert labeller does: positive if any sentence is positive, else
uncertain (-1) if any is hedged, else negative (0) if any negates it, else NaN (not mentioned).
"No Finding" is 1.0 when no pathology (all labels but "No Finding" and "Support Devices") is 1 or -1,
else NaN. Finding -> label: lung_opacity -> Lung Opacity (+ Pneumonia when the text names it);
consolidation -> Consolidation; atelectasis -> Atelectasis; edema -> Edema; effusion -> Pleural Effusion;
pneumothorax -> Pneumothorax; cardiomegaly -> Cardiomegaly (+ Enlarged Cardiomediastinum in some
wordings); covid19 -> Lung Opacity + Pneumonia; nodule -> Lung Lesion; foreign_object -> Support Devices.

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

from medvlp_bench.synthetic.cases import Finding

CHEXPERT_LABELS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

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
#: pathologies whose positive or uncertain mention rules out "No Finding"
PATHOLOGIES = tuple(name for name in CHEXPERT_LABELS if name not in ("No Finding", "Support Devices"))

LO, PNA, CONS, ATEL = "Lung Opacity", "Pneumonia", "Consolidation", "Atelectasis"
EDEMA, EFF, PTX, CARD, EC = "Edema", "Pleural Effusion", "Pneumothorax", "Cardiomegaly", "Enlarged Cardiomediastinum"
LESION, FRACTURE, DEVICES = "Lung Lesion", "Fracture", "Support Devices"

#: templates: finding -> state -> [(FINDINGS sentence, IMPRESSION sentence or "", {label: value})];
#: placeholders {where} (side + zone), {side}, {degree} (mild/moderate/severe), {amount} (small/moderate/large),
#: {adverb} (mildly/moderately/severely), {mm} (nodule size), {hemithorax} ("the right hemithorax", "both
#: hemithoraces"); capitalised placeholders ({Where}) give capitalised values
TEMPLATES: dict[str, dict[str, list[tuple[str, str, dict[str, float]]]]] = {
    "lung_opacity": {
        "positive": [
            ("There is a patchy opacity in the {where}.", "{Where} pneumonia.", {LO: 1, PNA: 1}),
            ("Focal airspace opacity in the {where}, consistent with pneumonia.", "Pneumonia in the {where}.",
             {LO: 1, PNA: 1}),
            ("Airspace opacity is present in the {where}.", "{Where} opacity.", {LO: 1}),
            ("Ill-defined opacities in the {where}.", "{Where} opacities concerning for pneumonia.",
             {LO: 1, PNA: -1}),
        ],
        "hedged": [
            ("Subtle opacity in the {where} may represent early pneumonia.", "Possible {where} pneumonia.",
             {LO: -1, PNA: -1}),
            ("Hazy opacity in the {where}, possibly infectious.", "Pneumonia in the {where} cannot be excluded.",
             {LO: -1, PNA: -1}),
        ],
    },
    "consolidation": {
        "positive": [
            ("Dense consolidation in the {where}.", "{Where} consolidation.", {CONS: 1}),
            ("There is lobar consolidation of the {where} with air bronchograms.",
             "Consolidation of the {where}, likely pneumonia.", {CONS: 1, PNA: -1}),
            ("{Where} consolidation is present.", "{Where} consolidation.", {CONS: 1}),
        ],
        "hedged": [
            ("Increased density in the {where} may reflect consolidation.", "Possible {where} consolidation.",
             {CONS: -1}),
            ("Possible consolidation in the {where}.", "Consolidation in the {where} is not excluded and could "
             "reflect pneumonia.", {CONS: -1, PNA: -1}),
        ],
    },
    "atelectasis": {
        "positive": [
            ("Plate-like atelectasis in the {where}.", "{Where} atelectasis.", {ATEL: 1}),
            ("There is {degree} discoid atelectasis in the {where}.", "Atelectasis in the {where}.", {ATEL: 1}),
            ("Linear atelectasis is seen in the {where}.", "{Where} linear atelectasis.", {ATEL: 1}),
        ],
        "hedged": [
            ("Linear opacity in the {where}, possibly atelectasis.", "Possible {where} atelectasis.",
             {LO: -1, ATEL: -1}),
            ("Streaky opacity in the {where} may reflect atelectasis.", "{Where} opacity, likely atelectasis.",
             {LO: -1, ATEL: -1}),
        ],
    },
    "edema": {
        "positive": [
            ("{Degree} pulmonary edema with bilateral perihilar haziness.", "{Degree} pulmonary edema.", {EDEMA: 1}),
            ("Bilateral perihilar haziness consistent with {degree} interstitial edema.",
             "{Degree} interstitial pulmonary edema.", {EDEMA: 1}),
            ("There is {degree} bilateral pulmonary edema.", "Pulmonary edema, {degree}.", {EDEMA: 1}),
        ],
        "hedged": [
            ("Bilateral perihilar haziness may represent mild edema.", "Possible mild pulmonary edema.", {EDEMA: -1}),
            ("Possible mild interstitial edema in both lungs.", "Mild edema cannot be excluded.", {EDEMA: -1}),
        ],
    },
    "effusion": {
        "positive": [
            ("{Amount} {side} pleural {effusions}.", "{Amount} {side} pleural {effusions}.", {EFF: 1}),
            ("Blunting of the {side} costophrenic {angles} consistent with {a}{amount} pleural {effusions}.",
             "{Side} pleural {effusions}.", {EFF: 1}),
            ("There {is} {a}{amount} {side} pleural {effusions} with a meniscus.", "{Amount} {side} {effusions}.",
             {EFF: 1}),
        ],
        "hedged": [
            ("Blunting of the {side} costophrenic {angles} may reflect trace pleural fluid or effusion.",
             "Possible trace {side} pleural {effusions}.", {EFF: -1}),
            ("Possible {amount} {side} pleural {effusions}.", "{Side} pleural {effusions} cannot be excluded.",
             {EFF: -1}),
        ],
    },
    "pneumothorax": {
        "positive": [
            ("{Amount} {side} apical pneumothorax.", "{Amount} {side} pneumothorax.", {PTX: 1}),
            ("There is a {amount} {side} pneumothorax with a visible pleural line at the apex.",
             "{Side} pneumothorax.", {PTX: 1}),
            ("A {amount} {side}-sided apicolateral pneumothorax is present.", "{Amount} {side} pneumothorax.",
             {PTX: 1}),
        ],
        "hedged": [
            ("Possible tiny {side} apical pneumothorax.", "Questionable {side} apical pneumothorax.", {PTX: -1}),
            ("A small {side} apical pneumothorax cannot be excluded.", "Possible small {side} pneumothorax.",
             {PTX: -1}),
        ],
    },
    "cardiomegaly": {
        "positive": [
            ("The heart is {adverb} enlarged.", "{Degree} cardiomegaly.", {CARD: 1}),
            ("{Degree} cardiomegaly.", "Cardiomegaly.", {CARD: 1}),
            ("The cardiac silhouette is {adverb} enlarged. The cardiomediastinal silhouette is widened.",
             "{Degree} cardiomegaly.", {CARD: 1, EC: 1}),
        ],
        "hedged": [
            ("The heart size is borderline enlarged.", "Borderline heart size.", {CARD: -1}),
            ("Possible mild cardiomegaly.", "The heart size may be mildly enlarged.", {CARD: -1}),
        ],
    },
    "covid19": {
        "positive": [
            ("Bilateral peripheral ground-glass opacities in the lower lungs.",
             "Findings compatible with viral pneumonia, including COVID-19.", {LO: 1, PNA: 1}),
            ("Patchy bilateral peripheral opacities in both lower zones.",
             "Multifocal peripheral opacities may represent COVID-19 pneumonia.", {LO: 1, PNA: -1}),
        ],
        "hedged": [
            ("Subtle bilateral peripheral hazy opacities in the lower lungs, possibly ground-glass.",
             "Possible atypical or viral pneumonia.", {LO: -1, PNA: -1}),
        ],
    },
    "nodule": {
        "positive": [
            ("A {mm} mm nodule is seen in the {where}.", "{Where} nodule; chest CT is recommended.", {LESION: 1}),
            ("There is a {mm} mm {side} pulmonary nodule in the {zone_phrase}.", "{Side} pulmonary nodule.",
             {LESION: 1}),
        ],
        "hedged": [
            ("Possible {mm} mm nodule in the {where}.", "A nodular density in the {where} could be a nipple shadow.",
             {LESION: -1}),
        ],
    },
    "foreign_object": {
        "positive": [
            ("External monitoring leads and objects project over {hemithorax}.", "", {DEVICES: 1}),
            ("Radiopaque foreign bodies project over {hemithorax}.", "Radiopaque foreign bodies.", {DEVICES: 1}),
            ("Metallic external objects project over {hemithorax}.", "", {DEVICES: 1}),
        ],
    },
}

#: negations: (sentences, labels, findings that must be absent for one to be written, probability); one is
#: skipped when an earlier sentence already stated any of its labels
NEGATIONS: list[tuple[tuple[str, ...], dict[str, float], tuple[str, ...], float]] = [
    (("No pleural effusion or pneumothorax.",), {EFF: 0, PTX: 0}, ("effusion", "pneumothorax"), 0.35),
    (("No pneumothorax.", "There is no pneumothorax."), {PTX: 0}, ("pneumothorax",), 0.45),
    (("No pleural effusion.", "There is no pleural effusion."), {EFF: 0}, ("effusion",), 0.45),
    (("No pulmonary edema.", "There is no evidence of pulmonary edema."), {EDEMA: 0}, ("edema",), 0.35),
    (("No focal consolidation.", "There is no focal consolidation."), {CONS: 0}, ("consolidation", "lung_opacity",
                                                                                   "covid19"), 0.4),
    (("No focal opacity to suggest pneumonia.",), {LO: 0, PNA: 0},
     ("lung_opacity", "consolidation", "atelectasis", "edema", "covid19", "nodule"), 0.3),
    (("Heart size is normal.", "The cardiac silhouette is within normal limits."), {CARD: 0}, ("cardiomegaly",), 0.5),
    (("The cardiomediastinal silhouette is normal.", "Mediastinal contours are unremarkable."), {EC: 0},
     ("cardiomegaly",), 0.4),
    (("No acute osseous abnormality.", "No displaced rib fractures are seen."), {FRACTURE: 0}, (), 0.3),
]

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
#: order in which findings are described (lungs, pleura, heart, devices)
ORDER = ("lung_opacity", "consolidation", "covid19", "atelectasis", "nodule", "edema", "effusion", "pneumothorax",
         "cardiomegaly", "foreign_object")


@dataclass(frozen=True)
class Report:
    """A report: its full text, its two sections and the CheXpert labels it states (NaN = not mentioned)."""

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
    """The 14 labels in :data:`CHEXPERT_LABELS` order, with NaN for unmentioned and "No Finding" derived."""
    labels = {name: float(stated.get(name, math.nan)) for name in CHEXPERT_LABELS}
    pathological = any(labels[name] in (1.0, -1.0) for name in PATHOLOGIES)
    labels["No Finding"] = math.nan if pathological else 1.0
    return labels


def _wrap(text: str) -> str:
    return "\n".join(" " + line for line in textwrap.wrap(text, 77))


def write_report(findings: Mapping[str, Finding], rng: np.random.Generator, *, view: str = "PA",
                 hedge_rate: float = 0.15, header: bool = True, sex: str = "M", age: Optional[int] = None,
                 lateral: bool = True) -> Report:
    """Write a report for a study with ``findings`` (name -> Finding, names as in ``cases.FINDINGS``).

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
    present = [name for name in ORDER if name in findings]
    for name in present:
        finding = findings[name]
        hedged = "hedged" in TEMPLATES[name] and rng.random() < min(1.0, hedge_rate * 2 * (1.2 - finding.severity))
        choices = TEMPLATES[name]["hedged" if hedged else "positive"]
        if hedge_rate == 0:
            choices = [choice for choice in choices if -1 not in choice[2].values()]
        sentence, summary, labels = choices[int(rng.integers(len(choices)))]
        zone_phrase = str(rng.choice(ZONE_PHRASES[finding.zone or "lower"]))
        mm = int(rng.integers(6, 19))
        body.append(_fill(sentence, finding, zone_phrase, mm))
        if summary:
            impression.append(_fill(summary, finding, zone_phrase, mm))
        _merge(stated, labels)
    lung_findings = {"lung_opacity", "consolidation", "covid19", "atelectasis", "nodule", "edema"} & set(present)
    if not lung_findings:
        body.insert(len(body) - len(present), str(rng.choice(NORMAL_LUNGS)))
    for sentences, labels, exclusive, probability in NEGATIONS:
        if rng.random() < probability and not set(exclusive) & set(present) and not set(labels) & set(stated):
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
