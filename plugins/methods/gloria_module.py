"""GLoRIA's training module (method docs and options: ``gloria``).

Per batch of B images and reports, D = the text encoder's width:

* image: global feature (B, C_g) and local tokens (B, N, C_l) -> :class:`GloriaImageEmbedders` -> g (B, D),
  regions r (B, N, D);
* report: token states (B, T, D); words e (B, W, D) = word pieces summed (``reference_cls_as_word``: [CLS]
  first); report embedding s (B, D) = mean of the states of [CLS] ... [SEP];
* ``global`` = :func:`gloria_global_loss` (g, s), ``local`` = :func:`gloria_local_loss` (r, e),
  ``loss`` = global_weight * global + local_weight * local.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from medvlp_bench.api import ImageEncoder, TextEncoder
from medvlp_bench_plugins.methods.gloria import DEFAULT_OPTIONS
from medvlp_bench_plugins.methods.gloria_losses import gloria_global_loss, gloria_local_loss
from medvlp_bench_plugins.methods.mgca_losses import aggregate_word_pieces
from medvlp_bench_plugins.methods.vlp_heads import GloriaEmbeddingNorms, GloriaImageEmbedders
from medvlp_bench_plugins.methods.vlp_module import VisionLanguageModule, local_token_dim, masked_mean


class GloriaModule(VisionLanguageModule):
    method = "gloria"
    default_options = DEFAULT_OPTIONS

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, *, image_encoder_name: str,
                 text_encoder_name: str, options: Optional[Mapping[str, Any]] = None):
        super().__init__(image_encoder, text_encoder, image_encoder_name=image_encoder_name,
                         text_encoder_name=text_encoder_name, options=options)
        self.image_embedders = GloriaImageEmbedders(image_encoder.global_dim, local_token_dim(image_encoder),
                                                    text_encoder.hidden_dim)
        self.embedding_norms = (GloriaEmbeddingNorms(text_encoder.hidden_dim) if self.options["embedding_batch_norm"]
                                else None)

    def compute_losses(self, images: torch.Tensor, texts: list[str]) -> dict[str, torch.Tensor]:
        options = self.options
        image_global, regions = self.image_embedders(*self.image_features(images))
        text = self.encode_text(texts)
        states, attention_mask = text.features.tokens, text.tokens["attention_mask"]
        words = aggregate_word_pieces(states, text.tokens["is_continuation"], attention_mask)
        word_embeddings, word_mask = words.embeddings, words.mask
        if options["reference_cls_as_word"]:
            word_embeddings = torch.cat([states[:, :1], word_embeddings], dim=1)
            word_mask = torch.cat([torch.ones_like(word_mask[:, :1]), word_mask], dim=1)
        report = masked_mean(states, attention_mask)
        if self.embedding_norms is not None:
            image_global, regions = self.embedding_norms.image_side(image_global, regions)
            report, word_embeddings = self.embedding_norms.text_side(report, word_embeddings, word_mask)
        scales = {name: options[name] for name in ("region_attention_scale", "word_match_scale", "logit_scale")}
        global_loss = gloria_global_loss(image_global, report, options["logit_scale"])
        local_loss = gloria_local_loss(regions, word_embeddings, word_mask, aggregation=options["word_aggregation"],
                                       **scales).loss
        total = options["global_weight"] * global_loss + options["local_weight"] * local_loss
        return {"loss": total, "global": global_loss, "local": local_loss}
