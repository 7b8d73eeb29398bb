"""One harness for fitting a protocol's trainable head (linear probe, detection, segmentation).

Every protocol that trains something on a frozen (or fine-tuned) encoder fits it the same way:

* seeding: :func:`seed_head_training` seeds Python, NumPy and torch (and data-loader workers) with the run's seed;
  a protocol calls it right before it builds its head, so the head's initial weights depend on the seed only;
* determinism: PyTorch's deterministic algorithms where they exist (``deterministic="warn"``: an operation without
  one, such as some CUDA upsampling backward passes, warns instead of failing);
* precision: float32 (``"32-true"``): heads are small and their inputs are float32 or float16 caches;
* device: one device, Lightning's ``accelerator="auto"`` (a GPU when one is visible, else the CPU);
* progress: one bar per fit advanced once per epoch (:func:`~medvlp_bench.lightning_logging.epoch_progress`),
  Lightning's per-batch bar, model summary and banners off; per-epoch values go to a CSV log
  (``<work_dir>/<name>/version_*/metrics.csv``);
* early stopping: training stops after ``patience`` epochs without a better ``monitor`` value (``mode`` ``min`` or
  ``max``), or after ``max_epochs``; no sanity validation before training;
* checkpoint selection: the weights of the epoch with the best ``monitor`` value are kept
  (``<work_dir>/checkpoints``) and the test split is evaluated with them (:attr:`FittedHead.best_path`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medvlp_bench.lightning_logging import epoch_progress, quiet_lightning

#: the Trainer settings every head shares (module docstring)
PRECISION = "32-true"
DETERMINISTIC = "warn"


@dataclass(frozen=True)
class HeadFitSettings:
    """How one head is fitted: ``name`` (the CSV log's folder), the validation value ``monitor`` the module logs
    once per epoch and its direction ``mode``, ``max_epochs``, ``patience`` (epochs), ``work_dir``, the progress
    bar's ``label`` and the logged values ``shown`` on it."""

    name: str
    monitor: str
    mode: Literal["min", "max"]
    max_epochs: int
    patience: int
    work_dir: Path
    label: str = "head"
    shown: tuple[str, ...] = ()


@dataclass(frozen=True)
class FittedHead:
    """The Trainer after ``fit`` and its checkpoint callback."""

    trainer: Any
    checkpoint: Any

    @property
    def best_path(self) -> str:
        """The checkpoint of the epoch with the best monitored value."""
        return self.checkpoint.best_model_path

    @property
    def best_score(self) -> float:
        return float(self.checkpoint.best_model_score)

    @property
    def epochs_trained(self) -> int:
        return int(self.trainer.current_epoch)

    @property
    def metrics_csv(self) -> Path:
        return Path(self.trainer.logger.log_dir) / "metrics.csv"

    def describe(self) -> dict:
        """The harness settings of this fit, for the record's details."""
        return {"precision": PRECISION, "deterministic": DETERMINISTIC,
                "device": str(self.trainer.strategy.root_device)}


def seed_head_training(seed: int) -> None:
    """Seed Python, NumPy, torch and data-loader workers for a head's initialisation and training."""
    import lightning as L

    L.seed_everything(seed, workers=True, verbose=False)


def head_trainer(settings: HeadFitSettings):
    """(Trainer, ModelCheckpoint) for one head fit (module docstring)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    quiet_lightning()
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    checkpoint = ModelCheckpoint(dirpath=Path(settings.work_dir) / "checkpoints", monitor=settings.monitor,
                                 mode=settings.mode, save_weights_only=True)
    stopper = EarlyStopping(monitor=settings.monitor, mode=settings.mode, patience=settings.patience)
    progress = epoch_progress(settings.label, *settings.shown)
    trainer = L.Trainer(
        max_epochs=settings.max_epochs,
        callbacks=[checkpoint, stopper, progress],
        default_root_dir=settings.work_dir,
        logger=L.pytorch.loggers.CSVLogger(settings.work_dir, name=settings.name),
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        deterministic=DETERMINISTIC,
        precision=PRECISION,
        accelerator="auto",
        devices=1,
        log_every_n_steps=1,
    )
    return trainer, checkpoint


def fit_head(module, train_loader, val_loader, settings: HeadFitSettings) -> FittedHead:
    """Fit ``module`` on ``train_loader``, validating on ``val_loader`` every epoch (module docstring)."""
    trainer, checkpoint = head_trainer(settings)
    module.train()
    trainer.fit(module, train_loader, val_loader)
    return FittedHead(trainer, checkpoint)
