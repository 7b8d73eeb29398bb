"""Keep Lightning's console output to what a user needs (progress and warnings that matter)."""

from __future__ import annotations

import logging
import warnings


def quiet_lightning() -> None:
    """Silence Lightning's start-up banners and tips (accelerator availability, logger tips) and a known
    deprecation warning raised inside Lightning itself; warnings about the user's run still show."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


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
