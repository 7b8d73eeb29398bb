"""Console output of Lightning fits: the per-epoch progress bar of head training."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from medvlp_bench.lightning_logging import epoch_progress, quiet_lightning


class TinyRegression(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_index):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_index):
        x, y = batch
        self.log("val_score", -torch.nn.functional.mse_loss(self.layer(x), y))
        self.log("val_other", 1.0)
        self.log("val_hidden", 2.0)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_epoch_progress_counts_epochs_and_shows_the_monitored_metric(tmp_path, capsys):
    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(16, 2), torch.randn(16, 1)), batch_size=8)
    quiet_lightning()
    trainer = L.Trainer(max_epochs=3, callbacks=[epoch_progress("toy head", "val_score", "val_other")], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(TinyRegression(), data, data)
    err = capsys.readouterr().err
    assert "toy head" in err and "3/3" in err
    assert "val_score=" in err and "val_other=1" in err and "train_loss=" in err
    assert "val_hidden" not in err
