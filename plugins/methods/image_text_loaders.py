"""The ``load_image_text_model`` callables of the method plugins; light (the models are imported when called).

* :func:`image_text_loader` (MGCA, ConVIRT, GLoRIA): the model of ``context.checkpoint``, the harness's own or the
  authors' released layout (``image_text_checkpoints``).
* :func:`load_random_image_text_model` (``random``): random towers drawn from a generator seeded with the run
  seed: the image encoder as the ``random`` method draws it (same seed, same weights), then a tiny BERT text
  tower (2 layers, 128 wide) over a character-level WordPiece vocabulary (the special tokens, a-z, 0-9, ASCII
  punctuation and their ``##`` forms, so every text tokenises without [UNK] and without a corpus), and two
  projection heads ``Linear(C, 512) - BN - ReLU - Linear(512, 128) - BN`` into a 128-d space, reports pooled by
  the mean token state.
"""

from __future__ import annotations

import string

import torch

from medvlp_bench.api import MethodContext

#: the characters of the random text tower's vocabulary
RANDOM_TOWER_CHARACTERS = string.ascii_lowercase + string.digits + string.punctuation
RANDOM_EMBEDDING_DIM, RANDOM_HIDDEN_DIM = 128, 512


def image_text_loader(method: str):
    """``load_image_text_model`` of a pretraining method: its checkpoint's image-text model."""

    def load(context: MethodContext):
        from medvlp_bench_plugins.methods.image_text_checkpoints import load_method_image_text_model

        return load_method_image_text_model(context, method)

    return load


def character_vocabulary() -> list[str]:
    """[PAD] [UNK] [CLS] [SEP] [MASK], then each character of RANDOM_TOWER_CHARACTERS and its ``##`` form."""
    from medvlp_bench_plugins.encoders.wordpiece_vocab import CONTINUATION_PREFIX, SPECIAL_TOKENS

    return [*SPECIAL_TOKENS, *RANDOM_TOWER_CHARACTERS,
            *(CONTINUATION_PREFIX + character for character in RANDOM_TOWER_CHARACTERS)]


def load_random_image_text_model(context: MethodContext):
    """Random image and text towers and projections, seeded by ``context.seed`` (module docstring)."""
    from medvlp_bench_plugins.encoders.bert_text import build_tiny_bert
    from medvlp_bench_plugins.methods.image_text_models import ProjectedImageTextModel
    from medvlp_bench_plugins.methods.vlp_heads import GlobalProjectionHead

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        image_encoder = context.build_encoder(context.encoder)
        text_encoder = build_tiny_bert(character_vocabulary())
        image_head = GlobalProjectionHead(image_encoder.global_dim, RANDOM_HIDDEN_DIM, RANDOM_EMBEDDING_DIM)
        text_head = GlobalProjectionHead(text_encoder.hidden_dim, RANDOM_HIDDEN_DIM, RANDOM_EMBEDDING_DIM)
    model = ProjectedImageTextModel(image_encoder, text_encoder, image_head, text_head,
                                    embedding_dim=RANDOM_EMBEDDING_DIM, report_pooling="mean")
    return model.eval()
