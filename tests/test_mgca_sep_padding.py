"""The two [SEP]/padding conventions compared by benchmarks/perf/mgca_sep_padding.py, on the loss functions:
masked padding (this project) leaves MGCA's token losses unchanged, an unmasked shared padding vector (the
release's) changes them, and ``is_separator`` all False keeps [SEP] as the report's last word."""

import torch
import torch.nn.functional as F

from medvlp_bench_plugins.methods.mgca_losses import aggregate_word_pieces, token_alignment_loss


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    words = F.normalize(torch.randn(3, 5, 8, generator=generator), dim=-1)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    words = words * mask[..., None]
    importance = torch.rand(3, 5, generator=generator) * mask
    patches = F.normalize(torch.randn(3, 6, 8, generator=generator), dim=-1)
    return words, mask, importance, patches


def _append(words, mask, importance, vector, count, *, masked):
    batch, _, dim = words.shape
    extra = vector.expand(batch, count, dim)
    extra_mask = torch.full((batch, count), not masked, dtype=torch.bool)
    return (torch.cat([words, extra], dim=1), torch.cat([mask, extra_mask], dim=1),
            torch.cat([importance, importance.new_zeros(batch, count)], dim=1))


def test_masked_zero_padding_leaves_token_losses_unchanged():
    words, mask, importance, patches = _batch()
    base = token_alignment_loss(words, mask, importance, patches)
    padded = token_alignment_loss(*_append(words, mask, importance, torch.zeros(8), 7, masked=True), patches)
    torch.testing.assert_close(padded.word_loss, base.word_loss)
    torch.testing.assert_close(padded.patch_loss, base.patch_loss)


def test_unmasked_shared_padding_vector_changes_token_losses():
    words, mask, importance, patches = _batch()
    release_mask = torch.ones_like(mask)  # the release's padding is unmasked, also at the batch's own padding
    vector = F.normalize(torch.randn(8, generator=torch.Generator().manual_seed(1)), dim=0)
    words = torch.where(mask[..., None], words, vector)
    short = token_alignment_loss(words, release_mask, importance, patches)
    longer = token_alignment_loss(*_append(words, release_mask, importance, vector, 7, masked=False), patches)
    assert not torch.isclose(short.word_loss, longer.word_loss)
    assert not torch.isclose(short.patch_loss, longer.patch_loss)
    # patches attend to the appended padding (the masked convention gives it weight 0)
    assert longer.patch_attention[..., 5:].sum() > 0


def test_separator_kept_as_last_word_when_no_token_is_marked():
    # [CLS] a b ##c [SEP] [PAD]
    states = torch.arange(6, dtype=torch.float32).view(1, 6, 1)
    continuation = torch.tensor([[False, False, False, True, False, False]])
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]])
    ours = aggregate_word_pieces(states, continuation, attention)
    kept = aggregate_word_pieces(states, continuation, attention, is_separator=torch.zeros_like(continuation))
    assert ours.embeddings[0, :, 0].tolist() == [1.0, 5.0]
    assert kept.embeddings[0, :, 0].tolist() == [1.0, 5.0, 4.0]
    assert kept.mask.tolist() == [[True, True, True]]
