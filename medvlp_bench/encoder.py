"""The image-encoder interface: the seam between pretraining methods and downstream tasks.

Methods produce an :class:`ImageEncoder`; protocols consume it through these members only:

* ``global_features(x)``  -> (B, global_dim) vector (ResNet: average-pooled last stage; ViT: CLS token).
* ``feature_maps(x)``     -> list of (B, C_i, H/s_i, W/s_i) maps, channels ``map_channels`` and strides
  ``map_strides`` (pixels of input per map cell), shallow to deep.
* ``local_tokens(x)``     -> (B, N, C) tokens (ResNet: a stage flattened; ViT: patch tokens).

``x`` is a float tensor (B, 3, input_size, input_size) normalised as ``(x/255 - mean) / std`` per channel.

Methods with a text tower use a :class:`TextEncoder`:

* ``tokenize(texts)`` -> dict with ``input_ids`` (B, T) long, ``attention_mask`` (B, T) long and
  ``is_continuation`` (B, T) bool (word pieces that continue the previous word, "##..." in WordPiece);
* ``forward(input_ids, attention_mask)`` -> :class:`TextFeatures`: ``tokens`` (B, T, hidden_dim) last-layer token
  states, ``cls`` (B, hidden_dim) the [CLS] state, ``cls_attention`` (B, T) last-layer attention from [CLS] to
  each token, averaged over heads (word importance; rows sum to 1 over attended tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn


class ImageEncoder(nn.Module):
    """Base class of every image encoder. Subclasses set the attributes and implement the three methods."""

    #: square input side in pixels
    input_size: int = 224
    #: per-channel normalisation applied to pixel values scaled to [0, 1]
    mean: Sequence[float] = (0.485, 0.456, 0.406)
    std: Sequence[float] = (0.229, 0.224, 0.225)
    #: length of the global feature vector
    global_dim: int = 0
    #: channels and strides of ``feature_maps``' outputs
    map_channels: Sequence[int] = ()
    map_strides: Sequence[int] = ()
    #: architecture name (the encoder plugin's name), recorded in run records
    arch: str = ""
    #: how checkpoint weights were imported (e.g. ``LoadReport.counts()``), recorded in run records when set
    weights_report: Optional[dict] = None

    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def local_tokens(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def global_and_local(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(global_features(x), local_tokens(x))``. This default runs the network twice; encoders whose two
        outputs come from one pass (ResNet, ViT) override it so that pretraining pays for one forward."""
        return self.global_features(x), self.local_tokens(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.global_features(x)

    def describe(self) -> dict:
        """A JSON-able summary for run records."""
        return {
            "arch": self.arch,
            "input_size": self.input_size,
            "global_dim": self.global_dim,
            "map_channels": list(self.map_channels),
            "map_strides": list(self.map_strides),
            "mean": list(self.mean),
            "std": list(self.std),
            **({"weights_report": self.weights_report} if self.weights_report else {}),
        }


@dataclass
class TextFeatures:
    """Outputs of a :class:`TextEncoder` (shapes in its docstring)."""

    tokens: torch.Tensor
    cls: torch.Tensor
    cls_attention: torch.Tensor


class TextEncoder(nn.Module):
    """Base class of every text encoder (see the module docstring)."""

    #: width of the token states
    hidden_dim: int = 0
    #: maximum tokenised length, [CLS] and [SEP] included
    max_length: int = 112
    #: architecture name (the encoder plugin's name), recorded in run records
    arch: str = ""

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"arch": self.arch, "hidden_dim": self.hidden_dim, "max_length": self.max_length}


class ImageTextModel(ImageEncoder):
    """An image tower and a text tower that embed into one shared space (zero-shot classification, retrieval).

    It is an :class:`ImageEncoder` too: ``global_features``, ``feature_maps`` and ``local_tokens`` are those of
    its image tower, and so are ``input_size``, ``mean`` and ``std`` (images come in as for any encoder:
    ``(v / 255 - mean_c) / std_c`` at ``input_size`` px). Subclasses implement

    * ``embed_images(x)`` -> (B, embedding_dim) image embeddings, L2-normalised (unit rows);
    * ``embed_texts(texts)`` -> (T, embedding_dim) text embeddings of a list of strings, L2-normalised;

    and may offer their own image-text score (GLoRIA's word-region score): ``image_features(x)`` and
    ``text_features(texts)`` return whatever ``similarity(image_features, text_features)`` needs, and
    ``similarity`` returns the (B, T) scores, higher = more alike. By default the features are the embeddings
    and ``similarity`` their cosine, ``image @ text.T``; ``own_similarity`` says that a subclass changed it.
    """

    #: width of the shared embedding space
    embedding_dim: int = 0
    #: True when ``similarity`` is the model's own score rather than the cosine of the embeddings
    own_similarity: bool = False

    def __init__(self, image_encoder: ImageEncoder):
        super().__init__()
        self.image_encoder = image_encoder
        for name in ("input_size", "mean", "std", "global_dim", "map_channels", "map_strides", "arch"):
            setattr(self, name, getattr(image_encoder, name))

    def global_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_encoder.global_features(x)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.image_encoder.feature_maps(x)

    def local_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_encoder.local_tokens(x)

    def global_and_local(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_encoder.global_and_local(x)

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    def image_features(self, x: torch.Tensor):
        return self.embed_images(x)

    def text_features(self, texts: Sequence[str]):
        return self.embed_texts(texts)

    def similarity(self, image_features, text_features) -> torch.Tensor:
        return image_features @ text_features.T

    def describe(self) -> dict:
        return super().describe() | {"embedding_dim": self.embedding_dim, "own_similarity": self.own_similarity}
