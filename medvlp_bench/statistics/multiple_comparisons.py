"""Multiple-comparison corrections of p-values: Holm (family-wise error) and Benjamini-Hochberg (false discovery
rate).

With p-values sorted increasingly, p_(1) <= ... <= p_(k):

* Holm (Holm, Scand. J. Statistics 1979): ``adj_(i) = max_{j <= i} min(1, (k - j + 1) p_(j))``;
* Benjamini-Hochberg (J. R. Statist. Soc. B 1995): ``adj_(i) = min_{j >= i} min(1, k p_(j) / j)``;
* none: the p-values unchanged.

A hypothesis is rejected at level alpha when its adjusted p-value is <= alpha. NaN p-values (no test) stay NaN
and do not count in k.
"""

from __future__ import annotations

import numpy as np

CORRECTIONS = ("holm", "bh", "none")


def adjust_p_values(p_values, method: str = "holm") -> np.ndarray:
    """Adjusted p-values in the input order (see the module docstring)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; use one of {CORRECTIONS}")
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = p.copy()
    tested = np.flatnonzero(~np.isnan(p))
    k = len(tested)
    if method == "none" or not k:
        return adjusted
    order = tested[np.argsort(p[tested], kind="stable")]
    rank = np.arange(1, k + 1)
    if method == "holm":
        values = np.maximum.accumulate(np.minimum(1.0, (k - rank + 1) * p[order]))
    else:
        values = np.minimum.accumulate(np.minimum(1.0, k * p[order] / rank)[::-1])[::-1]
    adjusted[order] = values
    return adjusted
