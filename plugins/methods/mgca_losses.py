"""MGCA's token-wise and prototype losses, batched (Wang et al., NeurIPS 2022, "Multi-Granularity
Cross-modal Alignment"; reimplemented from the paper and a reading of the authors' code release,
github.com/HKU-MedAI/MGCA).

* :func:`aggregate_word_pieces`: word-piece token states -> whole-word embeddings and word importance.
* :func:`clip_and_normalise_importance`: per-sample [10th, 90th] percentile clipping, then weights summing to 1.
* :func:`token_alignment_loss`: cross-modal token-wise alignment, word side + patch side
  (:func:`word_to_patch_alignment_loss`, :func:`patch_to_word_alignment_loss`).
* :func:`sinkhorn_knopp` and :func:`prototype_loss`: disease-level prototype alignment (swapped prediction).

The reference code loops over samples (quantile clipping) and over tokens (word-piece aggregation); here every
function works on the whole batch at once (cumsum word indices + index_add, nanquantile per row, bmm).
Logits and softmaxes are computed in (at least) float32, so the functions work in fp32 and under ``torch.autocast``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F

from medvlp_bench_plugins.methods.contrastive_losses import at_least_float32


class WordPieceAggregation(NamedTuple):
    """Whole words of a batch of reports, padded to the longest report's word count W.

    ``embeddings`` (B, W, D) sums of the word pieces' states (zeros at padding); ``importance`` (B, W) sums of
    the pieces' importance (zeros at padding; None when no token importance was given); ``mask`` (B, W) bool,
    True at real words.
    """

    embeddings: torch.Tensor
    importance: torch.Tensor | None
    mask: torch.Tensor


class TokenAlignment(NamedTuple):
    """Result of :func:`token_alignment_loss`.

    ``loss`` = ``word_loss`` + ``patch_loss`` (scalars, nats). ``word_attention`` (B, W, N): each word's
    softmax over patches; ``patch_attention`` (B, N, W): each patch's softmax over the real words.
    """

    loss: torch.Tensor
    word_loss: torch.Tensor
    patch_loss: torch.Tensor
    word_attention: torch.Tensor
    patch_attention: torch.Tensor


def aggregate_word_pieces(
    token_embeddings: torch.Tensor,
    is_continuation: torch.Tensor,
    attention_mask: torch.Tensor,
    token_importance: torch.Tensor | None = None,
    *,
    is_separator: torch.Tensor | None = None,
    reference_shifted_importance: bool = False,
) -> WordPieceAggregation:
    """Sum WordPiece tokens into whole words, batched.

    Inputs: ``token_embeddings`` (B, T, D) token states of a BERT-style tokenisation ``[CLS] pieces... [SEP]
    [PAD]...``; ``is_continuation`` (B, T) bool, True for pieces that continue the previous word ("##...");
    ``attention_mask`` (B, T) (1 = real token); ``token_importance`` (B, T) optional per-token importance
    (MGCA: last-layer attention from [CLS] to the token, averaged over heads); ``is_separator`` (B, T) bool,
    optional: True at [SEP]. Without it, [SEP] is the last attended token (as BERT tokenisers place it).

    Rules: position 0 ([CLS]) is dropped; the first [SEP] ends the report (it and every later token are
    dropped); a piece that is not a continuation starts a new word, a continuation joins the word before it.
    A continuation right after [CLS] would join [CLS] and is dropped with it. With k(b, t) the word index of
    token t, k = cumsum(starts) - 1::

        word_embedding[b, k] = sum_{t : k(b, t) = k} token_embedding[b, t]
        word_importance[b, k] = sum_{t : k(b, t) = k} importance[b, t]

    ``reference_shifted_importance`` reproduces Ref's off-by-one: Ref pairs token t with the importance of
    token t + 1 (its [CLS]-attention vector starts at token 1), so importance[b, t] := importance[b, t + 1]
    (0 for the last token). Default False: each token keeps its own importance.

    Needs one host synchronisation (the largest word count W sets the output shape).
    """
    batch_size, num_tokens, dim = token_embeddings.shape
    device = token_embeddings.device
    positions = torch.arange(num_tokens, device=device)
    attended = attention_mask.bool()
    if is_separator is None:
        report_end = attended.sum(dim=1) - 1
    else:
        has_separator = is_separator.any(dim=1)
        report_end = torch.where(has_separator, is_separator.int().argmax(dim=1), attended.sum(dim=1))
    kept = attended & (positions >= 1) & (positions < report_end[:, None])
    starts = kept & ~is_continuation.bool()
    word_index = starts.long().cumsum(dim=1) - 1
    in_word = kept & (word_index >= 0)
    words_per_report = starts.sum(dim=1)
    max_words = int(words_per_report.max()) if batch_size > 0 else 0

    # Tokens outside any word go to an extra slot per report, cut off afterwards.
    slot = torch.where(in_word, word_index, torch.full_like(word_index, max_words))
    flat_slot = (torch.arange(batch_size, device=device)[:, None] * (max_words + 1) + slot).reshape(-1)

    embeddings = token_embeddings.new_zeros(batch_size * (max_words + 1), dim)
    embeddings = embeddings.index_add(0, flat_slot, token_embeddings.reshape(-1, dim))
    embeddings = embeddings.view(batch_size, max_words + 1, dim)[:, :max_words]

    importance = None
    if token_importance is not None:
        if reference_shifted_importance:
            token_importance = F.pad(token_importance[:, 1:], (0, 1))
        importance = token_importance.new_zeros(batch_size * (max_words + 1))
        importance = importance.index_add(0, flat_slot, token_importance.reshape(-1))
        importance = importance.view(batch_size, max_words + 1)[:, :max_words]

    mask = torch.arange(max_words, device=device)[None, :] < words_per_report[:, None]
    return WordPieceAggregation(embeddings, importance, mask)


@torch.no_grad()
def clip_and_normalise_importance(
    importance: torch.Tensor,
    mask: torch.Tensor | None = None,
    quantiles: tuple[float, float] = (0.1, 0.9),
) -> torch.Tensor:
    """Per-sample percentile clipping of importance, then normalisation to weights summing to 1 (no grad).

    ``importance`` (B, M) >= 0 (word or patch importance), ``mask`` (B, M) bool, True at real entries (default
    all). Per row b, over its non-zero real entries E_b = {i : mask_bi and x_bi != 0}::

        lo_b, hi_b = quantile({x_bi : i in E_b}, quantiles)     (linear interpolation, as torch.quantile)
        c_bi = clip(x_bi, lo_b, hi_b) for i in E_b, else 0     (padding, [SEP] and zero entries get 0)
        w_bi = c_bi / sum_j c_bj

    A row whose entries are all zero gets uniform weights over its real entries (Ref would divide by zero),
    a row without real entries all zeros. Returns (B, M) in float32 (float64 for float64 input), unitless.
    """
    importance = at_least_float32(importance.detach())
    mask = torch.ones_like(importance, dtype=torch.bool) if mask is None else mask.bool()
    clippable = mask & (importance != 0)
    levels = torch.tensor(quantiles, dtype=importance.dtype, device=importance.device)
    bounds = torch.nanquantile(importance.masked_fill(~clippable, float("nan")), levels, dim=1, keepdim=True)
    clipped = torch.where(clippable, importance.clamp(bounds[0], bounds[1]), torch.zeros_like(importance))
    total = clipped.sum(dim=1, keepdim=True)
    uniform = mask.to(importance.dtype) / mask.sum(dim=1, keepdim=True).clamp(min=1)
    return torch.where(total > 0, clipped / total.clamp(min=torch.finfo(total.dtype).tiny), uniform)


def _masked_fill_min(logits: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Replace logits where ``keep`` is False by the most negative float: softmax gives them weight 0, and
    unlike -inf a row with nothing kept stays finite."""
    return logits.masked_fill(~keep, torch.finfo(logits.dtype).min)


def weighted_matching_cross_entropy(
    similarity: torch.Tensor,
    weights: torch.Tensor,
    candidate_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted cross-entropy of a per-sample token matching matrix, both directions averaged.

    ``similarity`` S (B, M, M) logits (token i of one modality vs attended context j), ``weights`` w (B, M)
    with rows summing to 1, ``candidate_mask`` (B, M) bool (None = all candidates real)::

        L = 1/B sum_b sum_i w_bi * 1/2 [ CE(S[b, i, :], i) + CE(S[b, :, i], i) ]
        CE(S[b, i, :], i) = -log softmax_j(S[b, i, j])_i       (row i: token i against all contexts)
        CE(S[b, :, i], i) = -log softmax_j(S[b, j, i])_i       (column i: context i against all tokens)

    Candidates outside ``candidate_mask`` are excluded from each softmax, and their own terms count 0.
    Returns a scalar (nats).
    """
    logits = at_least_float32(similarity)
    row_logits, column_logits = logits, logits
    if candidate_mask is not None:
        row_logits = _masked_fill_min(logits, candidate_mask[:, None, :])
        column_logits = _masked_fill_min(logits, candidate_mask[:, :, None])
    row_log_probability = torch.log_softmax(row_logits, dim=2).diagonal(dim1=1, dim2=2)
    column_log_probability = torch.log_softmax(column_logits, dim=1).diagonal(dim1=1, dim2=2)
    per_token = -(row_log_probability + column_log_probability) / 2
    if candidate_mask is not None:
        per_token = per_token.masked_fill(~candidate_mask, 0.0)
    return (weights * per_token).sum() / similarity.shape[0]


def word_to_patch_alignment_loss(
    word_embeddings: torch.Tensor,
    word_mask: torch.Tensor,
    word_weights: torch.Tensor,
    patch_embeddings: torch.Tensor,
    temperature: float = 0.1,
    *,
    reference_unmasked_word_candidates: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Word side of MGCA's token-wise alignment: each word attends over the patches of its own image.

    Shapes: words W (B, Mw, D) and patches P (B, N, D), L2-normalised; ``word_mask`` (B, Mw) bool;
    ``word_weights`` w (B, Mw) summing to 1 per sample (:func:`clip_and_normalise_importance`)::

        A = softmax_patches(W P^T / tau)           (B, Mw, N)
        O = normalise(A P)                         (B, Mw, D)
        S = W O^T / tau                            (B, Mw, Mw)
        L_word = weighted_matching_cross_entropy(S, w, word_mask)

    Padded words are excluded as candidates of the matching softmaxes; ``reference_unmasked_word_candidates``
    keeps them as candidates, as Ref does (its result then depends on what the padding embeddings are).
    Returns (L_word scalar, A).
    """
    logits = at_least_float32(torch.bmm(word_embeddings, patch_embeddings.transpose(1, 2))) / temperature
    attention = torch.softmax(logits, dim=-1)
    context = F.normalize(torch.bmm(attention.to(patch_embeddings.dtype), patch_embeddings), dim=-1)
    similarity = at_least_float32(torch.bmm(word_embeddings, context.transpose(1, 2))) / temperature
    candidate_mask = None if reference_unmasked_word_candidates else word_mask.bool()
    return weighted_matching_cross_entropy(similarity, word_weights, candidate_mask), attention


def patch_to_word_alignment_loss(
    patch_embeddings: torch.Tensor,
    patch_weights: torch.Tensor,
    word_embeddings: torch.Tensor,
    word_mask: torch.Tensor,
    temperature: float = 0.1,
    *,
    normalise_patch_context: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch side of MGCA's token-wise alignment: each patch attends over the real words of its own report.

    Shapes: patches P (B, N, D), words W (B, Mw, D), L2-normalised; ``patch_weights`` u (B, N) summing to 1
    per sample (uniform 1/N for ResNet; clipped last-block [CLS]->patch attention for ViT)::

        A = softmax_real words(P W^T / tau)        (B, N, Mw), padded words get weight 0
        O = A W, normalised if normalise_patch_context
        S = P O^T / tau                            (B, N, N)
        L_patch = weighted_matching_cross_entropy(S, u)

    Ref normalises O for ResNet only; pass ``normalise_patch_context=False`` to reproduce Ref's ViT runs.
    Returns (L_patch scalar, A).
    """
    logits = at_least_float32(torch.bmm(patch_embeddings, word_embeddings.transpose(1, 2))) / temperature
    attention = torch.softmax(_masked_fill_min(logits, word_mask.bool()[:, None, :]), dim=-1)
    context = torch.bmm(attention.to(word_embeddings.dtype), word_embeddings)
    if normalise_patch_context:
        context = F.normalize(context, dim=-1)
    similarity = at_least_float32(torch.bmm(patch_embeddings, context.transpose(1, 2))) / temperature
    return weighted_matching_cross_entropy(similarity, patch_weights), attention


def token_alignment_loss(
    word_embeddings: torch.Tensor,
    word_mask: torch.Tensor,
    word_importance: torch.Tensor,
    patch_embeddings: torch.Tensor,
    patch_importance: torch.Tensor | None = None,
    temperature: float = 0.1,
    *,
    quantiles: tuple[float, float] = (0.1, 0.9),
    normalise_patch_context: bool = True,
    reference_unmasked_word_candidates: bool = False,
) -> TokenAlignment:
    """MGCA's cross-modal token-wise alignment, L_local = L_word + L_patch (temperature 0.1).

    Shapes: ``word_embeddings`` (B, Mw, D), ``word_mask`` (B, Mw) bool and ``word_importance`` (B, Mw) as from
    :func:`aggregate_word_pieces` (then projected and L2-normalised); ``patch_embeddings`` (B, N, D)
    L2-normalised; ``patch_importance`` (B, N) or None (uniform weights 1/N, Ref's ResNet setting).
    Word importance, and patch importance when given, become weights by
    :func:`clip_and_normalise_importance` (no gradient flows through them). See
    :func:`word_to_patch_alignment_loss` and :func:`patch_to_word_alignment_loss` for the two sides and the
    options.
    """
    word_weights = clip_and_normalise_importance(word_importance, word_mask, quantiles)
    if patch_importance is None:
        batch_size, num_patches, _ = patch_embeddings.shape
        patch_weights = torch.full((batch_size, num_patches), 1.0 / num_patches, device=patch_embeddings.device)
    else:
        patch_weights = clip_and_normalise_importance(patch_importance, None, quantiles)
    word_loss, word_attention = word_to_patch_alignment_loss(
        word_embeddings,
        word_mask,
        word_weights,
        patch_embeddings,
        temperature,
        reference_unmasked_word_candidates=reference_unmasked_word_candidates,
    )
    patch_loss, patch_attention = patch_to_word_alignment_loss(
        patch_embeddings,
        patch_weights,
        word_embeddings,
        word_mask,
        temperature,
        normalise_patch_context=normalise_patch_context,
    )
    return TokenAlignment(word_loss + patch_loss, word_loss, patch_loss, word_attention, patch_attention)


def _is_distributed(distributed: bool) -> bool:
    return distributed and dist.is_available() and dist.is_initialized()


def _all_reduce_in_place(tensor: torch.Tensor, operation: str, distributed: bool) -> None:
    """All-reduce ``tensor`` with ``operation`` ("sum" or "max") when ``distributed`` and a group is initialised."""
    if _is_distributed(distributed):
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if operation == "sum" else dist.ReduceOp.MAX)


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor,
    eps: float = 0.05,
    iterations: int = 3,
    *,
    distributed: bool = False,
) -> torch.Tensor:
    """Balanced soft assignments of B samples to K prototypes (Sinkhorn-Knopp, no gradient).

    ``scores`` z (B, K): sample-prototype similarities. With Q (K, B) = exp(z / eps)^T / sum(exp(z / eps)),
    repeat ``iterations`` times::

        Q <- Q / (K * row sums)        each prototype receives total mass 1/K
        Q <- Q / (B * column sums)     each sample carries total mass 1/B

    and finally Q <- B Q, so that every sample's column sums to 1 and every prototype receives about B/K.
    Returns Q^T (B, K) in float32 (or float64): row b is sample b's target distribution over the prototypes.

    With ``distributed=True`` and an initialised process group, B is the global batch (local B times the world
    size) and the total and the row sums are all-reduced, as if all ranks' samples were one batch.
    Exponentials are taken after subtracting each prototype's maximum score (over the global batch): the first
    row normalisation cancels that exactly, and no prototype's row can underflow to 0. A sample whose
    exponentials all underflow (scores about 87 eps below every prototype's best) keeps 0 instead of NaN.
    """
    if iterations < 1:
        raise ValueError(f"sinkhorn_knopp needs at least one iteration, not {iterations}")
    scores = at_least_float32(scores.detach())
    prototype_max = scores.max(dim=0, keepdim=True).values
    _all_reduce_in_place(prototype_max, "max", distributed)
    assignments = torch.exp((scores - prototype_max) / eps).T
    num_prototypes, batch_size = assignments.shape
    if _is_distributed(distributed):
        batch_size *= dist.get_world_size()
    total = assignments.sum()
    _all_reduce_in_place(total, "sum", distributed)
    assignments = assignments / total
    tiny = torch.finfo(assignments.dtype).tiny
    for _ in range(iterations):
        prototype_mass = assignments.sum(dim=1, keepdim=True)
        _all_reduce_in_place(prototype_mass, "sum", distributed)
        assignments = assignments / (prototype_mass.clamp(min=tiny) * num_prototypes)
        assignments = assignments / (assignments.sum(dim=0, keepdim=True).clamp(min=tiny) * batch_size)
    return (assignments * batch_size).T


def prototype_loss(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    prototypes_weight: torch.Tensor,
    eps: float = 0.05,
    temperature: float = 0.2,
    iterations: int = 3,
    *,
    distributed: bool = False,
) -> torch.Tensor:
    """MGCA's disease-level prototype alignment: swapped prediction between image and report assignments.

    Shapes: ``image_embeddings`` and ``text_embeddings`` (B, D) L2-normalised global embeddings;
    ``prototypes_weight`` C (K, D), the prototype layer's weight (Ref: K = 500, rows re-normalised to unit length
    in place before every step; this function uses the weight as given)::

        z_img = v C^T, z_txt = t C^T                          (B, K)
        q_img = sinkhorn_knopp(z_img, eps), q_txt likewise     (targets, no gradient)
        p_img = softmax(z_img / temperature), p_txt likewise
        L = 1/2 [ -mean_b sum_k q_img log p_txt - mean_b sum_k q_txt log p_img ]

    Returns a scalar (nats). ``distributed`` is passed to :func:`sinkhorn_knopp`.
    """
    image_scores = image_embeddings @ prototypes_weight.T
    text_scores = text_embeddings @ prototypes_weight.T
    image_targets = sinkhorn_knopp(image_scores, eps, iterations, distributed=distributed)
    text_targets = sinkhorn_knopp(text_scores, eps, iterations, distributed=distributed)
    image_log_probs = F.log_softmax(at_least_float32(image_scores) / temperature, dim=1)
    text_log_probs = F.log_softmax(at_least_float32(text_scores) / temperature, dim=1)
    image_to_text = -(image_targets * text_log_probs).sum(dim=1).mean()
    text_to_image = -(text_targets * image_log_probs).sum(dim=1).mean()
    return (image_to_text + text_to_image) / 2
