"""Shared set-up of the vision-language method tests: tiny encoders, a tiny image-report corpus, pretraining through
the pretraining service (as ``medvlp-bench pretrain`` runs it) and method contexts for loading checkpoints.

Sizes are chosen for speed: ResNet-18 at 64 px (layer3 = 4x4 = 16 local tokens), a 2-layer 64-wide BERT whose
vocabulary is learnt from the corpus texts, 8 training and 4 validation pairs, batch 4 (2 steps per epoch), one
CPU thread (the autouse fixture :func:`one_cpu_thread`, active in every test module that imports it).
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from medvlp_bench.api import ImageEncoderSpec, MethodContext, MethodSpec, SplitTables, TextEncoderSpec
from medvlp_bench.data.splits import split_hash
from medvlp_bench.pretraining.model_store import pretrain_key
from medvlp_bench.pretraining.service import PretrainPlan, PretrainRequest, execute, resolve_config
from medvlp_bench.registry import Origin, Registry
from medvlp_bench_plugins.encoders.bert_text import build_tiny_bert
from medvlp_bench_plugins.encoders.torchvision_resnet import ResNetEncoder

IMAGE_SIZE = 64
BATCH = 4
REPORTS = (
    "Small left pleural effusion. No pneumothorax.",
    "Moderate cardiomegaly with mild pulmonary edema.",
    "The lungs are clear. No consolidation.",
    "Right upper zone consolidation, possibly pneumonia.",
    "Large right pneumothorax with a visible pleural line.",
    "Plate-like atelectasis at the left base. Heart size is normal.",
    "Bilateral peripheral ground-glass opacities.",
    "No acute cardiopulmonary process.",
)


@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread():
    """Run a test module's steps on one CPU thread: on a shared, loaded machine two spinning threads make these
    small batches several times slower. The previous setting is restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


_PRISTINE: dict[str, ResNetEncoder] = {}


def tiny_image_encoder(name: str = "resnet18") -> ResNetEncoder:
    """A fresh copy of one randomly initialised encoder per architecture (copying is faster than building)."""
    if name not in _PRISTINE:
        _PRISTINE[name] = ResNetEncoder(name, IMAGE_SIZE)
    return copy.deepcopy(_PRISTINE[name])


def tiny_text_encoder(vocabulary=None, corpus=None):
    return build_tiny_bert(vocabulary, corpus, layers=2, hidden=64, heads=2)


def texts(count: int) -> list[str]:
    return [REPORTS[index % len(REPORTS)] for index in range(count)]


def image_batch(count: int = BATCH, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))


def write_corpus(folder: Path, n_train: int = 8, n_val: int = 4) -> SplitTables:
    """PNG images (80 px, random texture) paired with report texts, as train / val / (empty) test tables."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for index in range(n_train + n_val):
        path = folder / f"image{index:02d}.png"
        Image.fromarray(rng.integers(0, 256, size=(80, 80), dtype=np.uint8)).save(path)
        rows.append({"sample_id": f"s{index:02d}", "image_path": str(path), "source_file": "pairs.csv",
                     "source_row": index + 2, "text": REPORTS[index % len(REPORTS)]})
    table = pd.DataFrame(rows)
    return SplitTables(train=table.iloc[:n_train].reset_index(drop=True),
                       val=table.iloc[n_train:].reset_index(drop=True), test=table.iloc[:0])


def registry() -> Registry:
    """A registry holding the tiny encoders under the names the synthetic profile asks for."""
    tiny = Registry()
    origin = Origin("built-in", "", "tests")
    tiny.add("encoder", ImageEncoderSpec("resnet18_64", "ResNet-18 at 64 px", build=tiny_image_encoder), origin)
    tiny.add("text_encoder", TextEncoderSpec("tiny_bert", "2-layer 64-wide BERT", build=tiny_text_encoder), origin)
    return tiny


def pretrain(method: MethodSpec, corpus: SplitTables, out_dir: Path, *, max_epochs: int = 1, resume: bool = False,
             options: Optional[dict] = None) -> Path:
    """Run ``method``'s pretraining through the pretraining service into ``out_dir``; return model.ckpt."""
    request = PretrainRequest(method=method.name, out_dir=out_dir, max_epochs=max_epochs, batch_size=BATCH,
                              resume=resume, options=options or {}, accelerator="cpu")
    config = resolve_config(method, SimpleNamespace(name="tiny_corpus"), request, split_hash(corpus))
    return execute(registry(), PretrainPlan(request, method, corpus, config, pretrain_key(config)))


def method_context(checkpoint: Optional[Path], home: Path) -> MethodContext:
    return MethodContext(encoder="resnet18", build_encoder=tiny_image_encoder, load_imagenet=lambda name, encoder: None,
                         checkpoint=checkpoint, seed=0, data_source="synthetic", home=home)


def checkpoint_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def encoder_state_in(state_dict: dict, prefix: str = "img_encoder_q.") -> dict:
    """The image encoder's entries of a module state dict, keyed as in the encoder."""
    return {key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)}


def perturbed_state(encoder: torch.nn.Module) -> dict:
    """The encoder's state with every float tensor shifted by 1: weights no fresh encoder has."""
    return {key: value + 1 if value.is_floating_point() else value for key, value in encoder.state_dict().items()}


def grad_report(module: torch.nn.Module, prefix: str) -> tuple[bool, bool]:
    """(some parameter under ``prefix`` has a non-zero gradient, every gradient under it is finite)."""
    grads = [p.grad for name, p in module.named_parameters() if name.startswith(prefix) and p.grad is not None]
    return any(bool(g.abs().sum() > 0) for g in grads), all(bool(torch.isfinite(g).all()) for g in grads)
