"""Measurement: MGCA's token-level losses under this project's [SEP]/padding convention and under the release's.

    MEDVLP_HOME=/tmp/fresh-home python benchmarks/perf/mgca_sep_padding.py [--checkpoint PATH]
        [--corpus-folder DIR] [--batches 4] [--batch 20] [--seed 0] [--pad-to 111]

Loads an MGCA model pretrained by this harness (default: the first ``$MEDVLP_HOME/models/mgca/*/model.ckpt``) in
evaluation mode, draws ``--batches`` disjoint batches of ``--batch`` held-out pairs (the validation and test splits
of the MIMIC-CXR corpus, never trained on; the synthetic corpus has 42 + 40) (default folder: the synthetic
``$MEDVLP_HOME/synthetic/v2-seed0/mimic-cxr-jpg``; pairs in a fixed random order from ``--seed``, centre crops as
in pretraining's validation) and, without gradients, computes MGCA's word loss (each word attends
over its image's patches, then the words are matched against their attended contexts) and patch loss (each patch
attends over its report's words, then the patches are matched) with the module's own functions
(``aggregate_word_pieces``, ``local_text_head``, ``token_alignment_loss``) under four conventions:

* ``ours``: the first [SEP] ends the report (it is no word); words are zero-padded to the batch's longest report
  and the padded words are masked (no attention mass, no matching candidate, weight 0). This is what
  ``MGCAModule.compute_losses`` computes.
* ``+sep``: as ``ours``, but [SEP] stays a word, the report's last (``is_separator`` all False), with its own
  [CLS]-attention importance.
* ``+pad``: as ``ours`` ([SEP] dropped), but every report is padded to ``--pad-to`` words with one shared vector
  p = normalise(local_text_head(0)) (the projection of a zero token state; the same vector at every padded
  position), and the padding is not masked: patches attend to it and it is a candidate of both matchings. Padded
  words have importance 0, so their weight after clipping is 0 (they are never a query of the word loss).
* ``release``: both changes (``+sep`` and ``+pad``), the convention of the authors' code release.

The token losses are per-sample terms averaged over the batch (each report is matched against its own image's
patches only, and the projection heads use their running BatchNorm statistics in evaluation mode), so the batch
size does not change what a pair contributes. Reports with more than ``--pad-to`` words keep their first
``--pad-to`` words in the padded conventions. Prints, per convention, the mean over batches of the word loss and
the patch loss (nats) with their standard deviation over batches, and the mean and standard deviation of the
per-batch difference (convention - ours).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from medvlp_bench.data.image_cache import prepare_images, prepared_side
from medvlp_bench.protocols.feature_cache import normalise
from medvlp_bench.registry import load_registry
from medvlp_bench_plugins.datasets.mimic_cxr_corpus import load_corpus
from medvlp_bench_plugins.methods.image_text_checkpoints import text_encoder_builder
from medvlp_bench_plugins.methods.mgca_losses import aggregate_word_pieces, token_alignment_loss
from medvlp_bench_plugins.methods.mgca_module import MGCAModule
from medvlp_bench_plugins.methods.vlp_method import vlp_image_encoder

CONVENTIONS = ("ours", "+sep", "+pad", "release")


def pad_words(embeddings: torch.Tensor, mask: torch.Tensor, importance: torch.Tensor, padding: torch.Tensor,
              length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Words (B, W, D) with mask and importance -> (B, length, D): real words first, then the shared ``padding``
    vector (D,) at every other position; the returned mask is all True (padding unmasked), importance 0 there."""
    batch, words, dim = embeddings.shape
    keep = min(words, length)
    real = mask[:, :keep]
    out = padding.expand(batch, length, dim).clone()
    out[:, :keep][real] = embeddings[:, :keep][real]
    out_importance = importance.new_zeros(batch, length)
    out_importance[:, :keep] = importance[:, :keep].masked_fill(~real, 0.0)
    return out, torch.ones(batch, length, dtype=torch.bool, device=mask.device), out_importance


@torch.no_grad()
def token_losses(module: MGCAModule, images: torch.Tensor, texts: list[str], pad_to: int) -> dict[str, tuple]:
    """(word loss, patch loss) per convention for one batch."""
    options = module.options
    _, image_local = module.image_features(images)
    patches = F.normalize(module.local_image_head(image_local), dim=-1)
    text = module.encode_text(texts)
    tokens = text.tokens
    hidden = text.features.tokens
    padding = F.normalize(module.local_text_head(hidden.new_zeros(1, 1, hidden.shape[-1])), dim=-1)[0, 0]
    results = {}
    for name in CONVENTIONS:
        keep_sep = name in ("+sep", "release")
        separator = torch.zeros_like(tokens["is_continuation"]) if keep_sep else None
        words = aggregate_word_pieces(
            hidden, tokens["is_continuation"], tokens["attention_mask"], text.features.cls_attention,
            is_separator=separator, reference_shifted_importance=options["reference_shifted_importance"],
        )
        embeddings = F.normalize(module.local_text_head(words.embeddings, words.mask), dim=-1)
        mask, importance = words.mask, words.importance
        if name in ("+pad", "release"):
            embeddings, mask, importance = pad_words(embeddings, mask, importance, padding, pad_to)
        local = token_alignment_loss(
            embeddings, mask, importance, patches, None, options["local_temperature"],
            quantiles=tuple(options["importance_quantiles"]),
            normalise_patch_context=options["normalise_patch_context"],
            reference_unmasked_word_candidates=options["reference_unmasked_word_candidates"],
        )
        results[name] = (float(local.word_loss), float(local.patch_loss))
    return results


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):8.4f} +- {spread:.4f}"


def main() -> None:
    home = Path(os.environ.get("MEDVLP_HOME", "~/.medvlp")).expanduser()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--corpus-folder", type=Path, default=home / "synthetic" / "v2-seed0" / "mimic-cxr-jpg")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pad-to", type=int, default=111)
    args = parser.parse_args()
    checkpoint = args.checkpoint or min((home / "models" / "mgca").glob("*/model.ckpt"))
    registry = load_registry()
    module = MGCAModule.restore(
        checkpoint,
        lambda name: vlp_image_encoder(lambda n: registry.get("encoder", n).build(), name),
        lambda name, vocabulary, corpus: text_encoder_builder(name)(vocabulary, corpus),
    ).eval()
    torch.manual_seed(args.seed)

    corpus = load_corpus(args.corpus_folder)
    val = pd.concat([corpus.val, corpus.test], ignore_index=True)
    encoder = module.img_encoder_q
    with tempfile.TemporaryDirectory() as cache:
        images = np.array(prepare_images(val, prepared_side(encoder.input_size), Path(cache), label="corpus val")[0])
    order = np.random.default_rng(args.seed).permutation(len(val))
    side, size = images.shape[-1], encoder.input_size
    top = (side - size) // 2
    per_batch, most_words = [], 0
    for b in range(args.batches):
        rows = order[b * args.batch : (b + 1) * args.batch]
        if len(rows) < args.batch:
            break
        crops = torch.from_numpy(images[rows, top : top + size, top : top + size])
        batch_images = normalise(crops, encoder.mean, encoder.std)
        texts = [val["text"].iloc[i] for i in rows]
        per_batch.append(token_losses(module, batch_images, texts, args.pad_to))
        tokens = module.text_encoder_q.tokenize(texts)
        words = aggregate_word_pieces(tokens["input_ids"][..., None].float(), tokens["is_continuation"],
                                      tokens["attention_mask"])
        most_words = max(most_words, int(words.mask.sum(dim=1).max()))

    print(f"checkpoint {checkpoint}")
    print(f"{len(per_batch)} disjoint batches of {args.batch} held-out (val + test) pairs (seed {args.seed}) of "
          f"{len(val)}; longest report {most_words} words without [SEP]; padded conventions pad to {args.pad_to} "
          f"words; mean +- std over batches (nats)")
    print(f"{'convention':10s} {'word loss':>18s} {'patch loss':>18s} {'word - ours':>18s} {'patch - ours':>18s}")
    for name in CONVENTIONS:
        word = [r[name][0] for r in per_batch]
        patch = [r[name][1] for r in per_batch]
        word_diff = [r[name][0] - r["ours"][0] for r in per_batch]
        patch_diff = [r[name][1] - r["ours"][1] for r in per_batch]
        print(f"{name:10s} {mean_std(word):>18s} {mean_std(patch):>18s} {mean_std(word_diff):>18s} "
              f"{mean_std(patch_diff):>18s}")


if __name__ == "__main__":
    main()
