"""The example methods' training modules (imported only when pretraining: they need Lightning).

* :class:`ContrastiveModule` (``example_clip``): image global feature and report [CLS] state, each through a linear
  projection to ``embedding_dim`` and L2-normalised (v, t); loss = symmetric InfoNCE
  ``(CE(v t^T / temperature, I) + CE(t v^T / temperature, I)) / 2``. Its checkpoint keeps the image encoder under
  ``visual.`` (the method's checkpoint layout).
* :class:`RotationModule` (``example_rotation``, image-only): each image is rotated by k * 90 degrees (k drawn per
  image) and a linear head on the global feature predicts k; loss = cross-entropy. Its checkpoint keeps the image
  encoder under ``net.trunk.`` and the head under ``net.head.``.

Batches come from ``medvlp_bench.api.ImageTextDataModule``: ``(images (B, 3, s, s), list of B report texts)``.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from medvlp_bench.api import ImageTextDataModule, PretrainContext, fit_pretraining


class ContrastiveModule(L.LightningModule):
    def __init__(self, visual, text, options):
        super().__init__()
        self.visual, self.text, self.options = visual, text, dict(options)
        self.image_projection = nn.Linear(visual.global_dim, options["embedding_dim"])
        self.text_projection = nn.Linear(text.hidden_dim, options["embedding_dim"])

    def training_step(self, batch, batch_index):
        images, texts = batch
        tokens = {key: value.to(self.device) for key, value in self.text.tokenize(texts).items()}
        v = F.normalize(self.image_projection(self.visual.global_features(images)), dim=-1)
        t = F.normalize(self.text_projection(self.text(tokens["input_ids"], tokens["attention_mask"]).cls), dim=-1)
        logits = v @ t.T / self.options["temperature"]
        target = torch.arange(len(images), device=self.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        self.log("train/loss", loss, batch_size=len(images))
        return loss

    def validation_step(self, batch, batch_index):
        pass

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.options["learning_rate"])


class RotationModule(L.LightningModule):
    def __init__(self, trunk, options):
        super().__init__()
        self.options = dict(options)
        self.net = nn.ModuleDict({"trunk": trunk, "head": nn.Linear(trunk.global_dim, 4)})

    def training_step(self, batch, batch_index):
        images, _ = batch
        turns = torch.randint(0, 4, (len(images),), device=self.device)
        rotated = torch.stack([torch.rot90(image, int(k), dims=(1, 2)) for image, k in zip(images, turns)])
        loss = F.cross_entropy(self.net["head"](self.net["trunk"].global_features(rotated)), turns)
        self.log("train/loss", loss, batch_size=len(images))
        return loss

    def validation_step(self, batch, batch_index):
        pass

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.options["learning_rate"])


def _fit(module: L.LightningModule, encoder, context: PretrainContext) -> Path:
    data = ImageTextDataModule(context.corpus, encoder, context.image_cache_root,
                               batch_size=context.trainer["batch_size"], seed=context.seed)
    return fit_pretraining(module, data, out_dir=context.out_dir, trainer_settings=context.trainer,
                           resume=context.resume, seed=context.seed)


def pretrain_contrastive(context: PretrainContext) -> Path:
    torch.manual_seed(context.seed)
    visual = context.build_image_encoder(context.image_encoder)
    text = context.build_text_encoder(context.text_encoder, None, list(context.corpus.train["text"]))
    return _fit(ContrastiveModule(visual, text, context.options), visual, context)


def pretrain_rotation(context: PretrainContext) -> Path:
    torch.manual_seed(context.seed)
    trunk = context.build_image_encoder(context.image_encoder)
    return _fit(RotationModule(trunk, context.options), trunk, context)
