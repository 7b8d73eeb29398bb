"""The model store: pretrained checkpoints kept under ``$MEDVLP_HOME/models/<method>/<key16>/``.

A stored model is found by the sha256 key of its pretraining config (method, corpus and its data, encoders, epochs,
batch, options, seed), so a run that needs "MGCA pretrained like this" reuses the stored weights.
A folder counts as stored once its ``model.ckpt`` exists (written at the end of training).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from medvlp_bench.data.locations import harness_home

FINAL_CHECKPOINT = "model.ckpt"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def pretrain_key(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a pretraining config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def store_folder(method: str, key: str) -> Path:
    return harness_home() / "models" / method / key[:16]


def stored_checkpoint(method: str, key: str) -> Optional[Path]:
    """The stored final checkpoint for this method and config key, or ``None``."""
    path = store_folder(method, key) / FINAL_CHECKPOINT
    return path if path.is_file() else None


def write_config(out_dir: Path, config: Mapping[str, Any]) -> None:
    """Write ``config.json`` into ``out_dir`` atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / f".config.json.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    os.replace(temporary, out_dir / "config.json")
