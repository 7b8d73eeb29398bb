"""The image-text models of the vision-language methods (zero-shot classification and retrieval).

Both classes are :class:`medvlp_bench.api.ImageTextModel`\\ s built from an image tower, a text tower and the
method's projections (the modules its pretraining trained; see ``*_module.py``):

* :class:`ProjectedImageTextModel` (MGCA, ConVIRT, random towers): image embedding
  ``v = normalise(image_head(global image feature))``; text embedding ``t = normalise(text_head(r))`` with ``r``
  the report feature of the text tower, its [CLS] state (``report_pooling="cls"``) or the mean of its token
  states over [CLS] ... [SEP] (``"mean"``). Score = cosine ``v . t``.
* :class:`GloriaImageTextModel`: image embedding ``g = normalise(global_embedder(global feature))``, regions
  ``r_n = local_embedder(local token n)``; text embedding ``s = normalise(mean token state)``, words ``e_w`` = word
  pieces summed (with the ``embedding_batch_norm`` option, g, r, s and e pass the pretraining's batch norms, in
  evaluation mode, before that). Its own score (``own_similarity``) averages the global cosine and the local word-region score
  of :func:`gloria_local_scores` brought to the cosine's scale: ``score = (g . s + S / t2) / 2``
  (``S / t2`` = a soft maximum over words of the word-context cosines, in [max_w R_w, max_w R_w + log W / t2]).

With ``resnet_upsample`` the images are first resized by 299/224 (bilinear, align_corners), as in pretraining
with the ``reference_resnet_upsample`` option.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medvlp_bench.api import ImageEncoder, ImageTextModel, TextEncoder

#: images are resized by this factor first when a model was pretrained with ``reference_resnet_upsample``
REFERENCE_UPSAMPLE = 299 / 224
#: captions scored at once by :func:`gloria_local_scores` inside :meth:`GloriaImageTextModel.similarity`
CAPTION_CHUNK = 64


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim 1 of (B, T, D) ``states`` where ``mask`` (B, T) is non-zero: (B, D)."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def words_of(states: torch.Tensor, is_continuation: torch.Tensor, attention_mask: torch.Tensor):
    """Whole-word embeddings (B, W, D) and mask (B, W): word pieces summed, [CLS] and [SEP] left out."""
    from medvlp_bench_plugins.methods.mgca_losses import aggregate_word_pieces

    words = aggregate_word_pieces(states, is_continuation, attention_mask)
    return words.embeddings, words.mask


class _TwoTowerModel(ImageTextModel):
    """Shared plumbing: device, the optional input upsampling, tokenising and running the text tower."""

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, *, resnet_upsample: bool):
        super().__init__(image_encoder)
        self.text_encoder = text_encoder
        self.resnet_upsample = resnet_upsample

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _tower_input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.resnet_upsample:
            return x
        side = round(x.shape[-1] * REFERENCE_UPSAMPLE)
        return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=True)

    def _text(self, texts: Sequence[str]):
        """Tokens (dict of (T, L) tensors on the model's device) and the text tower's features."""
        tokens = {name: value.to(self.device) for name, value in self.text_encoder.tokenize(list(texts)).items()}
        return tokens, self.text_encoder(tokens["input_ids"], tokens["attention_mask"])

    def describe(self) -> dict:
        return super().describe() | {"text_encoder": self.text_encoder.describe()}


class ProjectedImageTextModel(_TwoTowerModel):
    """MGCA / ConVIRT style: global projection heads on both sides (module docstring)."""

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, image_head: nn.Module,
                 text_head: nn.Module, *, embedding_dim: int, report_pooling: str = "cls",
                 resnet_upsample: bool = False):
        super().__init__(image_encoder, text_encoder, resnet_upsample=resnet_upsample)
        if report_pooling not in ("cls", "mean"):
            raise ValueError(f"report_pooling must be 'cls' or 'mean', not {report_pooling!r}")
        self.image_head = image_head
        self.text_head = text_head
        self.embedding_dim = embedding_dim
        self.report_pooling = report_pooling

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_head(self.image_encoder.global_features(self._tower_input(x))), dim=-1)

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens, features = self._text(texts)
        report = features.cls if self.report_pooling == "cls" else masked_mean(features.tokens,
                                                                              tokens["attention_mask"])
        return F.normalize(self.text_head(report), dim=-1)

    def describe(self) -> dict:
        return super().describe() | {"report_pooling": self.report_pooling}


def gloria_local_scores(regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor, *,
                        region_attention_scale: float = 4.0, word_match_scale: float = 5.0,
                        aggregation: str = "sum", eps: float = 1e-8) -> torch.Tensor:
    """GLoRIA's local image-caption score S (B, C) of every image b against every caption c.

    ``regions`` r (B, N, D), ``words`` e (C, W, D), ``word_mask`` (C, W) bool (each caption has a word)::

        d[c,w,b,n] = <e_cw, r_bn>
        alpha[c,w,b,n] = softmax_n( t1 * softmax_{w in c}(d[c,:,b,n])_w )      t1 = region_attention_scale
        context[b,c,w] = sum_n alpha[c,w,b,n] r_bn
        R[b,c,w] = <e_cw, context[b,c,w]> / max(|e_cw| |context[b,c,w]|, eps)
        S[b,c] = log sum_{w in c} exp(t2 * R[b,c,w])                           t2 = word_match_scale
                 (``aggregation="mean"``: minus log |c|)

    the score whose scaled cross-entropy over a batch is GLoRIA's local loss (``gloria_losses``).
    """
    mask = word_mask.bool()
    num_captions, num_words, dim = words.shape
    num_images, num_regions, _ = regions.shape
    dots = (words.reshape(-1, dim) @ regions.reshape(-1, dim).T).view(num_captions, num_words, num_images,
                                                                       num_regions)
    dots = dots.masked_fill(~mask[:, :, None, None], torch.finfo(dots.dtype).min)
    attention = torch.softmax(region_attention_scale * torch.softmax(dots, dim=1), dim=3)
    context = torch.einsum("cwbn,bnd->bcwd", attention, regions)
    cosine = (words[None] * context).sum(-1) / (words.norm(dim=-1)[None] * context.norm(dim=-1)).clamp(min=eps)
    scores = torch.logsumexp((word_match_scale * cosine).masked_fill(~mask[None], float("-inf")), dim=2)
    if aggregation == "mean":
        scores = scores - mask.sum(dim=1).to(scores.dtype).log()
    return scores


class GloriaImageTextModel(_TwoTowerModel):
    """GLoRIA: global embeddings plus the local word-region score as its own similarity (module docstring)."""

    own_similarity = True

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, embedders: nn.Module, *,
                 region_attention_scale: float = 4.0, word_match_scale: float = 5.0, aggregation: str = "sum",
                 resnet_upsample: bool = False, embedding_norms: Optional[nn.Module] = None):
        super().__init__(image_encoder, text_encoder, resnet_upsample=resnet_upsample)
        self.embedders = embedders
        self.embedding_norms = embedding_norms
        self.embedding_dim = text_encoder.hidden_dim
        self.scales = {"region_attention_scale": region_attention_scale, "word_match_scale": word_match_scale,
                       "aggregation": aggregation}

    def image_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised global embedding (B, D), region embeddings (B, N, D))."""
        global_embedding, regions = self.embedders(*self.image_encoder.global_and_local(self._tower_input(x)))
        if self.embedding_norms is not None:
            global_embedding, regions = self.embedding_norms.image_side(global_embedding, regions)
        return F.normalize(global_embedding, dim=-1), regions

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_features(x)[0]

    def text_features(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(normalised report embedding (T, D), word embeddings (T, W, D), word mask (T, W))."""
        tokens, features = self._text(texts)
        sentence = masked_mean(features.tokens, tokens["attention_mask"])
        words, mask = words_of(features.tokens, tokens["is_continuation"], tokens["attention_mask"])
        if self.embedding_norms is not None:
            sentence, words = self.embedding_norms.text_side(sentence, words, mask)
        return F.normalize(sentence, dim=-1), words, mask

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.text_features(texts)[0]

    def similarity(self, image_features, text_features) -> torch.Tensor:
        """``(g . s + S / t2) / 2`` (module docstring), captions scored CAPTION_CHUNK at a time."""
        global_embedding, regions = image_features
        sentence, words, mask = text_features
        local = torch.cat([
            gloria_local_scores(regions, words[start:start + CAPTION_CHUNK], mask[start:start + CAPTION_CHUNK],
                                **self.scales)
            for start in range(0, len(words), CAPTION_CHUNK)
        ], dim=1)
        return (global_embedding @ sentence.T + local / self.scales["word_match_scale"]) / 2

    def describe(self) -> dict:
        return super().describe() | {"local_score": dict(self.scales)}
