"""WordPiece vocabularies learnt from report texts, and the BERT tokenizer built from a vocabulary.

A vocabulary is a list of tokens; a token's id is its index. It always starts with the BERT special tokens
``[PAD] [UNK] [CLS] [SEP] [MASK]`` (ids 0 to 4), so ``pad_token_id = 0`` as ``BertConfig`` assumes.

Text handling (the uncased BERT rules, from the ``tokenizers`` library): the normaliser cleans control characters,
strips accents and lowercases; the pre-tokeniser splits on whitespace and punctuation; WordPiece then splits each
word greedily, longest match first, into a first piece and continuation pieces written ``##piece``. A word that
cannot be split into vocabulary pieces (or is longer than 100 characters) becomes ``[UNK]``.

Training (:func:`train_vocabulary`) runs the ``tokenizers`` WordPiece trainer: it starts from every character seen
(and its ``##`` continuation form) and merges the most frequent adjacent pairs until the vocabulary holds
``vocab_size`` tokens or no pair occurs ``min_frequency`` times; ties go to the pair of smaller token ids. Left to
itself the trainer numbers the ``##c`` continuation characters in hash-map order, which changes from process to
process and with it the tie-breaks, hence the vocabulary. So the ``##c`` form of every character of the
(normalised) corpus is handed to the trainer as an initial token, in code-point order, right after the special
tokens: numbering, tie-breaks and result are then fixed. Same corpus and settings -> same token list.
:func:`build_tokenizer` turns a token list into a tokenizer; a trained vocabulary always goes through it, so the
tokenizer rebuilt from a checkpoint's token list is the one that was trained with.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
CONTINUATION_PREFIX = "##"


def _uncased_bert_tokenizer(model: models.Model) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def train_vocabulary(corpus: Iterable[str], vocab_size: int = 3000, min_frequency: int = 2) -> list[str]:
    """Learn a WordPiece vocabulary (at most ``vocab_size`` tokens, special tokens first) from ``corpus`` texts.

    Raises ``ValueError`` when the corpus holds no text.
    """
    tokenizer = _uncased_bert_tokenizer(models.WordPiece(unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX))
    texts = [tokenizer.normalizer.normalize_str(text) for text in corpus]
    if not any(text.strip() for text in texts):
        raise ValueError("cannot learn a WordPiece vocabulary from an empty corpus")
    characters = sorted({character for text in texts for character in text if not character.isspace()})
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS) + [CONTINUATION_PREFIX + character for character in characters],
        continuing_subword_prefix=CONTINUATION_PREFIX,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return [token for token, _ in by_id]


def build_tokenizer(vocabulary: Sequence[str]) -> Tokenizer:
    """The uncased BERT tokenizer of ``vocabulary`` (id = index), adding ``[CLS] ... [SEP]`` around each text.

    Raises ``ValueError`` if a token repeats or a special token is missing.
    """
    vocabulary = list(vocabulary)
    ids = {token: index for index, token in enumerate(vocabulary)}
    if len(ids) != len(vocabulary):
        repeated = sorted({token for token in vocabulary if vocabulary.count(token) > 1})
        raise ValueError(f"the vocabulary repeats tokens {repeated[:10]}")
    missing = [token for token in SPECIAL_TOKENS if token not in ids]
    if missing:
        raise ValueError(f"the vocabulary lacks the special tokens {missing}")
    tokenizer = _uncased_bert_tokenizer(
        models.WordPiece(vocab=ids, unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX)
    )
    tokenizer.post_processor = processors.BertProcessing((SEP, ids[SEP]), (CLS, ids[CLS]))
    return tokenizer
