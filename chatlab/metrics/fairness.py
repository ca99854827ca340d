"""Fairness indices of a distribution over operators: Gini, Jain, CV, max/min, the Lorenz curve.

Definitions (for non-negative values x_1..x_n with mean m):
Gini = sum_ij |x_i - x_j| / (2 n^2 m) (0 = equal, (n-1)/n = one takes all);
Jain = (sum x)^2 / (n sum x^2) (1 = equal, 1/n = one takes all);
CV = population standard deviation / mean; max/min ratio (null when min is 0).
All are null when there is nothing to distribute (no operators or all values 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from chatlab.metrics.runlog import _num


def _values(values: Iterable[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype="float64")
    if np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise ValueError("fairness indices need finite, non-negative values")
    return arr


def gini(values: Iterable[float]) -> float | None:
    """Gini coefficient: 0 = perfectly even, (n-1)/n = one operator gets everything."""
    x = np.sort(_values(values))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return None
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def jain(values: Iterable[float]) -> float | None:
    """Jain's fairness index: 1 = perfectly even, 1/n = one operator gets everything."""
    x = _values(values)
    n, sq = len(x), float(np.sum(x * x))
    if n == 0 or sq == 0:
        return None
    return float(x.sum() ** 2 / (n * sq))


def coefficient_of_variation(values: Iterable[float]) -> float | None:
    """Population standard deviation over the mean (0 = even)."""
    x = _values(values)
    if len(x) == 0 or x.mean() == 0:
        return None
    return float(x.std(ddof=0) / x.mean())


def max_min_ratio(values: Iterable[float]) -> float | None:
    """Largest over smallest value; ``None`` when the smallest is 0 (unbounded) or no data."""
    x = _values(values)
    if len(x) == 0 or x.min() == 0:
        return None
    return float(x.max() / x.min())


def fairness_summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """All fairness indices of one distribution, plus n, min, max, mean and total."""
    x = _values(values)
    return {
        "n": int(len(x)),
        "total": _num(x.sum()) if len(x) else 0.0,
        "mean": _num(x.mean()) if len(x) else None,
        "min": _num(x.min()) if len(x) else None,
        "max": _num(x.max()) if len(x) else None,
        "gini": gini(x),
        "jain": jain(x),
        "cv": coefficient_of_variation(x),
        "max_min_ratio": max_min_ratio(x),
    }


def lorenz_curve(values: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points of the Lorenz curve: cumulative share of operators vs cumulative share of work."""
    x = np.sort(_values(values))
    if len(x) == 0 or x.sum() == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    cum = np.concatenate([[0.0], np.cumsum(x) / x.sum()])
    return np.linspace(0.0, 1.0, len(x) + 1), cum

