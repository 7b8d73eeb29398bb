"""The shared head-fitting harness: seeded, deterministic fits; early stopping after ``patience`` epochs without a
better monitored value; the kept checkpoint is the best epoch's; its settings are described for the record."""

from __future__ import annotations

import lightning as L
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medvlp_bench.protocols.feature_cache import preferred_device
from medvlp_bench.protocols.head_training import HeadFitSettings, fit_head, seed_head_training


class ScriptedHead(L.LightningModule):
    """A linear head that logs ``val_score`` from a script (one value per epoch) besides a real training loss."""

    def __init__(self, script):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.script = list(script)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.linear(x), y)

    def validation_step(self, batch, batch_idx):
        self.log("val_score", float(self.script[self.current_epoch]), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loaders():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=generator)
    data = TensorDataset(x, x.sum(1, keepdim=True))
    return DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=8)


def _fit(tmp_path, script, mode="max", patience=2, seed=0):
    seed_head_training(seed)
    head = ScriptedHead(script)
    settings = HeadFitSettings(name="toy", monitor="val_score", mode=mode, max_epochs=len(script),
                               patience=patience, work_dir=tmp_path, label="toy head", shown=("val_score",))
    return head, fit_head(head, *_loaders(), settings)


def test_early_stopping_and_the_best_epochs_checkpoint(tmp_path):
    head, fitted = _fit(tmp_path / "a", [0.1, 0.5, 0.3, 0.4, 0.2, 0.9, 0.95])
    # best at epoch 1 (0.5); epochs 2 and 3 do not beat it: stop after epoch 3
    assert fitted.epochs_trained == 4 and fitted.best_score == 0.5
    assert "epoch=1" in fitted.best_path
    saved = torch.load(fitted.best_path, weights_only=True)
    assert set(saved) >= {"state_dict"} and "optimizer_states" not in saved  # weights only
    history = pd.read_csv(fitted.metrics_csv).dropna(subset=["val_score"])
    assert history["val_score"].round(6).tolist() == [0.1, 0.5, 0.3, 0.4]
    described = fitted.describe()
    assert (described["precision"], described["deterministic"]) == ("32-true", "warn")
    assert described["device"].startswith(preferred_device().type)


def test_min_mode_and_seeded_fits_are_identical(tmp_path):
    first, fitted = _fit(tmp_path / "a", [3.0, 2.0, 1.0], mode="min")
    assert fitted.best_score == 1.0 and fitted.epochs_trained == 3
    second, _ = _fit(tmp_path / "b", [3.0, 2.0, 1.0], mode="min")
    other_seed, _ = _fit(tmp_path / "c", [3.0, 2.0, 1.0], mode="min", seed=1)
    assert torch.equal(first.linear.weight, second.linear.weight)
    assert not torch.equal(first.linear.weight, other_seed.linear.weight)
