"""The Lightning fit every pretraining method shares: checkpoints, resume, logs, progress, saved config.

``out_dir`` receives ``config.json`` (the resolved pretraining config), ``checkpoints/last.ckpt`` (saved every
epoch, the point a killed run resumes from with ``resume=True``), ``logs/`` (CSV, plus TensorBoard when it is
installed) and, when training finishes, ``model.ckpt`` (weights and hyper-parameters only: what runs load).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from medvlp_bench.lightning_logging import quiet_lightning
from medvlp_bench.pretraining.model_store import FINAL_CHECKPOINT, LAST_CHECKPOINT


def _loggers(out_dir: Path) -> list:
    loggers = [CSVLogger(out_dir / "logs", name="csv")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(out_dir / "logs", name="tensorboard"))
    return loggers


def fit_pretraining(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    *,
    out_dir: Path,
    trainer_settings: Mapping[str, Any],
    resume: bool,
    seed: int,
) -> Path:
    """Train ``module`` on ``datamodule``; return the path of ``model.ckpt`` (see module docstring).

    ``trainer_settings``: ``max_epochs``, ``devices``, ``strategy``, ``num_nodes``, ``precision``, ``accelerator``
    (defaults: 1 epoch, 1 device, ``auto``), ``limit_train_batches`` (optional, for quick runs).
    """
    out_dir = Path(out_dir)
    quiet_lightning()
    L.seed_everything(seed, workers=True, verbose=False)
    checkpoints = ModelCheckpoint(dirpath=out_dir / "checkpoints", save_last=True, save_top_k=1, every_n_epochs=1)
    settings = dict(trainer_settings)
    trainer = L.Trainer(
        max_epochs=settings.get("max_epochs", 1),
        devices=settings.get("devices", 1),
        num_nodes=settings.get("num_nodes", 1),
        strategy=settings.get("strategy", "auto"),
        accelerator=settings.get("accelerator", "auto"),
        precision=settings.get("precision", "32-true"),
        limit_train_batches=settings.get("limit_train_batches"),
        callbacks=[checkpoints],
        logger=_loggers(out_dir),
        default_root_dir=out_dir,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    last = out_dir / LAST_CHECKPOINT
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume and last.is_file() else None)
    final = out_dir / FINAL_CHECKPOINT
    trainer.save_checkpoint(final, weights_only=True)
    return final
