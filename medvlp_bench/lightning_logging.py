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
