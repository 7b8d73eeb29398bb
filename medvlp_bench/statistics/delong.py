"""DeLong's interval for the AUROC (DeLong, DeLong and Clarke-Pearson, Biometrics 1988), with midranks (Sun and
Xu, IEEE Signal Processing Letters 2014).

For one label with m positives X_i and n negatives Y_j, and psi(x, y) = 1 if x > y, 1/2 if x = y, else 0:
``AUROC = mean_i V10_i`` with the structural components ``V10_i = (1/n) sum_j psi(X_i, Y_j)`` and
``V01_j = (1/m) sum_i psi(X_i, Y_j)``, computed from midranks: ``V10_i = (R_i - R^X_i) / n`` and
``V01_j = 1 - (R_j - R^Y_j) / m`` (R the midrank among all scores, R^X among positives, R^Y among negatives).
``Var = S10 / m + S01 / n`` with S10, S01 the sample variances (ddof = 1) of V10 and V01.

Macro AUROC over L labels, and test sets where a patient has several images: each image s gets the influence
``phi_sl = (V10_sl - AUROC_l) / sqrt(m_l (m_l - 1))`` if it is a positive of label l, else
``(V01_sl - AUROC_l) / sqrt(n_l (n_l - 1))``; ``phi_s = mean_l phi_sl`` over the labels with both classes, summed
per patient, ``Var = sum_p (sum_{s in p} phi_s)^2``. With one label and one image per patient this is exactly
DeLong's variance; otherwise it adds the covariances between labels and between images of one patient
(Obuchowski, Biometrics 1997, in the same spirit). The interval is ``AUROC +- z_{(1+level)/2} sqrt(Var)``,
clipped to [0, 1].
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Optional

import numpy as np
import pandas as pd

from medvlp_bench.statistics.bootstrap import LEVEL, Interval, patient_index


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    return pd.Series(values).rank(method="average").to_numpy()


def structural_components(positive_scores: np.ndarray, negative_scores: np.ndarray) -> tuple[np.ndarray,
                                                                                             np.ndarray]:
    """``(V10, V01)`` of DeLong (see the module docstring)."""
    m, n = len(positive_scores), len(negative_scores)
    everything = midranks(np.concatenate([positive_scores, negative_scores]))
    v10 = (everything[:m] - midranks(positive_scores)) / n
    v01 = 1.0 - (everything[m:] - midranks(negative_scores)) / m
    return v10, v01


def delong_variance(target: np.ndarray, score: np.ndarray, patients: Optional[np.ndarray] = None
                    ) -> tuple[float, float]:
    """``(AUROC, variance)`` of the (macro) AUROC of ``score`` (N, L) against 0/1 ``target`` (N, L), over the
    labels with both classes; images grouped by ``patients`` (N,) ids when given. NaNs when no label has both
    classes, or when a label has a single positive or a single negative (its sample variance is undefined)."""
    target = np.asarray(target).reshape(len(target), -1)
    score = np.asarray(score, dtype=np.float64).reshape(len(target), -1)
    influence = np.zeros(len(target))
    aurocs = []
    for label in range(target.shape[1]):
        positive = target[:, label] == 1
        m, n = int(positive.sum()), int((~positive).sum())
        if m < 2 or n < 2:
            if m and n:
                return float("nan"), float("nan")
            continue
        v10, v01 = structural_components(score[positive, label], score[~positive, label])
        auroc = float(v10.mean())
        aurocs.append(auroc)
        phi = np.empty(len(target))
        phi[positive] = (v10 - auroc) / np.sqrt(m * (m - 1))
        phi[~positive] = (v01 - auroc) / np.sqrt(n * (n - 1))
        influence += phi
    if not aurocs:
        return float("nan"), float("nan")
    influence /= len(aurocs)
    if patients is not None:
        index, n_patients = patient_index(patients)
        influence = np.bincount(index, weights=influence, minlength=n_patients)
    return float(np.mean(aurocs)), float(np.sum(influence ** 2))


def delong_interval(target: np.ndarray, score: np.ndarray, patients: Optional[np.ndarray] = None,
                    level: float = LEVEL) -> Interval:
    """DeLong's normal interval for the (macro) AUROC (see the module docstring)."""
    auroc, variance = delong_variance(target, score, patients)
    half = NormalDist().inv_cdf((1 + level) / 2) * np.sqrt(variance)
    return Interval(auroc, max(0.0, auroc - half), min(1.0, auroc + half), level, "DeLong")
