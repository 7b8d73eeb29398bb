"""Performance benchmark: one pretraining step (forward + backward + AdamW update) of MGCA, ConVIRT and GLoRIA.

    python benchmarks/perf/pretraining_step.py [--image-encoder resnet18] [--text-encoder tiny_bert] [--batch 32]
                                          [--device cpu|cuda] [--steps 5] [--threads N]

Builds each method's training module on the named encoders (from the registry; ``tiny_bert`` learns its
vocabulary from synthetic reports), feeds a fixed batch of random images and synthetic report texts (the
pretraining text: impression + findings), and times ``--steps`` training steps after one warm-up step
(tokenisation included, data loading excluded). The methods take turns step by step, so a machine whose load
changes during the run slows them alike. Prints, per method, the median step time and images/s, then the ratio
of MGCA's step time to ConVIRT's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from medvlp_bench_plugins import synthetic
from medvlp_bench.registry import load_registry
from medvlp_bench_plugins.datasets.mimic_cxr_reports import report_text_for_training
from medvlp_bench_plugins.methods.convirt_module import ConVIRTModule
from medvlp_bench_plugins.methods.gloria_module import GloriaModule
from medvlp_bench_plugins.methods.mgca_module import MGCAModule

METHODS = {"mgca": MGCAModule, "convirt": ConVIRTModule, "gloria": GloriaModule}


def report_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` synthetic reports, reduced to the text the corpus pretrains on."""
    rng = np.random.default_rng(seed)
    texts = []
    while len(texts) < count:
        study = synthetic.sample_study(rng)
        text = report_text_for_training(synthetic.write_report(study.findings, rng, view=study.view).text)
        if text:
            texts.append(text)
    return texts


class StepTimer:
    """Times training steps (zero_grad, losses, backward, AdamW step) of one module on a fixed batch."""

    def __init__(self, module, images: torch.Tensor, texts: list[str]):
        self.module, self.images, self.texts = module.train(), images, texts
        self.optimizer = torch.optim.AdamW(module.parameters(), lr=2e-5, weight_decay=0.05)
        self.durations: list[float] = []

    def step(self) -> float:
        if self.images.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        self.module.compute_losses(self.images, self.texts)["loss"].backward()
        self.optimizer.step()
        if self.images.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-encoder", default="resnet18")
    parser.add_argument("--text-encoder", default="tiny_bert")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = load_registry()
    image_spec = registry.get("encoder", args.image_encoder)
    text_spec = registry.get("text_encoder", args.text_encoder)
    corpus = report_texts(500)
    texts = corpus[: args.batch]
    torch.manual_seed(0)
    timers = {}
    for name, module_class in METHODS.items():
        image_encoder = image_spec.build()
        images = torch.randn(args.batch, 3, image_encoder.input_size, image_encoder.input_size, device=args.device)
        module = module_class(image_encoder, text_spec.build(None, corpus), image_encoder_name=args.image_encoder,
                              text_encoder_name=args.text_encoder).to(args.device)
        timers[name] = StepTimer(module, images, texts)
        timers[name].step()
    for _ in range(args.steps):
        for timer in timers.values():
            timer.durations.append(timer.step())
    seconds = {name: statistics.median(timer.durations) for name, timer in timers.items()}
    for name, value in seconds.items():
        print(f"{name:8s} {value:7.3f} s/step  {args.batch / value:7.1f} images/s "
              f"({args.image_encoder}@{image_encoder.input_size} + {args.text_encoder}, batch {args.batch}, "
              f"{args.device}, median of {args.steps})")
    print(f"MGCA / ConVIRT step time: {seconds['mgca'] / seconds['convirt']:.2f}x")


if __name__ == "__main__":
    main()
