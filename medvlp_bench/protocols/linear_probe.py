"""Linear-probe protocol: a frozen image encoder, a linear head trained on its cached global features.

Features: images prepared at ``side = round(input_size * 256 / 224)`` px, centre-cropped to the encoder input
(the reference's evaluation view), encoded once and cached (:mod:`medvlp_bench.protocols.feature_cache`).
Because features are cached, training uses no augmentation (as CLIP_benchmark's linear probe); the reference
code re-runs the encoder on random crops every epoch.

Head: ``Linear(global_dim, C)``. Loss: binary cross-entropy with logits (binary, multilabel; C = number of
labels) or cross-entropy (multiclass). Optimiser AdamW, at most ``max_epochs`` epochs, early stopping on
validation loss (patience ``patience``), and the test metrics come from the checkpoint with the lowest validation
loss. Options (:data:`~medvlp_bench.protocols.builtin.LINEAR_PROBE_OPTIONS`, the reference's defaults): ``lr``
5e-4, ``weight_decay`` 1e-6, ``batch_size`` 48, ``max_epochs`` 50, ``patience`` 10; the training fraction is
``inputs.pct`` (the runner has already subsampled the training split).

Metrics (:mod:`medvlp_bench.protocols.classification_metrics`, from the test logits in float64, rank based,
fractions in [0, 1]): binary -> ``auroc``; multilabel -> ``auroc`` = macro mean of the per-label AUROCs over the
labels with both classes in the test split (a label left out is named in a warning and in the record's
``details["metrics_excluded_labels"]``), plus ``auroc_<label>``; multiclass -> ``accuracy`` (correct / total),
plus ``accuracy_macro`` (balanced accuracy).

Per-sample outputs (:mod:`medvlp_bench.protocols.sample_arrays`, kind ``classification``): the test samples in
table order with their targets and the head's raw logits (``score``, float64), from which the metrics above are
computed.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medvlp_bench.data.image_cache import prepare_images, prepared_side
from medvlp_bench.protocols.builtin import LINEAR_PROBE_OPTIONS
from medvlp_bench.protocols.classification_metrics import ClassificationScores, classification_metrics
from medvlp_bench.protocols.feature_cache import cached_global_features
from medvlp_bench.protocols.head_training import HeadFitSettings, fit_head, seed_head_training
from medvlp_bench.protocols.hparams import resolved_hparams
from medvlp_bench.protocols.sample_arrays import classification_arrays
from medvlp_bench.specs import ProtocolInputs, ProtocolResult, TaskSpec

class LinearHead(L.LightningModule):
    """``Linear(in_dim, outputs)`` trained with BCE-with-logits or cross-entropy (see module docstring)."""

    def __init__(self, in_dim: int, outputs: int, multiclass: bool, lr: float, weight_decay: float):
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(in_dim, outputs)
        self.loss = nn.CrossEntropyLoss() if multiclass else nn.BCEWithLogitsLoss()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def _loss(self, batch) -> torch.Tensor:
        features, targets = batch
        return self.loss(self(features), targets)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch), on_step=False, on_epoch=True, prog_bar=True)

    def predict_step(self, batch, batch_idx):
        return self(batch[0])

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


def targets_of(task: TaskSpec, table) -> torch.Tensor:
    """The target tensor of a sample table: (N,) long for multiclass, (N, C) float otherwise."""
    if task.target == "multiclass":
        return torch.tensor(table["label"].to_numpy(), dtype=torch.long)
    return torch.tensor(table[list(task.label_names)].to_numpy(dtype=np.float32))


def score(task: TaskSpec, logits: torch.Tensor, targets: torch.Tensor) -> ClassificationScores:
    """Metrics of a task from test logits and targets (see module docstring)."""
    return classification_metrics(task.target, task.label_names, logits.double().numpy(), targets.numpy())


def _features(inputs: ProtocolInputs, split: str, table) -> np.ndarray:
    side = prepared_side(inputs.encoder.input_size)
    label = f"{inputs.task.dataset} {split}"
    images, image_key = prepare_images(table, side, Path(inputs.cache_dir) / "images", label=label)
    return cached_global_features(
        inputs.encoder, inputs.encoder_key, images, image_key, Path(inputs.cache_dir) / "features", label=label
    )


def _loader(features: np.ndarray, targets: torch.Tensor, batch_size: int, shuffle: bool) -> DataLoader:
    return DataLoader(TensorDataset(torch.from_numpy(features), targets), batch_size=batch_size, shuffle=shuffle)


def run_linear_probe(inputs: ProtocolInputs) -> ProtocolResult:
    """Train and test a linear probe for ``inputs.task`` (see module docstring)."""
    task, hp = inputs.task, resolved_hparams(LINEAR_PROBE_OPTIONS, inputs, protocol="linear_probe")
    features = {split: _features(inputs, split, table) for split, table in inputs.splits.items()}
    targets = {split: targets_of(task, table) for split, table in inputs.splits.items()}
    seed_head_training(inputs.seed)
    outputs = len(task.label_names)
    head = LinearHead(features["train"].shape[1], outputs, task.target == "multiclass", hp["lr"], hp["weight_decay"])
    settings = HeadFitSettings(name="linear_probe", monitor="val_loss", mode="min", max_epochs=hp["max_epochs"],
                               patience=hp["patience"], work_dir=Path(inputs.work_dir),
                               label=f"{task.name} linear head", shown=("val_loss",))
    batch = hp["batch_size"]
    fitted = fit_head(
        head,
        _loader(features["train"], targets["train"], batch, shuffle=True),
        _loader(features["val"], targets["val"], batch, shuffle=False),
        settings,
    )
    predictions = fitted.trainer.predict(
        head, _loader(features["test"], targets["test"], batch, shuffle=False), ckpt_path=fitted.best_path
    )
    logits = torch.cat(predictions)
    scores = score(task, logits, targets["test"])
    return ProtocolResult(
        metrics=scores.metrics,
        n_train=len(inputs.splits.train),
        n_val=len(inputs.splits.val),
        n_test=len(inputs.splits.test),
        details={
            "hparams": hp,
            "epochs_trained": fitted.epochs_trained,
            "best_val_loss": fitted.best_score,
            "head_training": fitted.describe(),
            "feature_dim": int(features["train"].shape[1]),
            "metrics_excluded_labels": scores.excluded,
        },
        outputs=classification_arrays(task.target, task.label_names, inputs.splits.test, logits.double().numpy(),
                                      targets["test"].numpy()),
    )
