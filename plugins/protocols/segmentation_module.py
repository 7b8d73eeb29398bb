"""The Lightning module that trains a :class:`Segmenter` with the reference loss and reports per-image Dice.

A batch is ``(images (B, 1, S, S) uint8, masks (B, 1, S, S) float 0/1, *maps)``. Images are normalised
per channel as ``(v / 255 - mean_c) / std_c`` (three identical channels); with cached ``maps`` the logits come from
``segmenter.decode(maps, x)``, otherwise from ``segmenter(x)``. Loss: :func:`segmentation_loss`. Validation logs
``val_loss`` and ``val_dice`` (mean per-image Dice, :class:`MeanImageDice`); ``predict_step`` returns, on the CPU,
per-image Dice scores (B,) float64, ground-truth non-emptiness flags (B,) bool and predicted non-emptiness flags
(B,) bool (any pixel with p > 0.5). Optimiser: AdamW over the trainable
parameters; ``lr_schedule`` ``constant`` keeps the learning rate (the reference), ``cosine`` anneals it per step,
``lr_t = lr * (1 + cos(pi * t / T)) / 2`` over the fit's T = max_epochs x batches per epoch steps.
"""

from __future__ import annotations

from typing import Sequence

import lightning as L
import torch

from medvlp_bench.api import normalise
from medvlp_bench_plugins.protocols.dice import MeanImageDice, dice_from_logits
from medvlp_bench_plugins.protocols.segmentation_losses import segmentation_loss
from medvlp_bench_plugins.protocols.segmentation_models import Segmenter


class SegmentationModule(L.LightningModule):
    """A :class:`Segmenter` with the encoder's normalisation, trained and evaluated as the module docstring says."""

    def __init__(self, segmenter: Segmenter, mean: Sequence[float], std: Sequence[float], lr: float,
                 weight_decay: float, lr_schedule: str = "constant"):
        super().__init__()
        self.save_hyperparameters(ignore=["segmenter"])
        self.segmenter = segmenter
        self.mean, self.std = tuple(mean), tuple(std)
        self.val_dice = MeanImageDice()

    def logits(self, batch) -> torch.Tensor:
        images, _, *maps = batch
        x = normalise(images[:, 0], self.mean, self.std)
        if maps:
            return self.segmenter.decode([level.float() for level in maps], x)
        return self.segmenter(x)

    def training_step(self, batch, batch_idx):
        loss = segmentation_loss(self.logits(batch), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch, batch_idx):
        logits, masks = self.logits(batch), batch[1]
        self.val_dice.update(logits, masks)
        self.log("val_loss", segmentation_loss(logits, masks), on_step=False, on_epoch=True, batch_size=len(masks))
        self.log("val_dice", self.val_dice, on_step=False, on_epoch=True, prog_bar=True)

    def predict_step(self, batch, batch_idx):
        logits, masks = self.logits(batch), batch[1]
        return (dice_from_logits(logits, masks).cpu(), (masks.flatten(1).amax(1) > 0.5).cpu(),
                (logits.flatten(1) > 0).any(1).cpu())

    def configure_optimizers(self):
        trainable = [parameter for parameter in self.parameters() if parameter.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        steps = self.trainer.estimated_stepping_batches
        annealing = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": annealing, "interval": "step"}}
