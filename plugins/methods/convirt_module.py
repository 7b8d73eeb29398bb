"""ConVIRT's training module (method docs and options: ``convirt``).

v = normalise(global_image_head(global image feature)), t = normalise(global_text_head([CLS] state)), both (B, D);
``loss`` = InfoNCE(v, t) with s = v t^T / temperature, L = CE(s, diag) + CE(s^T, diag).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F

from medvlp_bench.api import ImageEncoder, TextEncoder
from medvlp_bench_plugins.methods.convirt import DEFAULT_OPTIONS
from medvlp_bench_plugins.methods.vlp_heads import GlobalProjectionHead
from medvlp_bench_plugins.methods.vlp_module import VisionLanguageModule


class ConVIRTModule(VisionLanguageModule):
    method = "convirt"
    default_options = DEFAULT_OPTIONS

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, *, image_encoder_name: str,
                 text_encoder_name: str, options: Optional[Mapping[str, Any]] = None):
        super().__init__(image_encoder, text_encoder, image_encoder_name=image_encoder_name,
                         text_encoder_name=text_encoder_name, options=options)
        dim, hidden = self.options["embedding_dim"], self.options["projection_hidden_dim"]
        self.global_image_head = GlobalProjectionHead(image_encoder.global_dim, hidden, dim)
        self.global_text_head = GlobalProjectionHead(text_encoder.hidden_dim, hidden, dim)

    def compute_losses(self, images: torch.Tensor, texts: list[str]) -> dict[str, torch.Tensor]:
        text = self.encode_text(texts)
        image_embeddings = F.normalize(self.global_image_head(self.img_encoder_q.global_features(images)), dim=-1)
        text_embeddings = F.normalize(self.global_text_head(self.report_feature(text)), dim=-1)
        return {"loss": self.instance_alignment_loss(image_embeddings, text_embeddings, self.options["temperature"])}
