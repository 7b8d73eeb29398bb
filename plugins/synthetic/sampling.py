"""Random draws the phantom's anatomy and findings share (all from a numpy ``Generator``, in a fixed order)."""

from __future__ import annotations

import numpy as np

#: lung-relative level ranges (t from apex to base) of each zone
ZONE_LEVELS = {"upper": (0.12, 0.3), "mid": (0.38, 0.6), "lower": (0.66, 0.85)}


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One draw from U(low, high) as a Python float."""
    return float(rng.uniform(low, high))


def zone(rng: np.random.Generator, weights=(0.15, 0.35, 0.5)) -> str:
    """"upper", "mid" or "lower" with the given probabilities."""
    return str(rng.choice(("upper", "mid", "lower"), p=weights))


def side(rng: np.random.Generator) -> str:
    """The patient's "right" or "left", 50/50."""
    return "right" if rng.random() < 0.5 else "left"


def level(rng: np.random.Generator, name: str) -> float:
    """A lung-relative level t uniform in the range of zone ``name`` (:data:`ZONE_LEVELS`)."""
    return uniform(rng, *ZONE_LEVELS[name])


def lobes(rng: np.random.Generator, count: int, spread: float) -> tuple[tuple[float, float, float], ...]:
    """``count`` lobes (du, dt, scale) of an opacity: the first at its centre with scale 1, the others offset by
    N(0, spread) across and N(0, 0.6 spread) along the lung, scale U(0.55, 0.95)."""
    first = ((0.0, 0.0, 1.0),)
    rest = tuple((float(rng.normal(0, spread)), float(rng.normal(0, spread * 0.6)), uniform(rng, 0.55, 0.95))
                 for _ in range(count - 1))
    return first + rest
