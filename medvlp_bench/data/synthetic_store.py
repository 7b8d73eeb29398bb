"""The synthetic default: each dataset's synthetic twin, generated once into the harness home.

A dataset is generated into a temporary sibling folder and renamed into place when its writer has finished, under
an exclusive file lock (:mod:`medvlp_bench.data.build_once`), so concurrent runs generate it once and a killed
generation leaves nothing that looks complete. The writer's marker file (:data:`MARKER`) identifies a finished folder.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from medvlp_bench.data.build_once import exclusive_lock, temporary_path
from medvlp_bench.data.locations import synthetic_root
from medvlp_bench.errors import MedvlpError
from medvlp_bench.specs import DatasetSpec

MARKER = ".medvlp_synthetic.json"

__all__ = ["MARKER", "ensure_synthetic", "exclusive_lock", "is_generated"]


def is_generated(folder: Path) -> bool:
    return (folder / MARKER).is_file()


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
