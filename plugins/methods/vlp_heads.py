"""Projection heads of the vision-language methods: features of an encoder -> the joint embedding space.

MGCA and ConVIRT as the MGCA code release (github.com/HKU-MedAI/MGCA) builds them, emb_dim D = 128, hidden H = 2048:

* :class:`GlobalProjectionHead`: (B, C) -> (B, D), ``Linear(C, H) - BN1d - ReLU - Linear(H, D) - BN1d(affine=False)``;
* :class:`LocalProjectionHead`: (B, N, C) tokens -> (B, N, D), the same layers as ``Conv1d(kernel 1)`` over tokens.

The layers sit in ``head`` (indices 0, 1, 3, 4 hold parameters), the names MGCA's released checkpoints use.
The heads do not normalise: the methods L2-normalise the outputs.

GLoRIA (Huang et al., ICCV 2021) projects only the image side, to the text encoder's width D (768 for BERT-base),
and uses the text encoder's states as they are: :class:`GloriaImageEmbedders`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

EMBEDDING_DIM = 128
HIDDEN_DIM = 2048


class GlobalProjectionHead(nn.Module):
    """``Linear(C, H) - BatchNorm1d(H) - ReLU - Linear(H, D) - BatchNorm1d(D, affine=False)``: (B, C) -> (B, D)."""

    def __init__(self, in_dim: int, hidden_dim: int = HIDDEN_DIM, out_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.head = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
            nn.BatchNorm1d(out_dim, affine=False),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


class LocalProjectionHead(nn.Module):
    """The global head's layers as 1x1 convolutions over tokens: (B, N, C) -> (B, N, D).

    BatchNorm statistics are taken over all real tokens of the batch. With ``mask`` (B, N) bool (True at real
    tokens, e.g. words of reports of different lengths), only the real tokens pass through the head (padding
    does not enter the statistics) and padded positions of the output are 0.
    """

    def __init__(self, in_dim: int, hidden_dim: int = HIDDEN_DIM, out_dim: int = EMBEDDING_DIM):
        super().__init__()
        self.out_dim = out_dim
        self.head = nn.Sequential(
            nn.Conv1d(in_dim, hidden_dim, kernel_size=1),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden_dim, out_dim, kernel_size=1),
            nn.BatchNorm1d(out_dim, affine=False),
        )

    def forward(self, tokens: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mask is None:
            return self.head(tokens.transpose(1, 2)).transpose(1, 2)
        mask = mask.bool()
        real = self.head(tokens[mask].T.unsqueeze(0)).squeeze(0).T
        out = real.new_zeros(*mask.shape, self.out_dim)
        out[mask] = real
        return out


class GloriaImageEmbedders(nn.Module):
    """GLoRIA's image-side embedders into the text width D.

    ``global_embedder``: ``Linear(C_g, D)`` (with bias) on the global feature (B, C_g) -> (B, D);
    ``local_embedder``: ``Linear(C_l, D, bias=False)`` on local tokens (B, N, C_l) -> (B, N, D), the same map as
    GLoRIA's 1x1 ``Conv2d`` without bias over the layer3 feature map. Outputs are not normalised (GLoRIA's losses
    use cosine similarities where they need them).
    """

    def __init__(self, global_dim: int, local_dim: int, embedding_dim: int):
        super().__init__()
        self.global_embedder = nn.Linear(global_dim, embedding_dim)
        self.local_embedder = nn.Linear(local_dim, embedding_dim, bias=False)

    def forward(self, global_features: torch.Tensor, local_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.global_embedder(global_features), self.local_embedder(local_tokens)


class GloriaEmbeddingNorms(nn.Module):
    """``BatchNorm1d(D, affine=False)`` on each of GLoRIA's four embeddings (option ``embedding_batch_norm``):
    the global image embedding g (B, D), the report embedding s (B, D), the regions r (B, N, D) and the words
    e (B, W, D) (statistics over the real words only; padded positions stay 0)::

        x' = (x - mean_batch(x)) / sqrt(var_batch(x) + 1e-5)          (running statistics at evaluation)

    MGCA's and ConVIRT's projection heads end with the same layer. GLoRIA has none: with a pretrained BERT its
    embeddings differ enough between reports, but a randomly initialised text tower's report means are nearly
    collinear, so their scaled cosines barely differ and the contrastive losses stay at chance.
    """

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.image = nn.BatchNorm1d(embedding_dim, affine=False)
        self.report = nn.BatchNorm1d(embedding_dim, affine=False)
        self.region = nn.BatchNorm1d(embedding_dim, affine=False)
        self.word = nn.BatchNorm1d(embedding_dim, affine=False)

    def image_side(self, image_global: torch.Tensor, regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g', r') of g (B, D) and r (B, N, D)."""
        return self.image(image_global), self.region(regions.flatten(0, 1)).view_as(regions)

    def text_side(self, report: torch.Tensor, words: torch.Tensor,
                  word_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s', e') of s (B, D) and e (B, W, D) with ``word_mask`` (B, W) True at real words."""
        mask = word_mask.bool()
        normalised = words.new_zeros(words.shape)
        normalised[mask] = self.word(words[mask])
        return self.report(report), normalised
