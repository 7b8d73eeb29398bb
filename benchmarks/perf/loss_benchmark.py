"""Performance benchmark: batched MGCA and GLoRIA local losses against per-sample loops.

    python benchmarks/perf/loss_benchmark.py [--batch 72] [--device cpu|cuda] [--image-encoder resnet50|vit]
                                        [--repeats 5] [--threads N] [--skip-gloria]

Shapes follow MGCA's pretraining: a batch of 72 reports of up to 112 word-piece tokens (about 60 whole words
each), 361 patch tokens (ResNet-50 layer3, 19x19) or 196 (ViT-B/16), embedding width 128.

Each line runs a batched function of ``medvlp_bench_plugins.methods`` and a straightforward loop written here,
asserts that their outputs and input gradients agree to 1e-5, and prints the median wall time of each over
``--repeats`` forward+backward runs (after one warm-up) and the loop / batched ratio:

* MGCA word-piece aggregation: cumsum + index_add against walking each report token by token (as Ref does).
* MGCA quantile clipping: nanquantile per row against torch.quantile one sample at a time (as Ref does).
* MGCA token-wise alignment: bmm over the batch against one sample at a time.
* MGCA local, all three stages: against the per-sample loop of everything, and against "Ref-style" loops
  (loops where Ref loops: token walk and quantiles; the alignment batched).
* GLoRIA local: all caption-image pairs at once against the authors' loop over captions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from medvlp_bench_plugins.methods.gloria_losses import gloria_local_loss
from medvlp_bench_plugins.methods.mgca_losses import (
    aggregate_word_pieces,
    clip_and_normalise_importance,
    patch_to_word_alignment_loss,
    token_alignment_loss,
    word_to_patch_alignment_loss,
)

TEMPERATURE = 0.1
QUANTILES = (0.1, 0.9)
TOKENS, DIM = 112, 128
PATCHES = {"resnet50": 361, "vit": 196}
DIFFERENTIABLE = ("token_states", "patch_features", "word_embeddings")
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}

Inputs = dict[str, torch.Tensor]
#: A stage: (inputs, vit) -> outputs; outputs[0] is the scalar that is backpropagated when it has a graph.
Stage = Callable[[Inputs, bool], tuple[torch.Tensor, ...]]


def make_inputs(batch: int, num_patches: int, device: torch.device, seed: int = 0) -> Inputs:
    """Random report tokenisations (40 to 112 tokens, a quarter of the pieces continue a word), token states,
    [CLS]-attention importance, patch tokens, ViT-style patch importance, and the whole words that the
    batched aggregation makes of them (inputs of the later stages)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(40, TOKENS + 1, (batch,), generator=generator)
    attention_mask = (torch.arange(TOKENS)[None, :] < lengths[:, None]).long()
    is_continuation = torch.rand(batch, TOKENS, generator=generator) < 0.25
    is_continuation[:, :2] = False
    importance = torch.rand(batch, TOKENS, generator=generator) * attention_mask
    inputs = {
        "token_states": torch.randn(batch, TOKENS, DIM, generator=generator),
        "is_continuation": is_continuation,
        "attention_mask": attention_mask,
        "token_importance": importance / importance.sum(dim=1, keepdim=True),
        "patch_features": torch.randn(batch, num_patches, DIM, generator=generator),
        "patch_importance": torch.softmax(torch.randn(batch, num_patches, generator=generator), dim=1),
    }
    words = aggregate_word_pieces(
        inputs["token_states"], is_continuation, attention_mask, inputs["token_importance"]
    )
    inputs.update(
        word_embeddings=F.normalize(words.embeddings, dim=-1), word_mask=words.mask, word_importance=words.importance
    )
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def uniform_patch_weights(inputs: Inputs) -> torch.Tensor:
    batch, num_patches, _ = inputs["patch_features"].shape
    return torch.full((batch, num_patches), 1.0 / num_patches, device=inputs["patch_features"].device)


# Batched stages (the library)


def batched_aggregation(inputs: Inputs, vit: bool):
    words = aggregate_word_pieces(
        inputs["token_states"], inputs["is_continuation"], inputs["attention_mask"], inputs["token_importance"]
    )
    return (words.embeddings.square().sum() / 2, words.embeddings, words.importance, words.mask)


def batched_clipping(inputs: Inputs, vit: bool):
    word_weights = clip_and_normalise_importance(inputs["word_importance"], inputs["word_mask"], QUANTILES)
    patch_weights = clip_and_normalise_importance(inputs["patch_importance"], None, QUANTILES)
    return (word_weights.sum(), word_weights, patch_weights)


def batched_alignment(inputs: Inputs, vit: bool):
    result = token_alignment_loss(
        inputs["word_embeddings"],
        inputs["word_mask"],
        inputs["word_importance"],
        F.normalize(inputs["patch_features"], dim=-1),
        inputs["patch_importance"] if vit else None,
        TEMPERATURE,
        quantiles=QUANTILES,
        normalise_patch_context=not vit,
    )
    return (result.loss,)


def batched_mgca_local(inputs: Inputs, vit: bool):
    words = aggregate_word_pieces(
        inputs["token_states"], inputs["is_continuation"], inputs["attention_mask"], inputs["token_importance"]
    )
    stage_inputs = dict(inputs, word_embeddings=F.normalize(words.embeddings, dim=-1), word_mask=words.mask,
                        word_importance=words.importance)
    return batched_alignment(stage_inputs, vit)


def batched_gloria_local(inputs: Inputs, vit: bool):
    result = gloria_local_loss(inputs["patch_features"], inputs["word_embeddings"], inputs["word_mask"])
    return (result.loss,)


# Loops


def walk_tokens(states: torch.Tensor, flags: torch.Tensor, mask: torch.Tensor, importance: torch.Tensor):
    """One report, token by token: skip [CLS], stop at [SEP] (the last attended token), add continuation pieces
    to the word before. Returns (words (W, D), importance (W,))."""
    separator = int(mask.sum()) - 1
    words, weights = [], []
    for t in range(1, separator):
        if bool(flags[t]):
            if words:
                words[-1] = words[-1] + states[t]
                weights[-1] = weights[-1] + importance[t]
        else:
            words.append(states[t])
            weights.append(importance[t])
    return torch.stack(words), torch.stack(weights)


def walk_all_reports(inputs: Inputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [
        walk_tokens(inputs["token_states"][b], inputs["is_continuation"][b], inputs["attention_mask"][b],
                    inputs["token_importance"][b])
        for b in range(inputs["token_states"].shape[0])
    ]


def pad_words(walked: list[tuple[torch.Tensor, torch.Tensor]]):
    """Stack per-report words and importance, zero-padded to the longest report; also the word mask."""
    max_words = max(len(words) for words, _ in walked)
    words = torch.stack([F.pad(words, (0, 0, 0, max_words - len(words))) for words, _ in walked])
    importance = torch.stack([F.pad(weights, (0, max_words - len(weights))) for _, weights in walked])
    mask = torch.stack([torch.arange(max_words, device=words.device) < len(weights) for _, weights in walked])
    return words, importance, mask


def clip_one_sample(importance: torch.Tensor) -> torch.Tensor:
    """One sample's non-zero importance clipped to its [10th, 90th] percentiles, divided by the sum."""
    importance = importance.detach().clone()
    nonzero = importance != 0
    low, high = torch.quantile(importance[nonzero], torch.tensor(QUANTILES, device=importance.device))
    importance[nonzero] = importance[nonzero].clip(low, high)
    return importance / importance.sum()


def matching_loss_one_sample(similarity: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    targets = torch.arange(similarity.shape[0], device=similarity.device)
    row_loss = F.cross_entropy(similarity, targets, reduction="none")
    column_loss = F.cross_entropy(similarity.T, targets, reduction="none")
    return (weights * (row_loss + column_loss) / 2).sum()


def align_one_sample(words, word_weights, patches, patch_weights, vit: bool) -> torch.Tensor:
    """Word side + patch side of one sample; ``words`` holds only its real words."""
    word_context = F.normalize(torch.softmax(words @ patches.T / TEMPERATURE, dim=1) @ patches, dim=-1)
    word_loss = matching_loss_one_sample(words @ word_context.T / TEMPERATURE, word_weights)
    patch_context = torch.softmax(patches @ words.T / TEMPERATURE, dim=1) @ words
    if not vit:
        patch_context = F.normalize(patch_context, dim=-1)
    return word_loss + matching_loss_one_sample(patches @ patch_context.T / TEMPERATURE, patch_weights)


def loop_aggregation(inputs: Inputs, vit: bool):
    words, importance, mask = pad_words(walk_all_reports(inputs))
    return (words.square().sum() / 2, words, importance, mask)


def loop_clipping(inputs: Inputs, vit: bool):
    word_importance, word_mask = inputs["word_importance"], inputs["word_mask"]
    word_weights = torch.zeros_like(word_importance)
    for b in range(word_importance.shape[0]):
        word_weights[b, word_mask[b]] = clip_one_sample(word_importance[b, word_mask[b]])
    patch_weights = torch.stack([clip_one_sample(row) for row in inputs["patch_importance"]])
    return (word_weights.sum(), word_weights, patch_weights)


def loop_alignment(inputs: Inputs, vit: bool):
    batch = inputs["word_embeddings"].shape[0]
    total = 0.0
    for b in range(batch):
        real = inputs["word_mask"][b]
        patch_weights = clip_one_sample(inputs["patch_importance"][b]) if vit else uniform_patch_weights(inputs)[b]
        total = total + align_one_sample(
            inputs["word_embeddings"][b, real], clip_one_sample(inputs["word_importance"][b, real]),
            F.normalize(inputs["patch_features"][b], dim=-1), patch_weights, vit,
        )
    return (total / batch,)


def loop_mgca_local(inputs: Inputs, vit: bool):
    """Everything one report at a time."""
    batch = inputs["token_states"].shape[0]
    total = 0.0
    for b in range(batch):
        words, importance = walk_tokens(inputs["token_states"][b], inputs["is_continuation"][b],
                                        inputs["attention_mask"][b], inputs["token_importance"][b])
        patch_weights = clip_one_sample(inputs["patch_importance"][b]) if vit else uniform_patch_weights(inputs)[b]
        total = total + align_one_sample(
            F.normalize(words, dim=-1), clip_one_sample(importance),
            F.normalize(inputs["patch_features"][b], dim=-1), patch_weights, vit,
        )
    return (total / batch,)


def ref_style_mgca_local(inputs: Inputs, vit: bool):
    """Loops where the reference code loops (token walk, per-sample quantiles), the alignment batched."""
    words, importance, mask = pad_words(walk_all_reports(inputs))
    word_weights = torch.stack([F.pad(clip_one_sample(row[real]), (0, len(row) - int(real.sum())))
                                for row, real in zip(importance, mask)])
    if vit:
        patch_weights = torch.stack([clip_one_sample(row) for row in inputs["patch_importance"]])
    else:
        patch_weights = uniform_patch_weights(inputs)
    words = F.normalize(words, dim=-1)
    patches = F.normalize(inputs["patch_features"], dim=-1)
    word_loss, _ = word_to_patch_alignment_loss(words, mask, word_weights, patches, TEMPERATURE)
    patch_loss, _ = patch_to_word_alignment_loss(patches, patch_weights, words, mask, TEMPERATURE,
                                                 normalise_patch_context=not vit)
    return (word_loss + patch_loss,)


def loop_gloria_local(inputs: Inputs, vit: bool):
    """The authors' structure: one caption at a time against all images."""
    words, mask, regions = inputs["word_embeddings"], inputs["word_mask"], inputs["patch_features"]
    columns = []
    for c in range(words.shape[0]):
        caption = words[c, mask[c]]
        dots = torch.einsum("wd,bnd->bwn", caption, regions)
        attention = torch.softmax(4.0 * torch.softmax(dots, dim=1), dim=2)
        context = torch.bmm(attention, regions)
        cosine = (caption * context).sum(-1) / (caption.norm(dim=-1) * context.norm(dim=-1)).clamp(min=1e-8)
        columns.append(torch.log(torch.exp(5.0 * cosine).sum(dim=1)))
    scores = 10.0 * torch.stack(columns, dim=1)
    targets = torch.arange(scores.shape[0], device=scores.device)
    return (F.cross_entropy(scores, targets) + F.cross_entropy(scores.T, targets),)


# Measurement


def forward_backward(stage: Stage, inputs: Inputs, vit: bool) -> dict[str, torch.Tensor]:
    """The stage's outputs and the gradients of its first output with respect to the differentiable inputs."""
    leaves = {name: tensor.detach().clone().requires_grad_(name in DIFFERENTIABLE) for name, tensor in inputs.items()}
    outputs = stage(leaves, vit)
    if outputs[0].requires_grad:
        outputs[0].backward()
    results = {f"output {i}": output.detach() for i, output in enumerate(outputs)}
    for name in DIFFERENTIABLE:
        if leaves[name].grad is not None:
            results[f"gradient of {name}"] = leaves[name].grad
    return results


def median_seconds(stage: Stage, inputs: Inputs, vit: bool, repeats: int) -> float:
    device = inputs["token_states"].device
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        forward_backward(stage, inputs, vit)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(name: str, batched: Stage, loop: Stage, inputs: Inputs, vit: bool, repeats: int) -> float:
    """Assert equal outputs and gradients, time both, print and return loop time / batched time."""
    batched_results = forward_backward(batched, inputs, vit)
    loop_results = forward_backward(loop, inputs, vit)
    assert batched_results.keys() == loop_results.keys(), (name, batched_results.keys(), loop_results.keys())
    for what, value in batched_results.items():
        torch.testing.assert_close(value, loop_results[what], **TOLERANCE, msg=lambda m: f"{name}, {what}: {m}")
    batched_time = median_seconds(batched, inputs, vit, repeats)
    loop_time = median_seconds(loop, inputs, vit, repeats)
    ratio = loop_time / batched_time
    print(f"{name:<46} batched {1e3 * batched_time:9.1f} ms   loop {1e3 * loop_time:9.1f} ms   "
          f"loop/batched {ratio:7.1f}x")
    return ratio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=72)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--image-encoder", choices=sorted(PATCHES), default="resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--skip-gloria", action="store_true", help="time the MGCA losses only")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    vit = args.image_encoder == "vit"
    inputs = make_inputs(args.batch, PATCHES[args.image_encoder], device)
    word_counts = inputs["word_mask"].sum(dim=1).float()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; batch {args.batch}, "
          f"{PATCHES[args.image_encoder]} patches ({args.image_encoder}), {TOKENS} tokens, "
          f"{word_counts.mean():.0f} words on average (max {int(word_counts.max())}), width {DIM}; "
          f"median of {args.repeats} forward+backward runs")
    comparisons = [
        ("MGCA word-piece aggregation", batched_aggregation, loop_aggregation),
        ("MGCA quantile clipping (words and patches)", batched_clipping, loop_clipping),
        ("MGCA token-wise alignment", batched_alignment, loop_alignment),
        ("MGCA local, all stages, vs per-sample loop", batched_mgca_local, loop_mgca_local),
        ("MGCA local, all stages, vs Ref-style loops", batched_mgca_local, ref_style_mgca_local),
    ]
    if not args.skip_gloria:
        comparisons.append(("GLoRIA local vs per-caption loop", batched_gloria_local, loop_gloria_local))
    for name, batched, loop in comparisons:
        compare(name, batched, loop, inputs, vit, args.repeats)


if __name__ == "__main__":
    main()
