"""WordPiece vocabulary training (deterministic across processes) and tokenizers rebuilt from token lists."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from medvlp_bench_plugins.encoders.wordpiece_vocab import SPECIAL_TOKENS, build_tokenizer, train_vocabulary

WORDS = (
    "no acute cardiopulmonary process small left right pleural effusion heart size is normal mild pulmonary edema "
    "cannot exclude consolidation in the lower lobe bibasilar atelectasis moderate cardiomegaly stable there "
    "of and opacity lungs are clear unchanged mediastinal contours hila"
).split()


def report_corpus(n: int, seed: int = 0) -> list[str]:
    """Random report-like texts over WORDS (no "pneumothorax" in them)."""
    rng = random.Random(seed)
    return [
        ". ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() for _ in range(4)) + "."
        for _ in range(n)
    ]


TRAIN_IN_SUBPROCESS = (
    "import json, sys; from medvlp_bench_plugins.encoders.wordpiece_vocab import train_vocabulary; "
    "print(json.dumps(train_vocabulary(json.loads(sys.stdin.read()), vocab_size=300)))"
)


def test_training_is_deterministic_across_processes():
    corpus = report_corpus(400)
    vocabularies = [train_vocabulary(corpus, vocab_size=300)]
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", TRAIN_IN_SUBPROCESS], input=json.dumps(corpus),
                              capture_output=True, text=True, check=True)
        vocabularies.append(json.loads(done.stdout))
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]


def test_vocabulary_starts_with_the_special_tokens_and_respects_the_size():
    vocabulary = train_vocabulary(report_corpus(300), vocab_size=120)
    assert tuple(vocabulary[:5]) == SPECIAL_TOKENS
    assert len(vocabulary) == 120
    assert len(set(vocabulary)) == len(vocabulary)


def test_rebuilt_tokenizer_gives_identical_ids():
    corpus = report_corpus(300)
    vocabulary = train_vocabulary(corpus, vocab_size=200)
    saved = json.loads(json.dumps(vocabulary))
    texts = corpus[:20] + ["Pneumothorax on the LEFT, 1.5 cm; unchanged."]
    original = [encoding.ids for encoding in build_tokenizer(vocabulary).encode_batch(texts)]
    rebuilt = [encoding.ids for encoding in build_tokenizer(saved).encode_batch(texts)]
    assert original == rebuilt


def test_unseen_word_is_split_into_pieces():
    vocabulary = train_vocabulary(report_corpus(300), vocab_size=200)
    tokens = build_tokenizer(vocabulary).encode("Pneumothorax").tokens
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    pieces = tokens[1:-1]
    assert len(pieces) > 1 and "[UNK]" not in pieces
    assert not pieces[0].startswith("##") and all(piece.startswith("##") for piece in pieces[1:])
    assert pieces[0] + "".join(piece[2:] for piece in pieces[1:]) == "pneumothorax"


def test_hand_vocabulary_uncased_pieces():
    vocabulary = list(SPECIAL_TOKENS) + ["no", "pneum", "##oth", "##orax", "."]
    encoding = build_tokenizer(vocabulary).encode("No PNEUMOTHORAX.")
    assert encoding.tokens == ["[CLS]", "no", "pneum", "##oth", "##orax", ".", "[SEP]"]
    assert encoding.ids == [2, 5, 6, 7, 8, 9, 3]
    assert build_tokenizer(vocabulary).encode("effusion").tokens == ["[CLS]", "[UNK]", "[SEP]"]


def test_bad_vocabularies_and_corpora_are_refused():
    with pytest.raises(ValueError, match="lacks the special tokens"):
        build_tokenizer(["[PAD]", "[UNK]", "no"])
    with pytest.raises(ValueError, match="repeats"):
        build_tokenizer(list(SPECIAL_TOKENS) + ["no", "no"])
    with pytest.raises(ValueError, match="empty corpus"):
        train_vocabulary(["", "   "])
