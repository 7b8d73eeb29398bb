"""MIMIC-CXR report parsing: sections, sentence rules, study filter, training text."""

from __future__ import annotations

from medvlp_bench_plugins.datasets.mimic_cxr_reports import (
    EMPTY_REPORT,
    NO_SECTIONS,
    TOO_SHORT,
    extract_sections,
    keep_study,
    report_sentences,
    report_text_for_training,
    skip_reason,
)

MIMIC_STYLE = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)
 
 INDICATION:  ___F with new onset ascites  // eval for infection
 
 TECHNIQUE:  Chest PA and lateral
 
 COMPARISON:  ___
 
 FINDINGS: 
 
 There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
 nodular opacities that most likely represent nipple shadows. The
 cardiomediastinal silhouette is normal.  A 1.5 cm nodule projects over the
 left lung.  Dr. ___ was paged.
 
 IMPRESSION: 
 
 1.  No acute cardiopulmonary process.
 2.  Stable mild
 cardiomegaly
 
 NOTIFICATION:  The findings were discussed with Dr. ___ by ___ on ___ at 10:30 am.
"""


def test_sections_of_a_mimic_style_report():
    sections = extract_sections(MIMIC_STYLE)
    assert sections["findings"] == (
        "There is no focal consolidation, pleural effusion or pneumothorax. Bilateral nodular opacities that most "
        "likely represent nipple shadows. The cardiomediastinal silhouette is normal. A 1.5 cm nodule projects over "
        "the left lung. Dr. ___ was paged."
    )
    assert sections["impression"] == "1. No acute cardiopulmonary process. 2. Stable mild cardiomegaly"


def test_sentences_impression_first_then_findings():
    assert report_sentences(MIMIC_STYLE) == [
        "no acute cardiopulmonary process",
        "stable mild cardiomegaly",
        "there is no focal consolidation pleural effusion or pneumothorax",
        "bilateral nodular opacities that most likely represent nipple shadows",
        "the cardiomediastinal silhouette is normal",
        "a 1.5 cm nodule projects over the left lung",
        "was paged",
    ]


def test_training_text_keeps_sentence_boundaries_or_not():
    assert report_text_for_training(MIMIC_STYLE).startswith(
        "no acute cardiopulmonary process. stable mild cardiomegaly. there is no focal"
    )
    assert report_text_for_training(MIMIC_STYLE).endswith("was paged.")
    assert report_text_for_training(MIMIC_STYLE, sentence_end="").startswith(
        "no acute cardiopulmonary process stable mild cardiomegaly there"
    )


def test_lowercase_headers_and_no_findings():
    report = "indication: cough\nimpression: no pneumonia.\ncomparison: none"
    assert extract_sections(report) == {"findings": "", "impression": "no pneumonia."}
    assert report_sentences(report) == ["no pneumonia"]
    assert not keep_study(report_sentences(report))
    assert report_text_for_training(report) is None


def test_report_without_sections_gives_no_text():
    report = "FINAL REPORT\n PA and lateral views of the chest were obtained. The lungs are clear."
    assert extract_sections(report) == {"findings": "", "impression": ""}
    assert report_text_for_training(report) is None


def test_headers_in_the_middle_of_a_line_and_combined_sections():
    report = "COMPARISON: None. FINDINGS: Lungs are clear. IMPRESSION: Normal chest radiograph."
    assert extract_sections(report) == {"findings": "Lungs are clear.", "impression": "Normal chest radiograph."}
    combined = " FINDINGS AND IMPRESSION:\n Heart size is normal.\n ADDENDUM: Dr. ___ notified."
    assert extract_sections(combined) == {"findings": "", "impression": "Heart size is normal."}


def test_unknown_capital_header_ends_a_section_but_plain_colons_do_not():
    report = "FINDINGS: Heart size is normal.\nNote: lungs are clear.\nPA AND LATERAL: ignored text."
    assert extract_sections(report)["findings"] == "Heart size is normal. Note: lungs are clear."


def test_sentence_rules():
    report = (
        "IMPRESSION: 1. Left effusion 2. No pneumothorax. Clear. ___ ___.\n"
        "FINDINGS: Rib fractures 5 and 6. Heart size, 12.5 cm, normal. Caf\u00e9 au lait ___-like opacity"
    )
    assert report_sentences(report) == [
        "left effusion",
        "no pneumothorax",
        "rib fractures 5 and",
        "heart size 12.5 cm normal",
        "caf au lait like opacity",
    ]


def test_study_filter_counts_tokens_over_sentences():
    assert keep_study(["no pneumothorax", "clear lungs"])
    assert keep_study(["no acute process"])
    assert not keep_study(["no pneumothorax"])
    assert not keep_study([])


def test_skip_reason_names_why_exactly_the_dropped_reports_give_no_text():
    cases = {
        "": EMPTY_REPORT,
        "   \n \n": EMPTY_REPORT,
        "FINAL REPORT\n EXAMINATION: CHEST\n INDICATION: cough\n TECHNIQUE: PA and lateral.": NO_SECTIONS,
        "FINDINGS:\n\nIMPRESSION:\n": NO_SECTIONS,
        "IMPRESSION: Stable.": TOO_SHORT,
        MIMIC_STYLE: None,
        "FINDINGS: None.\nIMPRESSION: No acute process.": None,
    }
    for text, reason in cases.items():
        assert skip_reason(text) == reason, text
        assert (report_text_for_training(text) is None) == (reason is not None), text
