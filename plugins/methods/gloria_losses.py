"""GLoRIA's global and local (attention-weighted word-region) contrastive losses, batched.

Huang et al., ICCV 2021, "GLoRIA: A Multimodal Global-Local Representation Learning Framework for
Label-efficient Medical Image Recognition". Reimplemented from a reading of the authors' code
(github.com/marshuang80/gloria, ``gloria/loss/gloria_loss.py``); their defaults are temp1 = 4, temp2 = 5,
temp3 = 10 (here ``region_attention_scale``, ``word_match_scale``, ``logit_scale``: all three multiply).
The total objective there is (L_local,i->t + L_local,t->i) * local weight + (L_global,i->t + L_global,t->i) *
global weight, with both weights 1.

The authors' local loss loops over captions; :func:`gloria_local_loss` scores every caption against every
image at once, with variable word counts handled by a word mask.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from medvlp_bench_plugins.methods.contrastive_losses import DirectionReduction, at_least_float32, reduce_directions


class GloriaLocalLoss(NamedTuple):
    """Result of :func:`gloria_local_loss`.

    ``loss`` = combination of ``image_to_text`` and ``text_to_image`` (scalars, nats); ``attention`` (B, W, N):
    for each caption, its words' attention over the regions of its own image (zeros at padded words).
    """

    loss: torch.Tensor
    image_to_text: torch.Tensor
    text_to_image: torch.Tensor
    attention: torch.Tensor


def _cosine_similarity(first: torch.Tensor, second: torch.Tensor, eps: float) -> torch.Tensor:
    """cos = <a, b> / max(|a| |b|, eps) over the last dimension (GLoRIA's definition: the product of the norms
    is clamped, not each norm)."""
    return (first * second).sum(dim=-1) / (first.norm(dim=-1) * second.norm(dim=-1)).clamp(min=eps)


def _identity_cross_entropy(logits: torch.Tensor, reduction: DirectionReduction) -> tuple[torch.Tensor, ...]:
    """Cross-entropy of a square (B, B) image x caption logit matrix against the diagonal, by rows (image to
    text) and by columns (text to image); returns (combined, image_to_text, text_to_image)."""
    targets = torch.arange(logits.shape[0], device=logits.device)
    image_to_text = F.cross_entropy(logits, targets)
    text_to_image = F.cross_entropy(logits.T, targets)
    return reduce_directions(image_to_text, text_to_image, reduction), image_to_text, text_to_image


def gloria_global_loss(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    logit_scale: float = 10.0,
    eps: float = 1e-8,
    *,
    reduction_of_directions: DirectionReduction = "sum",
) -> torch.Tensor:
    """GLoRIA's global loss: symmetric cross-entropy on scaled cosine similarities of global embeddings.

    Shapes: ``image_embeddings`` v (B, D), ``text_embeddings`` t (B, D), not necessarily normalised::

        s_ij = logit_scale * <v_i, t_j> / max(|v_i| |t_j|, eps)            (B, B), logit_scale = temp3 = 10
        L = CE(s, diag) + CE(s^T, diag)          ("sum", as the authors add them; "mean" halves it)

    Returns a scalar (nats).
    """
    dots = at_least_float32(image_embeddings @ text_embeddings.T)
    norms = at_least_float32(image_embeddings).norm(dim=1)[:, None] * at_least_float32(text_embeddings).norm(dim=1)
    logits = dots / norms.clamp(min=eps) * logit_scale
    return _identity_cross_entropy(logits, reduction_of_directions)[0]


def gloria_local_loss(
    region_features: torch.Tensor,
    word_embeddings: torch.Tensor,
    word_mask: torch.Tensor,
    region_attention_scale: float = 4.0,
    word_match_scale: float = 5.0,
    logit_scale: float = 10.0,
    aggregation: Literal["sum", "mean"] = "sum",
    eps: float = 1e-8,
    *,
    reduction_of_directions: DirectionReduction = "sum",
) -> GloriaLocalLoss:
    """GLoRIA's local loss: words attend over image regions, word-context matches are pooled per caption by
    log-sum-exp, and the caption-image scores enter a symmetric cross-entropy over the batch.

    Shapes: ``region_features`` r (B, N, D) (an image's N = H*W sub-region features, not normalised in GLoRIA),
    ``word_embeddings`` e (B, W, D), ``word_mask`` (B, W) bool, True at caption c's words (each caption needs at
    least one). For caption c and image b (all pairs at once)::

        d[b,c,w,n] = <e_cw, r_bn>
        alpha[b,c,w,n] = softmax_n( t1 * softmax_{w in c}(d[b,c,:,n])_w )     t1 = region_attention_scale = 4
        context[b,c,w] = sum_n alpha[b,c,w,n] r_bn
        R[b,c,w] = cos(e_cw, context[b,c,w])
        S[b,c] = log sum_{w in c} exp(t2 * R[b,c,w])                          t2 = word_match_scale = 5
                 (``aggregation="mean"``: log mean_w exp(...), i.e. minus log |c|)
        L_i->t = CE(t3 * S, diag), L_t->i = CE(t3 * S^T, diag)                t3 = logit_scale = 10
        loss = L_i->t + L_t->i          ("sum", as the authors add them; "mean" halves it)

    The double softmax (first over the caption's words for each region, then ``t1`` times those probabilities
    softmaxed over regions) is what the authors' code computes; the paper writes a single softmax over regions
    of ``t1 * d``. To reproduce their runs, mark [CLS] and the words in ``word_mask`` and not [SEP]: their
    caption length counts the words plus one, starting at position 0 ([CLS]).

    Numerical differences from their loop: the log-sum-exp is computed stably (they take exp, sum, then log),
    and batched matrix products sum in a different order; padded words get exactly zero weight in the word
    softmax, as if absent. The results agree to float32 rounding (tested against a loop to 1e-5).

    Memory: (B, B, W, N) tensors are held for backward, W the longest caption's word count (about 0.66 GB
    each in float32 at B = 72, W = 88, N = 361). Returns :class:`GloriaLocalLoss`.
    """
    if aggregation not in ("sum", "mean"):
        raise ValueError(f"aggregation must be 'sum' or 'mean', not {aggregation!r}")
    num_images, num_regions, dim = region_features.shape
    num_captions, num_words, _ = word_embeddings.shape
    mask = word_mask.bool()
    # Layout (caption c, word w, image b, region n): one matrix product gives every word-region dot product,
    # and the attended contexts are a batched product over images of strided views (no copies).
    dots = word_embeddings.reshape(num_captions * num_words, dim) @ region_features.reshape(-1, dim).T
    dots = at_least_float32(dots)
    lowest = torch.finfo(dots.dtype).min
    dots = dots.masked_fill_(~mask.reshape(-1, 1), lowest).view(num_captions, num_words, num_images, num_regions)
    word_softmax = torch.softmax(dots, dim=1)
    attention = torch.softmax(region_attention_scale * word_softmax, dim=3)
    per_image_attention = attention.view(num_captions * num_words, num_images, num_regions).transpose(0, 1)
    context = torch.bmm(per_image_attention.to(region_features.dtype), region_features)
    context = context.view(num_images, num_captions, num_words, dim)
    match = _cosine_similarity(at_least_float32(word_embeddings)[None], at_least_float32(context), eps)
    image_caption_scores = torch.logsumexp((word_match_scale * match).masked_fill(~mask[None], lowest), dim=2)
    if aggregation == "mean":
        image_caption_scores = image_caption_scores - mask.sum(dim=1).to(image_caption_scores.dtype).log()
    loss, image_to_text, text_to_image = _identity_cross_entropy(
        logit_scale * image_caption_scores, reduction_of_directions
    )
    own_image_attention = attention.diagonal(dim1=0, dim2=2).permute(2, 0, 1) * mask[:, :, None]
    return GloriaLocalLoss(loss, image_to_text, text_to_image, own_image_attention)
