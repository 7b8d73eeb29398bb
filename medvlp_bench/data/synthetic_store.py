"""The synthetic default: each dataset's synthetic twin, generated once into the harness home.

A dataset is generated into a temporary sibling folder and renamed into place when its writer has finished, under
an exclusive file lock (:mod:`medvlp_bench.data.build_once`), so concurrent runs generate it once and a killed
generation leaves nothing that looks complete. The writer's marker file (:data:`MARKER`) identifies a finished
folder: a writer first calls :func:`begin_synthetic_folder` (creates the folder, removes an old marker), writes
everything, and last calls :func:`finish_synthetic_folder`, which writes the marker atomically (temporary file,
fsync, rename); :func:`read_synthetic_marker` returns the marker's content or ``None``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Mapping, Optional

from medvlp_bench.data.build_once import exclusive_lock, temporary_path
from medvlp_bench.data.locations import SYNTHETIC_VERSION, synthetic_root
from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import DatasetSpec

MARKER = ".medvlp_synthetic.json"
GENERATOR = f"medvlp-bench synthetic {SYNTHETIC_VERSION}"

__all__ = ["MARKER", "begin_synthetic_folder", "ensure_synthetic", "exclusive_lock", "finish_synthetic_folder", "is_generated",
           "read_synthetic_marker"]


def is_generated(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def begin_synthetic_folder(folder: Path) -> Path:
    """Create ``folder`` and remove a previous completion marker, so a rewrite in progress reads as incomplete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).unlink(missing_ok=True)
    return folder


def finish_synthetic_folder(folder: Path, seed: int, scale: float, counts: Mapping[str, int]) -> None:
    """Write the completion marker ``{"seed", "scale", "counts", "generator"}`` atomically."""
    content = json.dumps({"seed": seed, "scale": scale, "counts": dict(counts), "generator": GENERATOR},
                         indent=2, sort_keys=True)
    temporary = Path(folder) / (MARKER + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(content + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, Path(folder) / MARKER)


def read_synthetic_marker(folder: Path) -> Optional[dict]:
    """The completion marker of a synthetic folder, or ``None`` if it is absent or unreadable."""
    try:
        return json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def ensure_synthetic(dataset: DatasetSpec, seed: int = 0, scale: float = 1.0) -> Path:
    """The folder of ``dataset``'s synthetic twin, generating it first if needed (with a one-line notice)."""
    if dataset.write_synthetic is None:
        raise MedvlpError(f"dataset {dataset.name!r} has no synthetic twin; pass --data-root with the real download")
    folder = synthetic_root(seed, scale) / dataset.folder
    if is_generated(folder):
        return folder
    with exclusive_lock(folder.parent / f".{dataset.folder}.lock"):
        if is_generated(folder):
            return folder
        print(f"medvlp-bench: generating the synthetic {dataset.name} dataset (seed {seed}) into {folder}", file=sys.stderr)
        temporary = temporary_path(folder)
        dataset.write_synthetic(temporary, seed, scale)
        if not is_generated(temporary):
            raise MedvlpError(f"the synthetic writer of {dataset.name!r} did not write its marker {MARKER}")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temporary, folder)
    return folder
