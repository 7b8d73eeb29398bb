"""MGCA's training module: heads, prototypes and the three-level loss (method docs and options: ``mgca``).

Per batch of B images and reports (D = ``embedding_dim``, K = ``num_prototypes``):

* image: global feature (B, C_g) -> ``global_image_head`` -> v (B, D); local tokens (B, N, C_l) (ResNet: layer3)
  -> ``local_image_head`` -> P (B, N, D);
* report: [CLS] state (B, H) -> ``global_text_head`` -> t (B, D); word pieces summed into words (B, W, H) with
  importance = summed [CLS] attention -> ``local_text_head`` (real words only) -> W (B, W, D);
* all embeddings L2-normalised; ``prototype_layer`` = Linear(D, K, no bias), its rows re-normalised to unit length
  before every training batch, its gradient dropped during the first ``freeze_prototypes_epochs`` epochs (after
  backward, so DDP still sees it used);
* losses: ``ita`` = InfoNCE(v, t), ``local`` = token-wise alignment (``word`` + ``patch``), ``prototype`` =
  swapped prediction of Sinkhorn-Knopp prototype assignments; ``loss`` = their weighted sum.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from medvlp_bench.api import ImageEncoder, MedvlpError, TextEncoder
from medvlp_bench_plugins.methods.mgca import DEFAULT_OPTIONS
from medvlp_bench_plugins.methods.mgca_losses import aggregate_word_pieces, prototype_loss, token_alignment_loss
from medvlp_bench_plugins.methods.vlp_heads import GlobalProjectionHead, LocalProjectionHead
from medvlp_bench_plugins.methods.vlp_module import VisionLanguageModule, local_token_dim


class MGCAModule(VisionLanguageModule):
    method = "mgca"
    default_options = DEFAULT_OPTIONS

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, *, image_encoder_name: str,
                 text_encoder_name: str, options: Optional[Mapping[str, Any]] = None):
        super().__init__(image_encoder, text_encoder, image_encoder_name=image_encoder_name,
                         text_encoder_name=text_encoder_name, options=options)
        dim, hidden = self.options["embedding_dim"], self.options["projection_hidden_dim"]
        self.global_image_head = GlobalProjectionHead(image_encoder.global_dim, hidden, dim)
        self.local_image_head = LocalProjectionHead(local_token_dim(image_encoder), hidden, dim)
        self.global_text_head = GlobalProjectionHead(text_encoder.hidden_dim, hidden, dim)
        self.local_text_head = LocalProjectionHead(text_encoder.hidden_dim, hidden, dim)
        self.prototype_layer = nn.Linear(dim, self.options["num_prototypes"], bias=False)
        if self.options["reference_position_quirk"]:
            if not hasattr(text_encoder, "reference_position_quirk"):
                raise MedvlpError(f"text encoder {text_encoder_name!r} has no reference_position_quirk switch")
            text_encoder.reference_position_quirk = True

    def on_train_batch_start(self, batch, batch_index: int) -> None:
        with torch.no_grad():
            self.prototype_layer.weight.copy_(F.normalize(self.prototype_layer.weight, dim=1))

    def on_after_backward(self) -> None:
        if self.current_epoch < self.options["freeze_prototypes_epochs"]:
            self.prototype_layer.weight.grad = None

    def compute_losses(self, images: torch.Tensor, texts: list[str]) -> dict[str, torch.Tensor]:
        options = self.options
        image_global, image_local = self.image_features(images)
        text = self.encode_text(texts)
        words = aggregate_word_pieces(
            text.features.tokens, text.tokens["is_continuation"], text.tokens["attention_mask"],
            text.features.cls_attention, reference_shifted_importance=options["reference_shifted_importance"],
        )
        image_embeddings = F.normalize(self.global_image_head(image_global), dim=-1)
        text_embeddings = F.normalize(self.global_text_head(self.report_feature(text)), dim=-1)
        patch_embeddings = F.normalize(self.local_image_head(image_local), dim=-1)
        word_embeddings = F.normalize(self.local_text_head(words.embeddings, words.mask), dim=-1)

        ita = self.instance_alignment_loss(image_embeddings, text_embeddings, options["ita_temperature"])
        local = token_alignment_loss(
            word_embeddings, words.mask, words.importance, patch_embeddings, None, options["local_temperature"],
            quantiles=tuple(options["importance_quantiles"]),
            normalise_patch_context=options["normalise_patch_context"],
            reference_unmasked_word_candidates=options["reference_unmasked_word_candidates"],
        )
        prototype = prototype_loss(
            image_embeddings, text_embeddings, self.prototype_layer.weight, options["sinkhorn_eps"],
            options["prototype_temperature"], options["sinkhorn_iterations"],
            distributed=options["distributed_sinkhorn"] and self.training,
        )
        total = (options["ita_weight"] * ita + options["local_weight"] * local.loss
                 + options["prototype_weight"] * prototype)
        return {"loss": total, "ita": ita, "local": local.loss, "word": local.word_loss, "patch": local.patch_loss,
                "prototype": prototype}
