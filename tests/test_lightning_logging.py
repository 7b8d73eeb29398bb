"""Console output of Lightning fits: start-up banners and hints stay quiet; the per-epoch progress bar of head
training."""

from __future__ import annotations

import logging
import os
import warnings

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


LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")


class _Records(logging.Handler):
    """Keeps the messages of every record that reaches it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _tiny_fit(root, quiet: bool) -> tuple[list[str], list[str]]:
    """Fit TinyRegression for one epoch (after ``quiet_lightning()`` if ``quiet``), with every warning shown; the
    Lightning log messages and the warnings raised meanwhile."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if quiet:
                quiet_lightning()
            data = DataLoader(TensorDataset(torch.randn(16, 2), torch.randn(16, 1)), batch_size=8)
            trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=root, accelerator="cpu")
            trainer.fit(TinyRegression(), data)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    return handler.messages, [str(warning.message) for warning in caught]


def test_start_up_banners_and_the_srun_hint_stay_quiet(tmp_path, monkeypatch):
    fake_srun = tmp_path / "bin" / "srun"
    fake_srun.parent.mkdir()
    fake_srun.write_text("#!/bin/sh\nexit 0\n")
    fake_srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_srun.parent}{os.pathsep}{os.environ['PATH']}")
    for name in ("SLURM_NTASKS", "SLURM_JOB_NAME", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    torch.manual_seed(0)
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.INFO)  # as after importing Lightning, before quiet_lightning()
        loud_log, loud_warnings = _tiny_fit(tmp_path / "loud", quiet=False)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    assert any(message.startswith("GPU available") for message in loud_log)
    assert any("`srun` command is available" in message for message in loud_warnings)

    log, raised = _tiny_fit(tmp_path / "quiet", quiet=True)
    assert log == []
    assert not any("srun" in message for message in raised)
