"""Run records with per-sample outputs for the leaderboard, plot and report tests."""

from __future__ import annotations

import numpy as np

from medvlp_bench.records import write_record
from test_leaderboard import make_record

N_TEST = 200


def classification_outputs(shift: float, seed: int, n: int = N_TEST) -> dict:
    """Binary scores separating the classes by ``shift`` standard deviations; two images per patient."""
    rng = np.random.default_rng(seed)
    target = (np.arange(n) % 2).astype(np.int8)
    return {
        "kind": np.array("classification"), "task_type": np.array("binary"),
        "sample_id": np.array([f"img{i}" for i in range(n)]),
        "patient_id": np.array([f"pat{i // 2}" for i in range(n)]),
        "label_names": np.array(["Pneumonia"]), "target": target[:, None],
        "score": (rng.normal(size=n) + shift * target)[:, None],
    }


def auroc(outputs: dict) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(outputs["target"][:, 0], outputs["score"][:, 0]))


def write_runs(folder, method: str, shift: float, seeds=(0, 1, 2), pct: float = 0.1, seed_offset: int = 0,
               with_outputs: bool = True, data_source: str = "real"):
    """One record per seed, its AUROC computed from its outputs; returns the record paths."""
    paths = []
    for seed in seeds:
        outputs = classification_outputs(shift, seed + seed_offset)
        record = make_record(method, "rsna_cls", pct, seed, auroc(outputs), data_source=data_source)
        paths.append(write_record(record, folder, outputs=outputs if with_outputs else None))
    return paths
