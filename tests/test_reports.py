"""Template reports: sections, laterality words, and CheXpert labels consistent with the text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medvlp_bench_plugins.synthetic import OBSERVATIONS, Finding, label_report, sample_study, write_report
from medvlp_bench_plugins.synthetic.reports import label_sentence, sections, split_sentences

#: which label each phantom finding must set (to 1 or -1) when present
FINDING_LABELS = {
    "lung_opacity": "Lung Opacity",
    "consolidation": "Consolidation",
    "atelectasis": "Atelectasis",
    "edema": "Edema",
    "effusion": "Pleural Effusion",
    "pneumothorax": "Pneumothorax",
    "cardiomegaly": "Cardiomegaly",
    "covid19": "Lung Opacity",
    "nodule": "Lung Lesion",
    "foreign_object": "Support Devices",
}
LATERALITY_WORDS = {"right": ("right",), "left": ("left",), "bilateral": ("bilateral", "both")}


def _same(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(
        (math.isnan(a) and math.isnan(second[k])) or a == second[k] for k, a in first.items())


def _reports(count: int, hedge_rate: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    for index in range(count):
        study = sample_study(rng)
        yield study, write_report(study.findings, rng, view=study.view, hedge_rate=hedge_rate,
                                  lateral=bool(index % 2), age=None if index % 3 else study.age)


@pytest.mark.parametrize("sentence, expected", [
    ("No pneumothorax.", {"Pneumothorax": 0.0}),
    ("No pleural effusion or pneumothorax.", {"Pleural Effusion": 0.0, "Pneumothorax": 0.0}),
    ("Heart size is normal.", {"Cardiomegaly": 0.0}),
    ("Pneumonia in the right lower lobe cannot be excluded.", {"Pneumonia": -1.0}),
    ("Possible left basilar atelectasis.", {"Atelectasis": -1.0}),
    ("Streaky opacity in the left lung base may reflect atelectasis.", {"Lung Opacity": -1.0, "Atelectasis": -1.0}),
    ("Small right pleural effusion.", {"Pleural Effusion": 1.0}),
    ("The lungs are clear.", {}),
])
def test_negations_and_hedges_map_to_zero_and_minus_one(sentence, expected):
    assert label_sentence(sentence) == expected


def test_labels_agree_with_an_independent_reading_of_the_text():
    for _, report in _reports(600):
        assert tuple(report.labels) == OBSERVATIONS
        assert _same(report.labels, label_report(report.text)), report.text


def test_present_findings_are_labelled_and_named_with_their_side():
    for study, report in _reports(300):
        for name, finding in study.findings.items():
            assert report.labels[FINDING_LABELS[name]] in (1.0, -1.0), (name, report.text)
            if finding.laterality:
                words = LATERALITY_WORDS[finding.laterality]
                assert any(word in report.findings.lower() for word in words), (name, finding, report.findings)


def test_hedges_occur_and_vanish_without_hedge_rate():
    hedged = [report for _, report in _reports(300, hedge_rate=0.3)]
    assert any(-1.0 in report.labels.values() for report in hedged)
    for _, report in _reports(300, hedge_rate=0.0, seed=1):
        assert -1.0 not in report.labels.values(), report.text


def test_normal_study_reads_normal():
    rng = np.random.default_rng(2)
    report = write_report({}, rng)
    assert report.labels["No Finding"] == 1.0
    assert all(report.labels[name] in (0.0,) or math.isnan(report.labels[name])
               for name in OBSERVATIONS if name != "No Finding")
    assert "FINDINGS:" in report.text and "IMPRESSION:" in report.text
    assert sections(report.text) == (report.findings, report.impression)
    assert any(phrase in report.impression for phrase in ("No acute", "Normal chest"))


def test_abnormal_study_has_no_no_finding_and_a_specific_impression():
    rng = np.random.default_rng(3)
    findings = {"effusion": Finding("left", "lower", 0.9), "cardiomegaly": Finding("", "", 0.8)}
    report = write_report(findings, rng, hedge_rate=0.0)
    assert math.isnan(report.labels["No Finding"])
    assert report.labels["Pleural Effusion"] == 1.0 and report.labels["Cardiomegaly"] == 1.0
    assert "left" in report.findings and "effusion" in report.impression.lower()


def test_reports_are_deterministic_and_varied():
    findings = {"lung_opacity": Finding("right", "lower", 0.6)}
    first = write_report(findings, np.random.default_rng(4))
    assert first == write_report(findings, np.random.default_rng(4))
    texts = {write_report(findings, np.random.default_rng(seed)).findings for seed in range(40)}
    assert len(texts) > 10


def test_mimic_style_header_and_numbered_impressions_split_into_sentences():
    rng = np.random.default_rng(5)
    findings = {"effusion": Finding("right", "lower", 0.5), "pneumothorax": Finding("left", "upper", 0.5),
                "cardiomegaly": Finding("", "", 0.5)}
    reports = [write_report(findings, rng, hedge_rate=0.0) for _ in range(20)]
    assert all(report.text.lstrip().startswith("FINAL REPORT") for report in reports)
    assert all("INDICATION:" in report.text and "EXAMINATION:" in report.text for report in reports)
    numbered = [report for report in reports if report.impression.startswith("1. ")]
    assert numbered
    assert all(not sentence[0].isdigit() for sentence in split_sentences(numbered[0].impression))
    assert not write_report(findings, rng, header=False).text.lstrip().startswith("FINAL REPORT")
