"""The per-sample test outputs a protocol returns in :attr:`~medvlp_bench.specs.ProtocolResult.outputs`.

Every protocol's outputs hold (test split, test table order, N samples):

* ``kind``: 0-d str, ``classification`` | ``detection`` | ``segmentation`` | ``retrieval``;
* ``sample_id``: (N,) str;
* ``patient_id``: (N,) str, the table's ``patient_id`` column, or ``sample_id`` where the table has none.

Classification adds ``task_type`` (0-d str ``binary`` | ``multilabel`` | ``multiclass``), ``label_names`` (L,)
str, ``target`` ((N, L) int8 0/1, or (N,) int64 class index for multiclass) and ``score`` ((N, L) float64 raw
logits or similarities: no sigmoid or softmax, the metrics are rank based). The arrays of the other kinds are
listed in their protocols' docstrings. The record stores them beside itself (``<record stem>.outputs.npz``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

KINDS = ("classification", "detection", "segmentation", "retrieval")


def identity_arrays(kind: str, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """``kind``, ``sample_id`` and ``patient_id`` of a test table (module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {', '.join(KINDS)}")
    sample_ids = table["sample_id"].astype(str).to_numpy()
    patients = table["patient_id"].astype(str).to_numpy() if "patient_id" in table else sample_ids
    return {"kind": np.array(kind), "sample_id": np.array(sample_ids, dtype=str),
            "patient_id": np.array(patients, dtype=str)}


def classification_arrays(task_type: str, label_names: Sequence[str], table: pd.DataFrame, scores, targets
                          ) -> dict[str, np.ndarray]:
    """The classification outputs of a test table from (N, L) scores and the targets (module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets)
    if len(scores) != len(table) or len(targets) != len(table):
        raise ValueError(f"{len(scores)} scores and {len(targets)} targets for a table of {len(table)} samples")
    target = targets.reshape(-1).astype(np.int64) if task_type == "multiclass" else targets.astype(np.int8)
    return {
        **identity_arrays("classification", table),
        "task_type": np.array(task_type),
        "label_names": np.array(list(label_names), dtype=str),
        "target": target,
        "score": scores,
    }
