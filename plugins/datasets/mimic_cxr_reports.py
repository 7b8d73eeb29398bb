"""MIMIC-CXR free-text reports -> the text a vision-language method pretrains on.

A report (``files/p10/p10000032/s50414267.txt`` in the MIMIC-CXR reports zip) looks like::

                                     FINAL REPORT
     EXAMINATION:  CHEST (PA AND LAT)
     INDICATION:  ___F with new onset ascites  // eval for infection
     COMPARISON:  None.
     FINDINGS:
     There is no focal consolidation, pleural effusion or pneumothorax.  Bilateral
     nodular opacities that most likely represent nipple shadows.
     IMPRESSION:  No acute cardiopulmonary process.

(de-identified spans are ``___``; paragraphs carry hard line breaks; text may follow a header on its line).

Sections, :func:`extract_sections`:

* A header is a line that starts (after indentation) with a name and ':' where the name is a known section name
  in any case (:data:`FINDINGS_NAMES`, :data:`IMPRESSION_NAMES`, :data:`OTHER_NAMES`) or any ALL-CAPS phrase of
  letters, spaces and ``()/&,'-`` (an unknown section, as MIMIC's own section splitter treats it). A known name
  in capitals also opens a section in the middle of a line (``COMPARISON: None. FINDINGS: ...``).
* A section runs to the next header. Text before the first header (the ``FINAL REPORT`` line) is dropped.
* ``findings`` = FINDINGS sections, ``impression`` = IMPRESSION / CONCLUSION sections and combined
  ``FINDINGS AND IMPRESSION`` headers; a section that occurs twice is joined in order; a missing one is "".
  Whitespace runs, line breaks included, become one space.

Sentences, :func:`report_sentences` (section 4 of the MGCA notes; where these rules differ, the reference is named):

1. text = impression, then findings; each section is split on its own (so an impression without a final period
   does not run into the findings).
2. Split at numbered-list markers: a 1-2 digit number and '.' standing between whitespace (``" 2. "``); as in
   the reference, a number that ends a sentence (``"ribs 5 and 6. "``) is taken for a marker and lost. The
   reference splits at every ``digits.``, which also cuts decimals.
3. Split at every '.' except a decimal point (a '.' between two digits: ``1.5 cm`` stays in one sentence).
4. Tokens = decimal numbers (``1.5``) and lowercase runs of letters and digits; '_' separates tokens, so the
   de-identification blank ``___`` is no token (the reference's ``\\w+`` keeps it as a word and cuts ``1.5`` in
   two); non-ASCII characters are dropped.
5. Sentences with <= 1 token are dropped; a kept sentence is its tokens joined by single spaces.

A study is kept (:func:`keep_study`) when its sentences hold >= 3 tokens in all; :func:`skip_reason` says why a
report is not (empty, no FINDINGS or IMPRESSION text, too few tokens).
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

FINDINGS_NAMES = frozenset({"findings", "finding"})
IMPRESSION_NAMES = frozenset({
    "impression", "impressions", "conclusion", "conclusions",
    "findings and impression", "findings/impression", "impression and findings", "impression/findings",
})
OTHER_NAMES = frozenset({
    "examination", "exam", "type of examination", "indication", "indications", "clinical indication",
    "reason for exam", "reason for examination", "history", "clinical history", "clinical information",
    "technique", "comparison", "comparisons", "reference exam", "wet read", "notification", "recommendation",
    "recommendations", "recommendation(s)", "addendum", "procedure",
})
#: a study needs at least this many tokens over its kept sentences
MIN_STUDY_TOKENS = 3

_HEADER_LINE = re.compile(r"\s*([A-Za-z][A-Za-z ()/&,'-]*?)\s*:(.*)", re.DOTALL)
_KNOWN_CAPS = "|".join(
    re.escape(name.upper()) for name in sorted(FINDINGS_NAMES | IMPRESSION_NAMES | OTHER_NAMES, key=len, reverse=True)
)
_INLINE_HEADER = re.compile(rf"(?<=\S)[ \t]+(?=(?:{_KNOWN_CAPS})[ \t]*:)")
_LIST_MARKER = re.compile(r"(?<!\S)\d{1,2}\.(?!\S)")
_SENTENCE_END = re.compile(r"(?<!\d)\.|\.(?!\d)")
_TOKEN = re.compile(r"\d+\.\d+|[^\W_]+")


def _section_of(header: str) -> Optional[str]:
    """'findings', 'impression' or 'other' for a header name, None when the name is no header."""
    key = re.sub(r"\s*/\s*", "/", " ".join(header.lower().split()))
    if key in FINDINGS_NAMES:
        return "findings"
    if key in IMPRESSION_NAMES:
        return "impression"
    if key in OTHER_NAMES or header.isupper():
        return "other"
    return None


def extract_sections(report_text: str) -> dict[str, str]:
    """``{"findings": ..., "impression": ...}`` of a report (rules in the module docstring)."""
    parts: dict[str, list[str]] = {"findings": [], "impression": []}
    current = None
    for line in _INLINE_HEADER.sub("\n", report_text).splitlines():
        match = _HEADER_LINE.match(line)
        section = _section_of(match.group(1)) if match else None
        if section is not None:
            current, line = section, match.group(2)
        if current in parts:
            parts[current].append(line)
    return {name: " ".join(" ".join(lines).split()) for name, lines in parts.items()}


def sentence_tokens(sentence: str) -> list[str]:
    """The tokens of a sentence: decimal numbers and lowercase ASCII runs of letters and digits (rule 4)."""
    tokens = (token.encode("ascii", "ignore").decode("ascii") for token in _TOKEN.findall(sentence.lower()))
    return [token for token in tokens if token]


def section_sentences(text: str) -> list[str]:
    """The kept sentences of one section's text (rules 2 to 5)."""
    sentences = []
    for item in _LIST_MARKER.split(text):
        for piece in _SENTENCE_END.split(item):
            tokens = sentence_tokens(piece)
            if len(tokens) > 1:
                sentences.append(" ".join(tokens))
    return sentences


def report_sentences(report_text: str) -> list[str]:
    """The kept sentences of a report: impression's, then findings' (rules 1 to 5)."""
    sections = extract_sections(report_text)
    return section_sentences(sections["impression"]) + section_sentences(sections["findings"])


def keep_study(sentences: Sequence[str]) -> bool:
    """True when the sentences hold at least :data:`MIN_STUDY_TOKENS` tokens in all."""
    return sum(len(sentence_tokens(sentence)) for sentence in sentences) >= MIN_STUDY_TOKENS


def report_text_for_training(report_text: str, sentence_end: str = ".") -> Optional[str]:
    """The text a study contributes to pretraining, or None when the study is dropped (:func:`keep_study`).

    Kept sentences, each followed by ``sentence_end``, joined by single spaces: ``"no pneumothorax. heart size is
    normal."``. ``sentence_end=""`` gives the reference's text, where sentence boundaries are lost.
    """
    sentences = report_sentences(report_text)
    if not keep_study(sentences):
        return None
    return " ".join(sentence + sentence_end for sentence in sentences)


#: why a report gives no training text (:func:`skip_reason`)
EMPTY_REPORT = "empty"
NO_SECTIONS = "no FINDINGS or IMPRESSION text"
TOO_SHORT = f"under {MIN_STUDY_TOKENS} tokens"


def skip_reason(report_text: str) -> Optional[str]:
    """Why the study of this report is dropped from pretraining (:data:`EMPTY_REPORT`, :data:`NO_SECTIONS`,
    :data:`TOO_SHORT`), or None when it is kept; exactly when :func:`report_text_for_training` gives None."""
    if not report_text.strip():
        return EMPTY_REPORT
    sections = extract_sections(report_text)
    if not sections["findings"] and not sections["impression"]:
        return NO_SECTIONS
    return None if keep_study(report_sentences(report_text)) else TOO_SHORT
