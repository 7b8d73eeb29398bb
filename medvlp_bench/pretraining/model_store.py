"""The model store: pretrained checkpoints kept under ``$MEDVLP_HOME/models/<method>/<key16>/``.

A stored model is found by the sha256 key of its pretraining config (method, corpus and its data, encoders, epochs,
batch, options, seed), so a run that needs "MGCA pretrained like this" reuses the stored weights.
A folder counts as stored once its ``model.ckpt`` exists (written at the end of training).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, Optional

from medvlp_bench.data.locations import harness_home
from medvlp_bench.pretraining.fit import FINAL_CHECKPOINT


def pretrain_key(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a pretraining config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def store_folder(method: str, key: str) -> Path:
    return harness_home() / "models" / method / key[:16]


def stored_checkpoint(method: str, key: str) -> Optional[Path]:
    """The stored final checkpoint for this method and config key, or ``None``."""
    path = store_folder(method, key) / FINAL_CHECKPOINT
    return path if path.is_file() else None
