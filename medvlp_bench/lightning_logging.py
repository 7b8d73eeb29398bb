"""Keep Lightning's console output to what a user needs (progress and warnings that matter)."""

from __future__ import annotations

import logging
import warnings


#: Lightning warnings that say nothing about the user's run: a deprecation inside Lightning itself, the data loader
#: worker hint (the harness chooses its workers), and the SLURM hint printed whenever an ``srun`` executable is on
#: the PATH of a process not started by ``srun`` (a harness run is one process; Lightning's SLURM support is unused)
IGNORED_WARNINGS = (
    r".*LeafSpec.*is deprecated",
    r".*does not have many workers.*",
    r"The `srun` command is available on your system but is not used",
)


def quiet_lightning() -> None:
    """Silence Lightning's start-up banners and tips (accelerator availability, ``LOCAL_RANK``, logger and
    checkpoint tips, "`Trainer.fit` stopped") by raising its loggers to WARNING, and ignore the warnings in
    :data:`IGNORED_WARNINGS`; warnings about the user's run still show."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def epoch_progress(label: str, *shown: str):
    """A Lightning callback that shows one progress bar per fit, advanced once per epoch, with the latest values
    of the metrics named in ``shown`` (e.g. ``val_map``) and the epoch's training loss; for head training runs
    whose per-batch bars would flood a log. Written to stderr and removed when the fit ends."""
    import lightning as L
    from tqdm.auto import tqdm

    class EpochProgress(L.Callback):
        def __init__(self) -> None:
            self.bar = None

        def on_train_start(self, trainer, pl_module) -> None:
            self.bar = tqdm(total=trainer.max_epochs, desc=label, unit="epoch", leave=False, mininterval=0,
                            disable=not trainer.is_global_zero)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            latest = {name: float(value) for name, value in trainer.callback_metrics.items()
                      if name in shown or name.endswith("loss") and name.startswith("train")}
            self.bar.set_postfix({name: f"{value:.4g}" for name, value in sorted(latest.items())}, refresh=False)
            self.bar.update(1)

        def on_train_end(self, trainer, pl_module) -> None:
            self.bar.close()

    return EpochProgress()
